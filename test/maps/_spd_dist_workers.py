"""Rank workers for test_optimizer_distributed.py (a plain module, so that spawned ranks can import it by name).

Each rank also trains the unsharded model on the full batch and compares; an assertion failing inside a rank
re-raises in pytest through ``torch.multiprocessing.spawn``.
"""

import datetime
import os

import torch
import torch.distributed as dist

from maps_vla.maps import optimizer as optimizer_module
from maps_vla.maps.optimizer import SPDAdam

WORLD = 2
STEPS = 8
BATCH = 16
LR = 5e-2


class _Net(torch.nn.Module):
    """Dim 0 of 5, 3 and 1 does not divide by 2 ranks; the (1, 3) weight leaves rank 1 an empty shard."""

    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Linear(6, 5)
        self.mid = torch.nn.Linear(5, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.out = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.out(self.norm(torch.tanh(self.mid(torch.tanh(self.inp(x))))))


def _net():
    torch.manual_seed(0)
    return _Net().double()


def _groups(model):
    params = dict(model.named_parameters())
    return [
        {'params': [params['inp.weight']], 'lam': 2.0, 'name': 'inp'},
        {'params': [params['mid.weight']], 'lam': 1.0, 'name': 'mid'},
        {'params': [params['norm.weight'], params['norm.bias']], 'lam': 0.5, 'anchor_dtype': torch.bfloat16,
         'name': 'norm'},
        {'params': [params['out.weight']], 'lam': 1.5, 'anchor': 'zero', 'name': 'out'},
        {'params': [params['inp.bias'], params['mid.bias'], params['out.bias']], 'lam': 0.0, 'name': 'bias'},
    ]


def _data():
    gen = torch.Generator().manual_seed(3)
    return [(torch.randn(BATCH, 6, generator=gen, dtype=torch.float64),
             torch.randn(BATCH, 1, generator=gen, dtype=torch.float64)) for _ in range(STEPS)]


def _train(model, opt, data, rank=None, steps=None):
    """Trains on the full batches, or on this rank's half of each batch when ``rank`` is given."""
    triggered = 0
    for x, y in data[:steps]:
        if rank is not None:
            x, y = x.chunk(WORLD)[rank], y.chunk(WORLD)[rank]
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        triggered += _count_triggers(opt)
        opt.step()
    return triggered


def _count_triggers(opt):
    """How many tensors are about to be projected (c = −gᵀ(θ−θ₀) < 0 with λ > 0); unsharded models only."""
    count = 0
    for group in opt.param_groups:
        for p in group['params']:
            if group['lam'] > 0 and p.grad is not None:
                anchor = 0.0 if group['anchor'] == 'zero' else opt.state[p]['anchor'].double()
                count += int(-(p.grad * (p.detach() - anchor)).sum() < 0)
    return count


def _single_process_params(steps=STEPS):
    model = _net()
    opt = SPDAdam(_groups(model), lr=LR)
    triggered = _train(model, opt, _data(), steps=steps)
    return [p.detach() for p in model.parameters()], triggered


def _init(rank, port):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    torch.set_num_threads(1)


def _shutdown():
    # Wait for the peer before tearing gloo down: a rank that closes its sockets while the other still finishes
    # its last collective can abort it (seen as SIGABRT on a loaded machine). Bounded, so a failed rank cannot hang.
    try:
        dist.monitored_barrier(timeout=datetime.timedelta(seconds=120))
    finally:
        dist.destroy_process_group()


def _fsdp_net(mesh):
    from torch.distributed.fsdp import fully_shard

    model = _net()
    for layer in (model.inp, model.mid, model.norm, model.out):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _full(model):
    return [p.full_tensor().detach() for p in model.parameters()]


def _max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


# ------------------------------------------------------------------------------------------------ workers


def ddp_worker(rank, port, foreach):
    _init(rank, port)
    try:
        expected, triggered = _single_process_params()
        assert triggered > 0
        model = torch.nn.parallel.DistributedDataParallel(_net())
        opt = SPDAdam(_groups(model.module), lr=LR, foreach=foreach)
        _train(model, opt, _data(), rank=rank)
        for a, b in zip(model.module.parameters(), expected):
            torch.testing.assert_close(a.detach(), b, rtol=1e-11, atol=1e-12)
    finally:
        _shutdown()


def fsdp_worker(rank, port, kernel):
    from torch.distributed.tensor import DTensor, init_device_mesh

    _init(rank, port)
    try:
        expected, triggered = _single_process_params()
        assert triggered > 0
        mesh = init_device_mesh('cpu', (WORLD,))
        model = _fsdp_net(mesh)
        opt = SPDAdam(_groups(model), lr=LR, **kernel)
        for group in opt.param_groups:
            for p in group['params']:
                assert isinstance(p, DTensor)
                if group['anchor'] != 'zero':
                    anchor = opt.state[p]['anchor']
                    assert isinstance(anchor, DTensor) and anchor.placements == p.placements
        assert 'anchor' not in opt.state[model.out.weight]
        assert model.out.weight.to_local().numel() == (3 if rank == 0 else 0)

        calls = []
        all_reduce = dist.all_reduce

        def counting_all_reduce(tensor, *args, **kwargs):
            calls.append(tuple(tensor.shape))
            return all_reduce(tensor, *args, **kwargs)

        dist.all_reduce = counting_all_reduce
        try:
            _train(model, opt, _data(), rank=rank)
        finally:
            dist.all_reduce = all_reduce
        # One all_reduce per step carries the 3 partial sums of the 5 projected tensors.
        assert calls == [(5, 3)] * STEPS, calls
        actual = _full(model)
        for a, b in zip(actual, expected):
            torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12)

        # Without summing the shards' partial sums every rank decides on its own shard: the run drifts away.
        local_only = _fsdp_net(mesh)
        opt = SPDAdam(_groups(local_only), lr=LR, **kernel)
        reduce = optimizer_module._all_reduce_partials
        optimizer_module._all_reduce_partials = lambda partials, groups: None
        try:
            _train(local_only, opt, _data(), rank=rank)
        finally:
            optimizer_module._all_reduce_partials = reduce
        assert _max_diff(_full(local_only), expected) > 1e-4
    finally:
        _shutdown()


def fsdp_resume_worker(rank, port):
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    from torch.distributed.tensor import DTensor, init_device_mesh

    _init(rank, port)
    try:
        expected, _ = _single_process_params()
        mesh = init_device_mesh('cpu', (WORLD,))
        model = _fsdp_net(mesh)
        opt = SPDAdam(_groups(model), lr=LR)
        _train(model, opt, _data(), rank=rank, steps=3)
        model_state, optim_state = get_state_dict(model, opt)
        anchors = [s['anchor'] for s in optim_state['state'].values() if 'anchor' in s]
        assert anchors and all(isinstance(a, DTensor) for a in anchors)

        resumed = _fsdp_net(mesh)
        with torch.no_grad():  # scramble the weights: everything must come from the saved state
            for p in resumed.parameters():
                p.mul_(-3.0)
        opt = SPDAdam(_groups(resumed), lr=LR)
        set_state_dict(resumed, opt, model_state_dict=model_state, optim_state_dict=optim_state)
        norm_weight = resumed.norm.weight
        assert opt.state[norm_weight]['anchor'].to_local().dtype == torch.bfloat16
        _train(resumed, opt, _data()[3:], rank=rank)
        for a, b in zip(_full(resumed), expected):
            torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12)
    finally:
        _shutdown()
