"""SPDAdam against a float64 reference written from the equations (maps_spd.md §1.1), torch's Adam, and itself."""

import copy
import pickle
from collections import Counter

import pytest
import torch

from maps_vla.maps import optimizer
from maps_vla.maps.optimizer import SPDAdam, spd_adam

SHAPES = [(6, 4), (4,), (), (3, 2, 2)]
STEPS = 60
LR = 1e-2
PATHS = [
    pytest.param({'foreach': False}, id='single'),
    pytest.param({'foreach': True}, id='foreach'),
    pytest.param({'fused': True}, id='fused', marks=pytest.mark.slow),
]


# ------------------------------------------------------------------------------------------------ reference


def _reference_step(theta, grad, state, anchor, lam, max_decay, counts, betas=(0.9, 0.999), eps=1e-8):
    """One step of SPD (Adam candidate, then the selective projection) in plain float64 torch ops."""
    b1, b2 = betas
    state['t'] += 1
    t = state['t']
    state['m'] = b1 * state['m'] + (1 - b1) * grad
    state['v'] = b2 * state['v'] + (1 - b2) * grad * grad
    m_hat, v_hat = state['m'] / (1 - b1**t), state['v'] / (1 - b2**t)
    cand = theta - LR * m_hat / (v_hat.sqrt() + eps)
    if lam == 0:
        return cand
    c = -(grad * (theta - anchor)).sum()
    if c >= 0:
        counts['c>=0'] += 1
        return cand
    counts['projected'] += 1
    gamma, gamma_prev = (cand - anchor).norm(), (theta - anchor).norm()
    r_raw = (gamma - gamma_prev) / gamma
    r = r_raw.clamp(0, 1)
    counts['r clamped at 0'] += int(r_raw < 0)
    counts['r > 0.9'] += int(r > 0.9)
    w = lam * r
    counts['lam*r > 1 (overshoot)'] += int(w > 1)
    if max_decay is not None and w > max_decay:
        counts['capped by max_decay'] += 1
        w = torch.tensor(max_decay, dtype=torch.float64)
    return cand - w * (cand - anchor)


