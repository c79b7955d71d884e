"""The fine-tune loop behind `maps-vla train`: accelerate (single GPU, DDP, FSDP2), bf16, gradient accumulation,
clipping, MAPS/SPD or a baseline, optional VL co-training, TensorBoard, and checkpoints that resume exactly.

Exact resume: the data order is a pure function of (seed, batch number), co-training steps a pure function of
the step, and the augmentation generator, LR schedule, optimizer (with its SPD anchors) and RNGs are saved with
every checkpoint, so stopping at step k and resuming gives the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import accelerate
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.distributed.tensor import DTensor
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from maps_vla.config import save_config
from maps_vla.data.dataset import Dataset
from maps_vla.data.torch_dataset import TorchDataset
from maps_vla.maps.factory import make_optimizer, prepare_model
from maps_vla.model.factory import make_policy, make_policy_config
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.model.vla.processor_vla import VLAProcessor
from maps_vla.policy import ActionSpec, action_kind_from_names
from maps_vla.train.batching import collate_robot, dataset_cameras, norm_stats_from_dataset, robot_batch
from maps_vla.train.checkpointing import checkpoint_dir, commit_checkpoint, latest_checkpoint, prune_checkpoints
from maps_vla.train.configuration_train import ModelSourceConfig, TrainConfig
from maps_vla.train.cotrain import VLDataset, collate_vl, is_cotrain_step
from maps_vla.train.frame_pool import frame_pool
from maps_vla.train.distributed import (drift_rows, export_policy, init_optimizer_state, local_tensor,
                                        make_accelerator, prepare_sharded, shard_model)
from maps_vla.train.health import HealthMonitor, HealthReport
from maps_vla.train.inference_match import capture_side, deployed, robot_augment, set_config, training_config
from maps_vla.train.precision import ComputeDtypeProbe

__all__ = ['train', 'TrainResult', 'build_policy']

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    """What a run produced."""

    policy_dir: Path  # the final deployable policy folder
    steps: int  # optimizer steps done in total
    losses: list[float]  # loss of every optimizer step done in this process (resumed steps excluded)
    resumed_from: int  # step the run resumed from (0: fresh)
    compute_dtype: torch.dtype | None = None  # what the linear layers computed in (measured; None: no step ran)
    health: HealthReport | None = None  # image/state dependence at the end (None: off, FSDP2 or no robot step)


class _Counters:
    """Trainer state saved with accelerate's checkpoint (register_for_checkpointing needs state_dict/load)."""

    def __init__(self, seed: int) -> None:
        self.step = 0
        self.augment_rng = torch.Generator().manual_seed(seed + 1)

    def state_dict(self) -> dict[str, Any]:
        return {'step': self.step, 'augment_rng': self.augment_rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state['step'])
        self.augment_rng.set_state(state['augment_rng'])


