"""Rank worker for test_trainer_fsdp.py (a plain module on sys.path, so spawned ranks can import it by name).

accelerate 1.15 turns an FSDP plugin into FSDP only for accelerator devices: `AcceleratorState.__init__` takes the
FSDP branch inside ``elif self.distributed_type in [DistributedType.MULTI_GPU, DistributedType.MULTI_MLU, ...]``,
a list without MULTI_CPU, so CPU processes run DDP. `_CpuFsdpAccelerator` sets the state a GPU launch would reach
(distributed_type FSDP with the plugin); everything after it, i.e. accelerate's FSDP2 prepare, no_sync, clipping and
DCP save/load, and the trainer's own FSDP2 path, runs unchanged on gloo.
"""

import dataclasses
import datetime
import math
import os
import shutil

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.state import PartialState
from accelerate.utils import DistributedType
from torch.distributed.fsdp import MixedPrecisionPolicy
from torch.distributed.tensor import DTensor

from maps_vla.config import load_config
from maps_vla.data.dataset import Dataset
from maps_vla.data.torch_dataset import TorchDataset
from maps_vla.maps.optimizer import SPDAdam
from maps_vla.model.factory import load_policy
from maps_vla.train import distributed, trainer
from maps_vla.train.augment import AugmentConfig
from maps_vla.train.batching import collate_robot, dataset_cameras, robot_batch
from maps_vla.train.configuration_train import FSDPConfig, TrainConfig