def _grads(seed, steps=STEPS, shapes=SHAPES, groups=5):
    gen = torch.Generator().manual_seed(seed)
    return [[[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(groups)]
            for _ in range(steps)]


def _scenario(grads, dtype=torch.float64):
    """Five groups that between them reach every branch; returns (param groups, reference specs)."""
    gen = torch.Generator().manual_seed(1)

    def params(scale=1.0):
        return [torch.nn.Parameter((scale * torch.randn(s, generator=gen, dtype=torch.float64)).to(dtype))
                for s in SHAPES]

    copy_p, near_p, zero_p, adam_p, bf16_p = params(), params(), params(1e-4), params(), params()
    # θ − θ₀ = 1e-4·g₁: the first step triggers (c < 0) with a tiny γ_{t-1}, so r ≈ 1 and λ r ≈ 3 overshoots.
    near_anchors = [p.detach().double() - 1e-4 * g for p, g in zip(near_p, grads[0][1])]
    groups = [
        {'params': copy_p, 'lam': 0.7, 'name': 'copy'},
        {'params': near_p, 'lam': 3.0, 'anchors': [a.to(dtype) for a in near_anchors], 'name': 'near'},
        {'params': zero_p, 'lam': 1.5, 'anchor': 'zero', 'max_decay': 1.0, 'name': 'zero'},
        {'params': adam_p, 'lam': 0.0, 'name': 'adam'},
        {'params': bf16_p, 'lam': 0.9, 'anchor_dtype': torch.bfloat16, 'anchor_device': 'cpu', 'name': 'bf16'},
    ]
    specs = [
        (copy_p, [p.detach().double().clone() for p in copy_p], 0.7, None),
        (near_p, [a.to(dtype).double() for a in near_anchors], 3.0, None),
        (zero_p, [torch.zeros(s, dtype=torch.float64) for s in SHAPES], 1.5, 1.0),
        (adam_p, [p.detach().double().clone() for p in adam_p], 0.0, None),
        (bf16_p, [p.detach().to(torch.bfloat16).double() for p in bf16_p], 0.9, None),
    ]
    return groups, specs


def _run_reference(grads):
    groups, specs = _scenario(grads)
    counts = Counter()
    thetas = [[p.detach().double().clone() for p in ps] for ps, *_ in specs]
    states = [[{'t': 0, 'm': torch.zeros_like(t), 'v': torch.zeros_like(t)} for t in ts] for ts in thetas]
    for step_grads in grads:
        for g, (_, anchors, lam, max_decay) in enumerate(specs):
            for k in range(len(SHAPES)):
                thetas[g][k] = _reference_step(thetas[g][k], step_grads[g][k], states[g][k], anchors[k], lam,
                                               max_decay, counts)
    return thetas, counts


def _run_spd(grads, dtype=torch.float64, steps=None, **kwargs):
    groups, _ = _scenario(grads, dtype)
    opt = SPDAdam(groups, lr=LR, **kwargs)
    for step_grads in grads[:steps]:
        for g, group in enumerate(groups):
            for p, grad in zip(group['params'], step_grads[g]):
                p.grad = grad.to(dtype)
        opt.step()
    return [[p.detach().clone() for p in group['params']] for group in groups], opt


# ------------------------------------------------------------------------------------------------ math


def test_reference_reaches_every_branch():
    _, counts = _run_reference(_grads(0))
    for branch in ('c>=0', 'projected', 'r clamped at 0', 'r > 0.9', 'lam*r > 1 (overshoot)',
                   'capped by max_decay'):
        assert counts[branch] > 0, (branch, counts)


@pytest.mark.parametrize('path', PATHS)
def test_matches_float64_reference(path):
    grads = _grads(0)
    expected, _ = _run_reference(grads)
    actual, _ = _run_spd(grads, **path)
    for exp_group, act_group in zip(expected, actual):
        for exp, act in zip(exp_group, act_group):
            torch.testing.assert_close(act, exp, rtol=0, atol=1e-10)


@pytest.mark.parametrize('path', PATHS)
def test_overshoot_passes_the_anchor_and_max_decay_stops_at_it(path):
    theta0, g = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for max_decay, expected in ((None, 0.2), (1.0, 0.0)):
        p = torch.nn.Parameter(theta0 + 1e-6 * g)  # c = −gᵀ(θ−θ₀) < 0 at step 1, and γ_{t-1} ≪ γ_t so r ≈ 1
        opt = SPDAdam([{'params': [p], 'anchors': [theta0]}], lr=0.1, lam=3.0, max_decay=max_decay, **path)
        p.grad = g.clone()
        opt.step()
        # Adam's candidate is θ₀ − 0.1; λ r ≈ 3 takes it to θ₀ + 0.2, past the anchor; max_decay = 1 lands on θ₀.
        torch.testing.assert_close(p.detach(), theta0 + expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_foreach_equals_single_tensor_bitwise(dtype):
    grads = _grads(2, steps=30)
    single, _ = _run_spd(grads, dtype, foreach=False)
    foreach, _ = _run_spd(grads, dtype, foreach=True)
    for a_group, b_group in zip(single, foreach):
        for a, b in zip(a_group, b_group):
            assert torch.equal(a, b)


@pytest.mark.slow
def test_fused_equals_single_tensor():
    # float64 only: every extra dtype costs several compilations (float32 runs in test_lam_zero_is_torch_adam).
    grads = _grads(2, steps=30)
    single, _ = _run_spd(grads, foreach=False)
    fused, _ = _run_spd(grads, fused=True)
    for a_group, b_group in zip(single, fused):
        for a, b in zip(a_group, b_group):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize('group_numel, list_size', [(0, 0), (1 << 16, 8), (4, 2)],
                         ids=['per-tensor', 'grouped', 'grouped-and-listed'])
def test_fused_grouped_listed_and_per_tensor_equal_single_tensor(monkeypatch, group_numel, list_size):
    monkeypatch.setattr(optimizer, '_GROUP_NUMEL', group_numel)
    monkeypatch.setattr(optimizer, '_LIST_SIZE', list_size)
    grads = _grads(5, steps=30)
    groups, lists, singles = _plan(_scenario(grads)[0])
    # copy and near share their kind (λ > 0, float64 anchors): at most 4 elements they form padded groups, above
    # it equal-size lists of 2; the rest (zero, adam, bf16 anchors) has one tensor of each size per kind.
    assert (len(groups), len(lists), len(singles)) == {0: (0, 0, 20), 1 << 16: (4, 0, 12), 4: (2, 2, 12)}[group_numel]
    single, _ = _run_spd(grads, foreach=False)
    fused, _ = _run_spd(grads, fused=True)
    for a_group, b_group in zip(single, fused):
        for a, b in zip(a_group, b_group):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def _plan(groups):
    """How the fused path splits the tensors of these param groups: padded groups, equal-size lists, single ones."""
    opt = SPDAdam(groups, fused=True)
    params = [p for g in opt.param_groups for p in g['params']]
    lams = [g['lam'] for g in opt.param_groups for _ in g['params']]
    grads = [torch.zeros_like(p) for p in params]
    anchors = [opt.state[p].get('anchor') for p in params]
    padded, singles = optimizer._tensor_groups(params, grads, grads, grads, anchors, lams)
    lists, singles = optimizer._equal_size_lists(singles, params, grads, grads, grads, anchors, lams)
    return padded, lists, singles


def test_groups_hold_small_alike_tensors_and_every_tensor_steps_once(monkeypatch):
    monkeypatch.setattr(optimizer, '_GROUP_NUMEL', 8)
    monkeypatch.setattr(optimizer, '_GROUP_BUFFER_NUMEL', 16)  # at most 4 rows of length 4
    f64 = torch.float64
    params = ([torch.zeros(3, dtype=f64) for _ in range(5)] + [torch.zeros(2, 2, dtype=f64) for _ in range(4)]
              + [torch.zeros(9, dtype=f64), torch.zeros(4, 2, dtype=f64).t(), torch.zeros((), dtype=f64),
                 torch.zeros(0, dtype=f64), torch.zeros(3, dtype=torch.float32)])
    lams = [1.0] * 7 + [0.0] * 2 + [1.0] * 5
    anchors = [p.clone() for p in params]
    grads = [torch.zeros_like(p) for p in params]
    groups, singles = optimizer._tensor_groups(params, grads, grads, grads, anchors, lams)
    stepped = sorted([i for g in groups for i in g.indices] + singles)
    assert stepped == list(range(len(params)))
    # rows of length 4: the first 7 (λ > 0) in groups of 4 and 3; the two λ = 0 ones apart; the scalar (length 2)
    # and the float32 one alone, so single; too large, transposed (non-contiguous) and empty tensors are single too.
    assert [(g.indices, g.length) for g in groups] == [([0, 1, 2, 3], 4), ([4, 5, 6], 4), ([7, 8], 4)]
    assert singles == [9, 10, 11, 12, 13]


def test_equal_size_lists_are_full_and_alike(monkeypatch):
    monkeypatch.setattr(optimizer, '_LIST_SIZE', 2)
    f64 = torch.float64
    params = ([torch.zeros(6, dtype=f64), torch.zeros(2, 3, dtype=f64), torch.zeros(6, dtype=f64)]  # 3 of size 6
              + [torch.zeros(5, dtype=f64), torch.zeros(5, dtype=torch.float32)]  # dtypes differ
              + [torch.zeros(4, dtype=f64), torch.zeros(4, dtype=f64)]  # one has no anchor
              + [torch.zeros(3, 2, dtype=f64).t(), torch.zeros(6, dtype=f64)])  # non-contiguous, then λ = 0
    lams = [1.0] * 8 + [0.0]
    anchors = [p.clone() for p in params]
    anchors[6] = None
    grads = [torch.zeros_like(p) for p in params]
    lists, singles = optimizer._equal_size_lists(list(range(9)), params, grads, grads, grads, anchors, lams)
    assert lists == [[0, 1]] and singles == [2, 3, 4, 5, 6, 7, 8]
    monkeypatch.setattr(optimizer, '_LIST_SIZE', 0)
    assert optimizer._equal_size_lists([0, 1], params, grads, grads, grads, anchors, lams) == ([], [0, 1])


@pytest.mark.slow
def test_grouped_padding_is_inert_with_eps_zero(monkeypatch):
    # Padding with v = 0 would make the padded candidate 0/0 = NaN when eps = 0, and with it the row sums.
    gen = torch.Generator().manual_seed(6)
    init = [torch.randn(s, generator=gen, dtype=torch.float64) for s in [(3,), (3,), (5,), (5,)]]
    anchors = [t + 0.1 * torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in init]
    results = []
    for kwargs in ({'foreach': False}, {'fused': True}):
        params = [torch.nn.Parameter(t.clone()) for t in init]
        opt = SPDAdam([{'params': params, 'anchors': anchors, 'lam': 2.0}], lr=LR, eps=0.0, **kwargs)
        for step in range(5):
            for p in params:
                p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(step), dtype=torch.float64)
            opt.step()
        results.append([p.detach().clone() for p in params])
    assert len(_plan([{'params': init, 'anchors': anchors, 'lam': 2.0}])[0]) == 2
    for a, b in zip(*results):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_fused_group_buffers_are_kept_refilled_and_follow_params_without_grads():
    gen = torch.Generator().manual_seed(8)
    init = [torch.randn(s, generator=gen, dtype=torch.float64) for s in [(3,), (3,), (2, 2), (4,), (5,)]]
    anchors = [t + 0.1 * torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in init]
    grads = [[torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in init] for _ in range(6)]
    results, opts = [], []
    for kwargs in ({'foreach': False}, {'fused': True}):
        params = [torch.nn.Parameter(t.clone()) for t in init]
        opt = SPDAdam([{'params': params, 'anchors': anchors, 'lam': 2.0}], lr=LR, eps=0.0, **kwargs)
        for step, step_grads in enumerate(grads):
            for k, (p, g) in enumerate(zip(params, step_grads)):
                p.grad = None if (step == 3 and k == 0) else g.clone()  # step 3 has a grad-less parameter
            if kwargs.get('fused') and step == 2:
                (buffers,) = opt._group_buffers.values()
                (group,) = buffers.values()
                assert group.length == 4 and group.indices == [0, 1, 2, 3]  # kept from the first steps
                group.v.zero_()  # a stale padding of v = 0 would make eps = 0 divide 0 by 0
            opt.step()
        results.append([p.detach().clone() for p in params])
        opts.append(opt)
    (buffers,) = opts[1]._group_buffers.values()
    assert [g.indices for g in buffers.values()] == [[0, 1, 2, 3]]  # step 3's plan was dropped again
    for a, b in zip(*results):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('path', PATHS)
def test_lam_zero_is_torch_adam(path):
    gen = torch.Generator().manual_seed(3)
    init = [torch.randn(s, generator=gen) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(30)]
    torch_kwargs = {'foreach': path.get('foreach', False), 'fused': path.get('fused')}
    ours = [torch.nn.Parameter(t.clone()) for t in init]
    theirs = [torch.nn.Parameter(t.clone()) for t in init]
    opt_ours = SPDAdam(ours, lr=LR, lam=0.0, **path)
    opt_theirs = torch.optim.Adam(theirs, lr=LR, **torch_kwargs)
    for step_grads in grads:
        for a, b, g in zip(ours, theirs, step_grads):
            a.grad, b.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
    for a, b in zip(ours, theirs):
        if path.get('fused'):  # inductor fuses the moment update, so rounding may differ in the last bit
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(a, b)


@pytest.mark.parametrize('path', PATHS)
def test_bfloat16_params_step_in_float32(path):
    grads = _grads(4, steps=10)
    expected, _ = _run_spd(grads, torch.float64, steps=10, foreach=False)
    actual, opt = _run_spd(grads, torch.bfloat16, steps=10, **path)
    single, _ = _run_spd(grads, torch.bfloat16, steps=10, foreach=False)
    for exp_group, act_group, single_group in zip(expected, actual, single):
        for exp, act, one in zip(exp_group, act_group, single_group):
            assert act.dtype == torch.bfloat16
            # Steps of lr = 1e-2 on |θ| ~ 1-3 are about one bf16 ulp, so only a loose match is meaningful here.
            torch.testing.assert_close(act.double(), exp, rtol=2e-2, atol=2e-2)
            if 'fused' in path:
                torch.testing.assert_close(act, one, rtol=1e-2, atol=1e-3)
            else:
                assert torch.equal(act, one)
    state = next(iter(s for s in opt.state.values() if 'exp_avg' in s))
    assert state['exp_avg'].dtype == torch.bfloat16 and state['exp_avg_sq'].dtype == torch.bfloat16


# ------------------------------------------------------------------------------------------------ training loops


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.LayerNorm(8),
                               torch.nn.Linear(8, 3)).double()