class _BatchSampler:
    """Endless shuffled batches of indices; batch b is a pure function of (seed, b), sharded across ranks.

    An epoch is a permutation of `pool` (default: every index once; `frame_pool` repeats some).
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int, rank: int, world: int,
                 pool: list[int] | None = None) -> None:
        global_batch = batch_size * world
        if n < global_batch:
            raise ValueError(f'The dataset has {n} samples, fewer than one global batch ({global_batch})')
        self.pool = None if pool is None else torch.as_tensor(pool, dtype=torch.long)
        self.n = n if pool is None else len(pool)
        self.global_batch, self.seed, self.start, self.rank, self.world = global_batch, seed, start, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        per_epoch = self.n // self.global_batch
        epoch, offset = divmod(self.start, per_epoch)
        while True:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
            if self.pool is not None:
                order = self.pool[order]
            for b in range(offset, per_epoch):
                batch = order[b * self.global_batch:(b + 1) * self.global_batch]
                yield batch[self.rank::self.world].tolist()
            epoch, offset = epoch + 1, 0


def _loader(dataset: torch.utils.data.Dataset, cfg: TrainConfig, collate, start: int, seed: int,
            accelerator: Accelerator, pool: list[int] | None = None) -> Iterator[dict[str, Any]]:
    sampler = _BatchSampler(len(dataset), cfg.batch_size, seed, start, accelerator.process_index,
                            accelerator.num_processes, pool)
    return iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                            num_workers=cfg.data.num_workers))


def _action_spec(dataset: Dataset) -> ActionSpec:
    names = dataset.features.get('action', {}).get('names')
    names = tuple(names) if isinstance(names, (list, tuple)) and names else ActionSpec().names
    gripper = next((i for i, n in enumerate(names) if 'gripper' in str(n)), None)
    return ActionSpec(names=names, kind=action_kind_from_names(names, gripper), gripper_index=gripper,
                      control_hz=float(dataset.fps))


def build_policy(source: ModelSourceConfig, dataset: Dataset, seed: int) -> VLAPolicy:
    """The policy to fine-tune: a checkpoint, or a preset adapted to the dataset's cameras, actions and state,
    with normalization statistics taken from the dataset (a checkpoint keeps its own with `norm_stats='checkpoint'`)."""
    spec = _action_spec(dataset)
    cameras = dataset_cameras(dataset)
    state_dim = int(dataset.features['observation.state']['shape'][0]) if 'observation.state' in dataset.features else 0
    if source.checkpoint:
        policy = VLAPolicy.from_pretrained(source.checkpoint)
        cfg = policy.config
        if tuple(cfg.cameras) != cameras or cfg.action_dim != spec.dim:
            raise ValueError(f'Checkpoint {source.checkpoint!r} expects cameras {cfg.cameras} and {cfg.action_dim}-D '
                             f'actions; the dataset has cameras {cameras} and {spec.dim}-D actions')
        if source.expert_attention:
            policy = _with_expert_attention(policy, source.expert_attention, source.checkpoint)
        if source.norm_stats == 'dataset':
            stats = norm_stats_from_dataset(dataset, gripper_index=spec.gripper_index, use_state=bool(cfg.proprio_dim))
            policy.processor = VLAProcessor(policy.config, policy.tokenizer, stats)
        policy.train()
        return policy
    cfg = make_policy_config(source.preset)
    vision = dataclasses.replace(cfg.vision, dual_encoder=source.dual_encoder,
                                 image_size=source.image_size or cfg.vision.image_size)
    head = dataclasses.replace(cfg.head, type=source.head) if source.head else cfg.head
    cfg = dataclasses.replace(cfg, vision=vision, head=head, cameras=cameras, action_dim=spec.dim,
                              proprio_dim=state_dim if cfg.proprio_dim and source.use_state else 0)
    stats = norm_stats_from_dataset(dataset, gripper_index=spec.gripper_index, use_state=bool(cfg.proprio_dim))
    torch.manual_seed(seed)
    return make_policy(cfg, norm_stats=stats, action_spec=spec)


def _with_expert_attention(policy: VLAPolicy, mode: str, origin: str) -> VLAPolicy:
    """`policy` rebuilt with its action expert's attention `mode` and the same tensors (the mode has no weights)."""
    head = policy.config.head
    if head.type != 'action_expert':
        raise ValueError(f'ModelSourceConfig.expert_attention needs an action_expert head; the checkpoint {origin!r} '
                         f'has {head.type!r}')
    if head.expert_attention == mode:
        return policy
    config = policy.config.replace(head=dataclasses.replace(head, expert_attention=mode))
    rebuilt = make_policy(config, tokenizer=policy.tokenizer, norm_stats=policy.processor.norm_stats,
                          action_spec=policy.action_spec)
    rebuilt.load_state_dict(policy.state_dict())
    return rebuilt


