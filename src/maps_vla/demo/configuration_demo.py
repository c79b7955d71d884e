"""`DemoConfig` and the three sizes of `maps-vla demo`: smallest (CI, CPU), small (CPU, longer), gpu."""

from __future__ import annotations

import dataclasses
from typing import Any

from maps_vla.control.smoothing import check_smoothing
from maps_vla.registry import Registry
from maps_vla.train.configuration_train import NORM_STATS_SOURCES

__all__ = ['DemoConfig', 'DEMO_SIZES', 'MODEL_SIZES', 'demo_config']

MODEL_SIZES = ('tiny', 'small')  # 'tiny' = the tiny preset; 'small' = the same layout, wider and deeper (GPU)


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Everything one run of the sim demo does (see `maps_vla.demo.run_demo`)."""

    size: str = 'smallest'  # name of the preset these values came from (shown in the report)
    out: str = 'outputs/demo'  # report folder; a previous demo's files there are replaced
    # the starting policy: 'prior' (the pretrained prior shipped in the package: maps_vla/assets/prior/MODEL_CARD.md),
    # 'random' (a random-init `model`) or a checkpoint folder (e.g. an imported MiniVLA, or a prior you built)
    start: str = 'prior'
    task: str = 'pick_place'  # sim task
    finetune_variant: str = 'ood_shape'  # the new task variant: demos of it are collected and fine-tuned on (ID)
    retention_variant: str | None = 'train'  # the start policy's own variant, evaluated to show what fine-tuning keeps
    ood_variant: str = 'ood_lighting'  # held out from pre-training and fine-tuning alike
    methods: tuple[str, ...] = ('maps', 'fft')  # fine-tuning methods compared on the same data, steps and seed
    episodes: int = 20  # scripted-expert demonstrations to collect
    image_size: int | None = None  # camera side (px) of demos and eval envs; None: the start policy's training size
    video: bool = False  # store demos as mp4 (True) or PNG (False: 3-4x faster to load per sample, measured)
    collect_max_steps: int = 200  # frames per demo at most
    model: str = 'tiny'  # start='random' only: 'tiny' (the preset, 0.34 M parameters) or 'small' (wider, 11 M)
    policy_image_size: int = 28  # start='random' only: side (px) the policy resizes each view to (multiple of 14)
    steps: int = 300  # fine-tuning steps
    batch_size: int = 8  # samples per step
    # at 3e-4 a 100-step fine-tune already cost the prior its own variant (10/20 -> 0-1/20: docs/results/prior.md)
    lr: float = 3e-5  # learning rate
    # a checkpoint start's action statistics: 'checkpoint' keeps them (the same sim robot: the prior's head keeps its
    # meaning), 'dataset' recomputes them from the new demos (a checkpoint of another robot or action range)
    norm_stats: str = 'checkpoint'
    crop_area: float = 1.0  # random-crop area of the augmentation (1.0: colour jitter only, as the shipped prior)
    lambda_max: float = 1.5  # MAPS λ_max (the paper's Franka setting)
    schedule: str = 'linear'  # MAPS λ schedule
    mixed_precision: str = 'no'  # 'no' | 'bf16' (GPU)
    eval_episodes: int = 10  # evaluation episodes per variant and policy
    eval_max_steps: int = 150  # env steps per evaluation episode at most
    # 'temporal_ensemble': re-infer every step and average the chunks covering it (ACT; the shipped prior's card);
    # None: each chunk runs open-loop
    eval_smoothing: str | None = 'temporal_ensemble'
    device: str = 'cpu'  # 'cpu' or 'cuda' (training and the trained policy's rollouts)
    threads: int | None = 1  # torch CPU threads (1: tiny matmuls gain nothing and a shared box stays fast)
    # processes that fine-tune the methods and evaluate the rows side by side (one per CPU core: each job runs
    # single-threaded); 1 runs every job in this process, one after another
    workers: int = 2
    seed: int = 0  # seeds demos, weights, data order and the random baseline

    def __post_init__(self) -> None:
        for name in ('episodes', 'collect_max_steps', 'steps', 'batch_size', 'eval_episodes', 'eval_max_steps'):
            if getattr(self, name) < 1:
                raise ValueError(f'DemoConfig.{name} must be >= 1, got {getattr(self, name)!r}')
        if self.norm_stats not in NORM_STATS_SOURCES:
            raise ValueError(f'DemoConfig.norm_stats must be one of {NORM_STATS_SOURCES}, got {self.norm_stats!r}')
        check_smoothing(self.eval_smoothing, 'DemoConfig.eval_smoothing')
        if self.image_size is not None and not 16 <= self.image_size <= 512:
            raise ValueError(f'DemoConfig.image_size must be in 16..512, got {self.image_size!r}')
        if self.policy_image_size < 14 or self.policy_image_size % 14:
            raise ValueError(f'DemoConfig.policy_image_size must be a multiple of 14 (the ViT patch), got '
                             f'{self.policy_image_size!r}')
        if self.model not in MODEL_SIZES:
            raise ValueError(f'DemoConfig.model must be one of {MODEL_SIZES}, got {self.model!r}')
        if self.device not in ('cpu', 'cuda') and not self.device.startswith('cuda:'):
            raise ValueError(f"DemoConfig.device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f'DemoConfig.threads must be >= 1 or None, got {self.threads!r}')
        if self.workers < 1:
            raise ValueError(f'DemoConfig.workers must be >= 1, got {self.workers!r}')
        if not 0.0 < self.crop_area <= 1.0:
            raise ValueError(f'DemoConfig.crop_area must be in (0, 1], got {self.crop_area!r}')
        if not self.lr > 0 or self.lambda_max < 0:
            raise ValueError(f'DemoConfig.lr must be > 0 and lambda_max >= 0, got {self.lr!r}, {self.lambda_max!r}')
        variants = [self.finetune_variant, self.retention_variant, self.ood_variant]
        if len({v for v in variants if v}) != len([v for v in variants if v]):
            raise ValueError(f'DemoConfig.finetune_variant, retention_variant and ood_variant must differ, got '
                             f'{variants}')
        if not self.methods or any(m not in ('maps', 'fft', 'spd') for m in self.methods):
            raise ValueError(f"DemoConfig.methods must name some of 'maps', 'fft', 'spd', got {self.methods!r}")


DEMO_SIZES: Registry[dict[str, Any]] = Registry('demo size')
# CI: the shipped prior, 20 demos, 300 steps per method, temporal-ensemble evaluation; 5 min 24 s on 2 CPU cores with
# its 2 workers (8 min 43 s with workers=1; docs/results/prior.md, session 9).
DEMO_SIZES.register('smallest')({})
# A longer CPU run from the prior: more demos and steps, 50 evaluation episodes per variant (tight Wilson intervals).
DEMO_SIZES.register('small')(dict(episodes=50, steps=2000, batch_size=16, eval_episodes=50))
# One GPU: a wider, deeper random-init model on 112 px views, 200 demos, 20k steps in bf16.
DEMO_SIZES.register('gpu')(dict(start='random', episodes=200, image_size=128, model='small', policy_image_size=112,
                                steps=20000, batch_size=32, mixed_precision='bf16', eval_episodes=50, device='cuda',
                                threads=None, workers=1))


def demo_config(size: str = 'smallest', **overrides: Any) -> DemoConfig:
    """The preset `size` ('smallest', 'small', 'gpu') with `overrides` (None values are ignored).

    Raises:
        ValueError: unknown size (with the closest name) or an invalid value.
    """
    values = {**DEMO_SIZES.get(size), **{k: v for k, v in overrides.items() if v is not None}}
    return DemoConfig(size=size, **values)