def _groups(model, **extra):
    # Mimics MAPS: per-layer λ, biases at λ = 0, an extra informational key.
    named = list(model.named_parameters())
    return [
        {'params': [p for n, p in named if n.startswith('0.') and n.endswith('weight')], 'lam': 1.5, 'name': 'l0'},
        {'params': [p for n, p in named if n.startswith('2.')], 'lam': 0.8, 'anchor_dtype': torch.bfloat16,
         'name': 'norm'},
        {'params': [p for n, p in named if n.startswith('3.') and n.endswith('weight')], 'lam': 0.4,
         'anchor': 'zero', 'name': 'head'},
        {'params': [p for n, p in named if n.endswith('bias') and not n.startswith('2.')], 'lam': 0.0,
         'name': 'bias'},
    ]


def _batches(n, seed=7, size=16):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 5, generator=gen, dtype=torch.float64),
             torch.randn(size, 3, generator=gen, dtype=torch.float64)) for _ in range(n)]


def _train(model, opt, batches):
    for x, y in batches:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize('path', PATHS[:2])
def test_resume_from_saved_state_equals_straight_run(tmp_path, path):
    batches = _batches(12)
    straight = _model()
    opt = SPDAdam(_groups(straight), lr=3e-2, **path)
    _train(straight, opt, batches)

    model = _model()
    opt = SPDAdam(_groups(model), lr=3e-2, **path)
    _train(model, opt, batches[:5])
    torch.save({'model': model.state_dict(), 'optim': opt.state_dict()}, tmp_path / 'ckpt.pt')

    resumed = _model(seed=123)  # different init: everything must come from the checkpoint
    ckpt = torch.load(tmp_path / 'ckpt.pt', weights_only=True)
    resumed.load_state_dict(ckpt['model'])
    opt = SPDAdam(_groups(resumed), lr=3e-2, **path)  # 'copy' anchors taken now are the trained weights ...
    opt.load_state_dict(ckpt['optim'])  # ... and are replaced by the saved pretrained ones
    anchors = [opt.state[p]['anchor'] for p in opt.param_groups[1]['params']]
    assert all(a.dtype == torch.bfloat16 for a in anchors)
    assert all('anchor' not in opt.state[p] for p in opt.param_groups[2]['params'])
    assert [g['name'] for g in opt.param_groups] == ['l0', 'norm', 'head', 'bias']
    _train(resumed, opt, batches[5:])

    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_gradient_accumulation_equals_full_batch():
    batches = _batches(6, size=16)
    full, accum = _model(), _model()
    opt_full, opt_accum = SPDAdam(_groups(full), lr=3e-2), SPDAdam(_groups(accum), lr=3e-2)
    for x, y in batches:
        opt_full.zero_grad()
        torch.nn.functional.mse_loss(full(x), y).backward()
        opt_full.step()
        opt_accum.zero_grad()
        for xs, ys in zip(x.chunk(2), y.chunk(2)):
            (torch.nn.functional.mse_loss(accum(xs), ys) / 2).backward()
        opt_accum.step()
    for a, b in zip(full.parameters(), accum.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert any(not torch.equal(p, a) for p, a in zip(full.parameters(), _model().parameters()))


def test_grad_scaler_step_equals_plain_step_and_skips_inf():
    batches = _batches(4)
    plain, scaled = _model(), _model()
    opt_plain, opt_scaled = SPDAdam(_groups(plain), lr=3e-2), SPDAdam(_groups(scaled), lr=3e-2)
    scaler = torch.amp.GradScaler('cpu', init_scale=2.0**10, growth_interval=1000)
    for x, y in batches:
        opt_plain.zero_grad()
        torch.nn.functional.mse_loss(plain(x), y).backward()
        opt_plain.step()
        opt_scaled.zero_grad()
        scaler.scale(torch.nn.functional.mse_loss(scaled(x), y)).backward()
        scaler.step(opt_scaled)
        scaler.update()
    for a, b in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)

    before = [p.detach().clone() for p in scaled.parameters()]
    opt_scaled.zero_grad()
    x, y = batches[0]
    scaler.scale(torch.nn.functional.mse_loss(scaled(x * float('inf')), y)).backward()
    scaler.step(opt_scaled)
    scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(before, scaled.parameters()))
    assert scaler.get_scale() == 2.0**9