def _lr_lambda(cfg: TrainConfig):
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        if cfg.lr_schedule == 'cosine':
            return warm * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
        if cfg.lr_schedule == 'step':
            return warm * (0.1 if step >= cfg.lr_decay_step else 1.0)
        return warm
    return factor


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) one fine-tuning run; see the module docstring.

    Raises:
        FileNotFoundError / ValueError: a missing or unusable dataset or checkpoint (named in the message).
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = make_accelerator(cfg)
    set_seed(cfg.seed)
    if not cfg.data.root:
        raise ValueError('TrainConfig.data.root is empty: give a dataset folder (maps-vla collect writes one)')
    dataset = Dataset(cfg.data.root)
    policy = build_policy(cfg.model, dataset, cfg.seed)
    # record the frame size; the augmentation's random crop replaces the processor's centred one until export
    set_config(policy, training_config(policy.config, robot_augment(cfg.data), capture_side(dataset)))
    model = prepare_model(cfg.method, policy)
    # The model is prepared before the optimizer is built, so SPD anchors are copies of the parameters that
    # will actually be stepped (DDP keeps the same tensors; FSDP2 hands back DTensor shards).
    sharded = accelerator.is_fsdp2
    if sharded:
        model = shard_model(accelerator, model, cfg.fsdp)
        optimizer, regularizer = make_optimizer(cfg.method, model)
        model, optimizer = prepare_sharded(accelerator, model, optimizer)
    else:
        model = accelerator.prepare_model(model)
        optimizer, regularizer = make_optimizer(cfg.method, accelerator.unwrap_model(model))
        optimizer = accelerator.prepare_optimizer(optimizer)
    # θ₀ for the drift scalars, this process's shards under FSDP2 (the weights are still the initial ones)
    reference = {}
    if cfg.drift_every and not cfg.method.lora:
        reference = {n: local_tensor(p).detach().to('cpu', torch.bfloat16, copy=True)
                     for n, p in policy.named_parameters() if p.requires_grad}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer.optimizer, _lr_lambda(cfg))
    counters = _Counters(cfg.seed)
    accelerator.register_for_checkpointing(scheduler, counters)
    if regularizer is not None:
        accelerator.register_for_checkpointing(regularizer)

    resumed_from = 0
    latest = latest_checkpoint(out) if cfg.resume else None
    if latest is not None:
        if sharded:
            init_optimizer_state(optimizer.optimizer)
        accelerator.load_state(str(latest[1] / 'state'))
        resumed_from = counters.step
        logger.info('resumed from %s at step %d', latest[1], resumed_from)
    elif accelerator.is_main_process:
        save_config(cfg, out / 'train_config.yaml')

    chunk = policy.config.chunk_size
    robot_steps_done = sum(not is_cotrain_step(s, cfg.data.cotrain_ratio) for s in range(counters.step))
    pool = frame_pool(dataset, chunk, cfg.data.early_frames, cfg.data.early_frames_repeat,
                      cfg.data.ambiguous_frames_repeat)
    robot = _loader(TorchDataset(dataset, chunk), cfg, collate_robot, robot_steps_done * cfg.grad_accum, cfg.seed,
                    accelerator, pool)
    vl = None
    if cfg.data.cotrain_ratio > 0:
        vl_done = counters.step - robot_steps_done
        vl = _loader(VLDataset(cfg.data.cotrain_root), cfg, collate_vl, vl_done * cfg.grad_accum, cfg.seed + 7,
                     accelerator)
    cameras = dataset_cameras(dataset)
    writer = SummaryWriter(str(out / 'tensorboard')) if accelerator.is_main_process else None
    bar = tqdm(total=cfg.steps, initial=counters.step, desc='train', unit='step',
               disable=not (cfg.progress and accelerator.is_local_main_process))
    losses: list[float] = []
    # mean robot / VL loss since the last log: with co-training, logging only the current step's loss would show a
    # single kind whenever log_every is a multiple of the co-training period (every logged step a VL step)
    pending: dict[str, list[float]] = {'train/loss': [], 'train/vl_loss': []}
    in_optimizer_step = False
    probe: ComputeDtypeProbe | None = ComputeDtypeProbe()  # checks the first forward's precision, then retires
    if cfg.health_every and sharded:
        logger.debug('health check skipped under FSDP2: the sharded forward needs every process')
    health = HealthMonitor(policy, cfg.health_every, writer, enabled=accelerator.is_main_process and not sharded)
    compute_dtype = None
    try:
        while counters.step < cfg.steps:
            started = time.perf_counter()
            cotrain = vl is not None and is_cotrain_step(counters.step, cfg.data.cotrain_ratio)
            step_loss, grad_norm = 0.0, None
            for _ in range(cfg.grad_accum):
                with accelerator.accumulate(model):
                    if cotrain:
                        batch = next(vl)
                    else:
                        batch = robot_batch(next(robot), policy.processor, cameras, cfg.data.augment,
                                            counters.augment_rng)
                        health.observe(batch)
                    # prepare_model already runs forward under autocast; the penalty stays in fp32.
                    with probe.watch(model) if probe else contextlib.nullcontext():
                        loss = model(_to_device(batch, accelerator.device))['loss']
                    if probe:
                        compute_dtype = probe.check(cfg.mixed_precision, f'{accelerator.distributed_type.value} '
                                                    f'on {accelerator.device}, accelerate {accelerate.__version__}')
                        probe = None
                    if regularizer is not None:
                        loss = loss + regularizer.penalty()
                    accelerator.backward(loss)
                    step_loss += loss.detach().float().item() / cfg.grad_accum
                    if accelerator.sync_gradients:
                        grad_norm = (accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                                     if cfg.grad_clip else None)
                        if isinstance(grad_norm, DTensor):  # every process joins the reduction, not only the logger
                            grad_norm = grad_norm.full_tensor()
                        in_optimizer_step = True
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        in_optimizer_step = False
            counters.step += 1
            losses.append(step_loss)
            bar.update(1)
            bar.set_postfix(loss=f'{step_loss:.4f}', vl=cotrain)
            pending['train/vl_loss' if cotrain else 'train/loss'].append(step_loss)
            if writer is not None and counters.step % cfg.log_every == 0:
                for tag, values in pending.items():
                    if values:
                        writer.add_scalar(tag, sum(values) / len(values), counters.step)
                        values.clear()
                writer.add_scalar('train/lr', scheduler.get_last_lr()[0], counters.step)
                writer.add_scalar('train/step_seconds', time.perf_counter() - started, counters.step)
                if grad_norm is not None:
                    writer.add_scalar('train/grad_norm', float(grad_norm), counters.step)
            if reference and counters.step % cfg.drift_every == 0:
                rows = drift_rows(policy, reference, accelerator)
                for row in rows if writer is not None else ():
                    writer.add_scalar(f'drift_rel/{row.name}', row.relative, counters.step)
            health.after_step(counters.step)
            if counters.step % cfg.save_every == 0 or counters.step == cfg.steps:
                _save(accelerator, policy, model, out, counters.step, cfg)
        health_report = health.finish(counters.step)
    except KeyboardInterrupt:
        if not in_optimizer_step:  # parameters are consistent between steps: keep the progress
            logger.warning('interrupted: saving a checkpoint at step %d before exiting', counters.step)
            _save(accelerator, policy, model, out, counters.step, cfg)
        raise
    finally:
        bar.close()
        if writer is not None:
            writer.close()

    final = out / 'policy'
    with deployed(policy, robot_augment(cfg.data)):
        export_policy(accelerator, policy, model, final, cfg.method)
    accelerator.wait_for_everyone()
    return TrainResult(policy_dir=final, steps=counters.step, losses=losses, resumed_from=resumed_from,
                       compute_dtype=compute_dtype, health=health_report)


def _save(accelerator: Accelerator, policy: VLAPolicy, model: torch.nn.Module, out: Path, step: int,
          cfg: TrainConfig) -> None:
    final = checkpoint_dir(out, step)
    staging = final.with_name(final.name + '.tmp')
    accelerator.save_state(str(staging / 'state'))
    with deployed(policy, robot_augment(cfg.data)):
        export_policy(accelerator, policy, model, staging / 'policy', cfg.method)
    accelerator.wait_for_everyone()  # every process's files (its RNG state at least) are in before the rename
    if accelerator.is_main_process:
        commit_checkpoint(staging, final)
        prune_checkpoints(out, cfg.keep_checkpoints)
    accelerator.wait_for_everyone()
