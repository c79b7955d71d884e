"""The trainer's distributed plumbing: the accelerator (one process, DDP or FSDP2), sharding the model before the
optimizer is built, and the steps that differ once parameters are FSDP2 DTensors (export, drift, resume).

FSDP2 order. accelerate's `prepare(model, optimizer)` shards the model and then swaps the optimizer's parameters
for the shards; SPDAdam's anchors, copied when the optimizer is built, would stay full unsharded tensors keyed by
the old parameters. So the model is sharded first with accelerate's own `fsdp2_prepare_model` (the plugin's wrap
policy and mixed precision), the optimizer is built on the shards (anchors are DTensors like their parameters), and
`prepare` then finds an FSDP module, leaves it as it is and registers both (`prepare_sharded`).

CPU. accelerate 1.15 selects FSDP only inside ``elif self.distributed_type in [DistributedType.MULTI_GPU, ...]`` of
`AcceleratorState.__init__`, a list without MULTI_CPU, so CPU processes given an FSDP plugin run DDP; the trainer
refuses that. The tests force the FSDP state on gloo to run everything after that check.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin, fsdp2_prepare_model
from torch import nn
from torch.distributed.tensor import DTensor

from maps_vla.maps.drift import DriftRow, drift_report
from maps_vla.maps.factory import FinetuneMethodConfig, prepare_model
from maps_vla.model.checkpoint import build_empty, finalize_loaded
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.train.configuration_train import FSDPConfig, TrainConfig
from maps_vla.train.precision import fsdp_mixed_precision_policy

__all__ = ['make_accelerator', 'shard_model', 'prepare_sharded', 'local_tensor', 'drift_rows', 'export_policy',
           'init_optimizer_state']

logger = logging.getLogger(__name__)

_USE_FSDP_ENV = 'ACCELERATE_USE_FSDP'


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """The run's accelerator: FSDP2 when `cfg.fsdp.enabled`, else what the launch gives (one process or DDP).

    Raises:
        RuntimeError: FSDP2 was asked for but accelerate picked something else (it only shards on accelerator
            devices; on CPU processes it would silently run DDP).
        ValueError: accelerate is configured for FSDP by the launcher while `cfg.fsdp.enabled` is False.
    """
    # accelerate keeps its settings in a process-wide singleton; drop the previous run's (not the process group)
    # so that several runs in one process (the demo, notebooks, tests) may each choose their own settings.
    AcceleratorState._reset_state(reset_partial_state=False)
    plugin = None
    if cfg.fsdp.enabled:
        plugin = FullyShardedDataParallelPlugin(
            fsdp_version=2, auto_wrap_policy=cfg.fsdp.auto_wrap_policy,
            transformer_cls_names_to_wrap=list(cfg.fsdp.transformer_cls_names_to_wrap) or None,
            reshard_after_forward=cfg.fsdp.reshard_after_forward,
            # ours, not accelerate's default, which changed between releases (train/precision.py)
            mixed_precision_policy=fsdp_mixed_precision_policy(cfg.mixed_precision))
    launcher_fsdp = os.environ.get(_USE_FSDP_ENV)
    try:
        accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                                  fsdp_plugin=plugin)
    finally:  # a plugin makes accelerate set ACCELERATE_USE_FSDP for the whole process: keep it to this run
        if launcher_fsdp is None:
            os.environ.pop(_USE_FSDP_ENV, None)
        else:
            os.environ[_USE_FSDP_ENV] = launcher_fsdp
    if cfg.fsdp.enabled and not accelerator.is_fsdp2:
        raise RuntimeError(f'TrainConfig.fsdp.enabled, but accelerate chose {accelerator.distributed_type.value} on '
                           f'{accelerator.device}: accelerate shards with FSDP2 only on accelerator devices (GPU, '
                           'XPU, ...) in a multi-process launch')
    if not cfg.fsdp.enabled and accelerator.distributed_type == DistributedType.FSDP:
        raise ValueError('accelerate is configured for FSDP (by accelerate config / ACCELERATE_USE_FSDP, or by an '
                         'earlier FSDP run in this process) but TrainConfig.fsdp.enabled is false: set '
                         'fsdp.enabled=true to train with FSDP2')
    return accelerator


def _wrap_class_names(model: nn.Module) -> list[str]:
    """The `_no_split_modules` classes of the submodels (ViT, LLM) that occur in `model`, e.g. decoder layers."""
    present = {type(m).__name__ for m in model.modules()}
    names = {n for m in model.modules() for n in (getattr(m, '_no_split_modules', None) or ())}
    return sorted(names & present)


def shard_model(accelerator: Accelerator, model: nn.Module, cfg: FSDPConfig) -> nn.Module:
    """Shard `model` in place with FSDP2 as the accelerator's plugin says (before the optimizer is built).

    Returns:
        The same module, now an FSDP module whose parameters are DTensors sharded on dim 0.

    Raises:
        ValueError: a class named in `cfg.transformer_cls_names_to_wrap` is not in the model (accelerate's message).
    """
    plugin = accelerator.state.fsdp_plugin
    if cfg.auto_wrap_policy == 'transformer_based_wrap' and not cfg.transformer_cls_names_to_wrap:
        plugin.transformer_cls_names_to_wrap = _wrap_class_names(model)
    model = fsdp2_prepare_model(accelerator, model)
    units = sum(1 for m in model.modules() if type(m).__name__.startswith('FSDP'))
    logger.info('FSDP2: %d shard units over %d processes (%s %s)', units, accelerator.num_processes,
                cfg.auto_wrap_policy, plugin.transformer_cls_names_to_wrap or '')
    return model


def prepare_sharded(accelerator: Accelerator, model: nn.Module, optimizer: torch.optim.Optimizer
                    ) -> tuple[nn.Module, torch.optim.Optimizer]:
    """`accelerator.prepare(model, optimizer)` for a model already sharded by `shard_model`.

    accelerate maps the optimizer's parameters to the model's by ``data_ptr()`` of their local tensors
    (`fsdp2_switch_optimizer_parameters`: ``param_group["params"] = [mapping[p.data_ptr] for p in ...]``). A
    process whose shard of a tensor is empty (dim 0 smaller than the world size, e.g. a ViT's (1, 1, d) CLS token)
    holds several tensors with ``data_ptr() == 0``, which that mapping conflates. The model is already sharded, so
    the right parameters are the ones the optimizer was built on: they are put back after `prepare`.

    Raises:
        RuntimeError: `prepare` replaced the model's parameters, so the optimizer's no longer belong to it.
    """
    groups = [list(group['params']) for group in optimizer.param_groups]
    model, optimizer = accelerator.prepare(model, optimizer)
    for group, params in zip(optimizer.param_groups, groups):
        group['params'] = params
    owned = {id(p) for p in model.parameters()}
    if any(id(p) not in owned for params in groups for p in params):
        raise RuntimeError('accelerate.prepare replaced the parameters of the sharded model; the optimizer state '
                           '(SPD anchors, moments) would no longer belong to them')
    return model, optimizer


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """This process's shard of a DTensor, or `t` itself."""
    return t.to_local() if isinstance(t, DTensor) else t


def drift_rows(policy: nn.Module, reference: Mapping[str, torch.Tensor], accelerator: Accelerator
               ) -> list[DriftRow] | None:
    """Per-unit drift of the trainable parameters from `reference` (θ₀ by name, this process's shards).

    Unsharded: computed by the main process alone (others get None). Sharded: every process must call; each sums
    its shards and one all_reduce of the squared norms gives every process the rows.
    """
    sharded = accelerator.is_fsdp2
    if not sharded and not accelerator.is_main_process:
        return None
    current = {n: local_tensor(p) for n, p in policy.named_parameters() if p.requires_grad}
    rows = drift_report(current, reference)
    if not sharded:
        return rows
    sums = torch.tensor([[r.absolute ** 2, r.reference_norm ** 2, r.numel] for r in rows], dtype=torch.float64,
                        device=accelerator.device)
    dist.all_reduce(sums)
    return [dataclasses.replace(r, absolute=math.sqrt(a), reference_norm=math.sqrt(b), numel=int(n))
            for r, (a, b, n) in zip(rows, sums.tolist())]


def _unsharded(policy: VLAPolicy, state: dict[str, torch.Tensor], method: FinetuneMethodConfig) -> VLAPolicy:
    """A plain CPU policy holding the gathered `state` (LoRA merged into the linear layers)."""
    plain = build_empty(policy.config, policy.tokenizer, policy.norm_stats, policy.action_spec)
    target = prepare_model(method, plain)  # the same LoRA adapters on the meta device, so the state keys match
    target.load_state_dict(state, strict=True, assign=True)
    if method.lora:
        plain = target.merge_and_unload()
    return finalize_loaded(plain, 'cpu', None)


def export_policy(accelerator: Accelerator, policy: VLAPolicy, model: nn.Module, directory: Path,
                  method: FinetuneMethodConfig) -> None:
    """Write the deployable policy folder (plain weights, LoRA merged) from the main process.

    Every process must call it: under FSDP2 the shards are gathered into a full CPU state dict on the main process.
    """
    if accelerator.is_fsdp2:
        state = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            _unsharded(policy, state, method).save_pretrained(directory)
    elif accelerator.is_main_process:
        if method.lora:  # merged copy: deployment needs plain weights, training keeps its adapters
            copy.deepcopy(accelerator.unwrap_model(model)).merge_and_unload().save_pretrained(directory)
        else:
            policy.save_pretrained(directory)


@torch.no_grad()
def init_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Create every per-parameter state entry by one step with zero gradients and lr 0 (parameters stay put).

    accelerate loads FSDP2 optimizer state with torch.distributed.checkpoint, which fills only the entries of a
    template taken from the live optimizer. torch makes that template complete by such a step only when the state
    is empty, and SPDAdam's is not (it holds the anchors), so without this the moments and step counts would not
    be restored. The load then overwrites everything this step wrote.
    """
    zeroed = [p for group in optimizer.param_groups for p in group['params'] if p.requires_grad and p.grad is None]
    for p in zeroed:
        p.grad = torch.zeros_like(p)
    lrs = [group['lr'] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group['lr'] = 0.0
    try:
        optimizer.step()
    finally:
        for group, lr in zip(optimizer.param_groups, lrs):
            group['lr'] = lr
        for p in zeroed:
            p.grad = None