# ------------------------------------------------------------------------------------------------ state and API


def test_state_is_lazy_except_the_anchor_and_grad_less_params_are_skipped():
    a, b = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2))
    z = torch.nn.Parameter(torch.randn(2))
    opt = SPDAdam([{'params': [a, b], 'lam': 1.0}, {'params': [z], 'lam': 1.0, 'anchor': 'zero'}])
    assert set(opt.state[a]) == {'anchor'} and torch.equal(opt.state[a]['anchor'], a.detach())
    assert opt.state[a]['anchor'].data_ptr() != a.data_ptr()
    assert z not in opt.state
    a.grad = torch.randn(3)
    b_before = b.detach().clone()
    opt.step()
    assert set(opt.state[a]) == {'anchor', 'step', 'exp_avg', 'exp_avg_sq'}
    assert set(opt.state[b]) == {'anchor'} and torch.equal(b, b_before)
    assert opt.state[a]['step'].item() == 1.0


def test_explicit_anchor_that_aliases_its_param_is_copied():
    p = torch.nn.Parameter(torch.randn(4))
    opt = SPDAdam([{'params': [p], 'anchors': [p.detach()], 'lam': 1.0}])
    assert opt.param_groups[0]['anchor'] == 'explicit'
    assert opt.state[p]['anchor'].data_ptr() != p.data_ptr()
    given = torch.randn(4)
    opt = SPDAdam([{'params': [p], 'anchors': [given], 'lam': 1.0}])
    assert opt.state[p]['anchor'].data_ptr() == given.data_ptr()  # no copy when device and dtype match