class _CpuFsdpAccelerator(Accelerator):
    def __init__(self, *args, fsdp_plugin=None, **kwargs):
        super().__init__(*args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None:
            self.state.distributed_type = DistributedType.FSDP
            self.state.fsdp_plugin = fsdp_plugin
            PartialState._shared_state['distributed_type'] = DistributedType.FSDP
            if self.state.mixed_precision != 'no':  # what the skipped branch does next
                fsdp_plugin.set_mixed_precision(self.state.mixed_precision)


def _probe_batch(policy, root):
    dataset = Dataset(root)
    samples = TorchDataset(dataset, policy.config.chunk_size)
    batch = collate_robot([samples[i] for i in range(0, 64, 16)])
    return robot_batch(batch, policy.processor, dataset_cameras(dataset), AugmentConfig(enabled=False),
                       torch.Generator().manual_seed(0))


def _check_anchors(optimizer, rank, world):
    """Every SPD anchor (just built) is a DTensor shard like its parameter and a copy of it; counts empty shards."""
    assert isinstance(optimizer, SPDAdam)
    anchored = empty = 0
    for group in optimizer.param_groups:
        for p in group['params']:
            assert isinstance(p, DTensor)
            anchor = optimizer.state[p].get('anchor')
            if group['anchor'] == 'zero':
                assert anchor is None
                continue
            assert isinstance(anchor, DTensor) and anchor.placements == p.placements
            local = anchor.to_local()
            rows = -(-p.shape[0] // world)  # torch.chunk's split of dim 0
            assert local.shape == p.to_local().shape == (max(0, min(rows, p.shape[0] - rank * rows)), *p.shape[1:])
            assert torch.equal(local, p.to_local()) and local.data_ptr() != p.to_local().data_ptr() or not local.numel()
            anchored += 1
            empty += local.numel() == 0
    assert anchored > 0
    return empty


def worker(rank, port, world, config_path):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world), ACCELERATE_USE_CPU='true')
    cfg = load_config(TrainConfig, config_path)
    cfg = dataclasses.replace(cfg, batch_size=cfg.batch_size // world)
    out = cfg.out_dir
    empty_shards, drifts = [], []

    def checking_make_optimizer(method, model):
        optimizer, regularizer = make_optimizer(method, model)
        sharded = isinstance(optimizer.param_groups[0]['params'][0], DTensor)
        empty_shards.append(_check_anchors(optimizer, rank, world) if sharded else None)
        return optimizer, regularizer

    def recording_drift_rows(policy, reference, accelerator):
        rows = drift_rows(policy, reference, accelerator)
        drifts.append(rows)
        return rows

    def probing_export_policy(accelerator, policy, model, directory, method):
        export_policy(accelerator, policy, model, directory, method)
        if accelerator.is_fsdp2 and directory.name == 'policy' and directory.parent.name == 'fsdp':
            # The sharded model (parameters gathered unit by unit) and the exported folder loaded in one process
            # compute the same loss on the same batch.
            batch = _probe_batch(policy, cfg.data.root)
            model.eval()
            with torch.no_grad():
                sharded_loss = model(batch)['loss']
            if rank == 0:
                with torch.no_grad():
                    single_loss = load_policy(directory)(batch)['loss']
                assert torch.equal(single_loss, sharded_loss), (single_loss, sharded_loss)

    make_optimizer, drift_rows, export_policy = trainer.make_optimizer, trainer.drift_rows, trainer.export_policy
    trainer.make_optimizer, trainer.drift_rows = checking_make_optimizer, recording_drift_rows
    trainer.export_policy, distributed.Accelerator = probing_export_policy, _CpuFsdpAccelerator
    try:
        trainer.train(dataclasses.replace(cfg, out_dir=f'{out}/ddp'))
        assert empty_shards == [None]  # DDP: plain tensors
        ddp_drift = drifts[-1]

        sharded = dataclasses.replace(cfg, fsdp=FSDPConfig(enabled=True))
        straight = trainer.train(dataclasses.replace(sharded, out_dir=f'{out}/fsdp'))
        assert (empty_shards[-1] > 0) == (rank == 1), empty_shards  # rank 1 holds no row of the (1, n, d) tokens
        if rank == 0:  # the shards add up to the whole tensors (measured max relative gap 5e-6)
            assert [(r.name, r.numel) for r in drifts[-1]] == [(r.name, r.numel) for r in ddp_drift]
            for a, b in zip(drifts[-1], ddp_drift):
                assert math.isclose(a.relative, b.relative, rel_tol=1e-3), (a, b)

        half = cfg.steps // 2
        trainer.train(dataclasses.replace(sharded, out_dir=f'{out}/resumed', steps=half))
        resumed = trainer.train(dataclasses.replace(sharded, out_dir=f'{out}/resumed'))
        assert resumed.resumed_from == half
        assert resumed.losses == straight.losses[half:], (resumed.losses, straight.losses)

        # Without a complete optimizer state before the load, DCP restores the anchors but not the moments.
        trainer.init_optimizer_state = lambda optimizer: None
        if rank == 0:
            step = f'checkpoints/step_{half:07d}'
            shutil.copytree(f'{out}/resumed/{step}', f'{out}/incomplete/{step}')
        dist.barrier()
        incomplete = trainer.train(dataclasses.replace(sharded, out_dir=f'{out}/incomplete'))
        trainer.init_optimizer_state = distributed.init_optimizer_state
        assert incomplete.resumed_from == half and incomplete.losses[0] == resumed.losses[0]
        assert incomplete.losses[1] != resumed.losses[1]

        # LoRA under FSDP2: the export merges the gathered adapters (the test compares it with the DCP state).
        method = dataclasses.replace(cfg.method, lora=True, lora_rank=4)
        trainer.train(dataclasses.replace(sharded, out_dir=f'{out}/lora', steps=1, method=method))

        # bf16 under FSDP2 is our MixedPrecisionPolicy (bf16 gathered weights and compute, fp32 gradient reduction
        # and sharded master weights), whatever accelerate's default policy is (1.15 and 1.16 differ).
        bf16_cfg = dataclasses.replace(sharded, out_dir=f'{out}/bf16', steps=2, grad_accum=1, mixed_precision='bf16')
        bf16 = trainer.train(bf16_cfg)
        assert bf16.compute_dtype == torch.bfloat16 and all(math.isfinite(x) for x in bf16.losses), bf16
        assert load_policy(f'{out}/bf16/policy').dtype == torch.float32
        # A policy that leaves the gathered weights in fp32 (bf16 asked for, not applied) stops the run.
        policy = distributed.fsdp_mixed_precision_policy
        distributed.fsdp_mixed_precision_policy = lambda mp: MixedPrecisionPolicy(param_dtype=torch.float32)
        try:
            trainer.train(dataclasses.replace(bf16_cfg, out_dir=f'{out}/bf16_broken'))
            raise AssertionError('bf16 not applied under FSDP2, and the run did not stop')
        except RuntimeError as error:
            assert "asks for bfloat16 compute, but" in str(error), error
        finally:
            distributed.fsdp_mixed_precision_policy = policy
    finally:
        trainer.make_optimizer, trainer.drift_rows, trainer.export_policy = make_optimizer, drift_rows, export_policy
        trainer.init_optimizer_state, distributed.Accelerator = distributed.init_optimizer_state, Accelerator
        # Wait for the peer before tearing gloo down (a rank leaving early can abort the other's last collective);
        # bounded, so a failed rank cannot hang the test.
        try:
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=120))
        finally:
            dist.destroy_process_group()