def test_anchor_device_and_dtype():
    p = torch.nn.Parameter(torch.randn(4, 3))
    opt = SPDAdam([p], anchor_device='cpu', anchor_dtype=torch.bfloat16, lam=0.5)
    assert opt.state[p]['anchor'].dtype == torch.bfloat16 and opt.state[p]['anchor'].device.type == 'cpu'
    assert opt.param_groups[0]['anchor_device'] == 'cpu'


def test_step_returns_the_closure_loss():
    model = _model()
    opt = SPDAdam(model.parameters(), lam=0.3)
    x, y = _batches(1)[0]

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and loss.item() > 0


def test_setstate_backfills_defaults():
    opt = SPDAdam([torch.nn.Parameter(torch.randn(2))], lam=0.5)
    assert pickle.loads(pickle.dumps(opt)).param_groups[0]['lam'] == 0.5
    state = copy.deepcopy(opt.__getstate__())
    for key in ('lam', 'anchor', 'anchor_device', 'anchor_dtype', 'max_decay', 'foreach', 'fused'):
        del state['param_groups'][0][key]
    restored = SPDAdam.__new__(SPDAdam)
    restored.__setstate__(state)
    assert restored.param_groups[0]['lam'] == 0.0 and restored.param_groups[0]['anchor'] == 'copy'


def test_load_state_dict_without_anchors_is_refused():
    p = torch.nn.Parameter(torch.randn(2))
    adam = torch.optim.Adam([p])
    p.grad = torch.randn(2)
    adam.step()
    opt = SPDAdam([p], lam=1.0)
    with pytest.raises(ValueError, match='no anchor'):
        opt.load_state_dict(adam.state_dict())


def test_functional_takes_per_tensor_lr_and_lam():
    gen = torch.Generator().manual_seed(5)
    params = [torch.randn(4, generator=gen, dtype=torch.float64) for _ in range(2)]
    anchors = [p.clone() + 0.1 for p in params]
    grads = [torch.randn(4, generator=gen, dtype=torch.float64) for _ in range(2)]
    outs = []
    for foreach in (False, True):
        ps = [p.clone() for p in params]
        spd_adam(ps, grads, [torch.zeros(4, dtype=torch.float64) for _ in ps],
                 [torch.zeros(4, dtype=torch.float64) for _ in ps], anchors,
                 [torch.tensor(0.0) for _ in ps], foreach=foreach, beta1=0.9, beta2=0.999, lr=[0.1, 0.01], eps=1e-8,
                 lam=[0.0, 2.0])
        outs.append(ps)
    assert all(torch.equal(a, b) for a, b in zip(*outs))
    torch.testing.assert_close(outs[0][0], params[0] - 0.1 * torch.sign(grads[0]), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match='lam has 3 entries'):
        spd_adam(params, grads, grads, grads, anchors, [torch.tensor(0.0)] * 2, beta1=0.9, beta2=0.999, lr=0.1,
                 eps=1e-8, lam=[1.0, 1.0, 1.0])


@pytest.mark.parametrize('kwargs, error, match', [
    ({'lr': -1.0}, ValueError, 'Invalid learning rate: -1.0'),
    ({'betas': (1.0, 0.999)}, ValueError, 'Invalid beta parameter at index 0: 1.0'),
    ({'betas': (0.9, -0.1)}, ValueError, 'Invalid beta parameter at index 1: -0.1'),
    ({'eps': -1e-8}, ValueError, 'Invalid epsilon value: -1e-08'),
    ({'lam': -0.5}, ValueError, 'Invalid lam value: -0.5'),
    ({'lam': float('nan')}, ValueError, 'Invalid lam value: nan'),
    ({'max_decay': -1.0}, ValueError, 'Invalid max_decay value: -1.0'),
    ({'anchor': 'pretrained'}, ValueError, "Invalid anchor: 'pretrained'"),
    ({'anchor_dtype': torch.int8}, TypeError, 'Invalid anchor_dtype: torch.int8'),
    ({'anchor_device': 'gpu0'}, ValueError, "Invalid anchor_device: 'gpu0'"),
    ({'foreach': True, 'fused': True}, RuntimeError, '`fused` and `foreach`'),
])
def test_constructor_validates_and_quotes(kwargs, error, match):
    with pytest.raises(error, match=match):
        SPDAdam([torch.nn.Parameter(torch.randn(2))], **kwargs)


def test_group_values_are_validated_with_the_group_named():
    p, q = torch.nn.Parameter(torch.randn(2)), torch.nn.Parameter(torch.randn(3))
    with pytest.raises(ValueError, match=r"Invalid lam value: -1.0 in param group 1 \('head'\)"):
        SPDAdam([{'params': [p]}, {'params': [q], 'lam': -1.0, 'name': 'head'}])
    with pytest.raises(ValueError, match=r"anchors\[0\] has shape \(2,\) but its parameter has shape \(3,\)"):
        SPDAdam([{'params': [q], 'anchors': [torch.zeros(2)]}])
    with pytest.raises(ValueError, match="'anchors' has 2 entries but 'params' has 1"):
        SPDAdam([{'params': [q], 'anchors': [torch.zeros(3)] * 2}])
    with pytest.raises(ValueError, match="'zero' together with 'anchors'"):
        SPDAdam([{'params': [q], 'anchors': [torch.zeros(3)], 'anchor': 'zero'}])
    with pytest.raises(TypeError, match='complex'):
        SPDAdam([torch.nn.Parameter(torch.randn(2, dtype=torch.complex64))])


def test_sparse_gradients_are_refused_with_the_way_out():
    emb = torch.nn.Embedding(5, 3, sparse=True)
    opt = SPDAdam(emb.parameters(), lam=1.0)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match='sparse gradients.*sparse=False'):
        opt.step()


def test_extra_group_keys_are_kept_and_deepcopy_works():
    model = _model()
    opt = SPDAdam(_groups(model), lr=1e-3)
    assert [g['name'] for g in opt.state_dict()['param_groups']] == ['l0', 'norm', 'head', 'bias']
    assert copy.deepcopy(opt).param_groups[0]['lam'] == 1.5
