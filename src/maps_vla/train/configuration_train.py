"""`TrainConfig`: everything `maps-vla train` needs, as one dataclass tree read from YAML plus overrides."""

from __future__ import annotations

import dataclasses

from maps_vla.maps.factory import FinetuneMethodConfig
from maps_vla.model.vla.configuration_vla import ATTENTION_MODES
from maps_vla.train.augment import AugmentConfig

__all__ = ['ModelSourceConfig', 'DataConfig', 'FSDPConfig', 'TrainConfig', 'MIXED_PRECISION', 'LR_SCHEDULES',
           'FSDP_WRAP_POLICIES', 'NORM_STATS_SOURCES']

MIXED_PRECISION = ('no', 'bf16', 'fp16')
NORM_STATS_SOURCES = ('dataset', 'checkpoint')
LR_SCHEDULES = ('constant', 'cosine', 'step')
# accelerate's auto_wrap_policy names. Its 'size_based_wrap' is left out: it also picks the ModuleList of the
# layers (the biggest child of any transformer), which torch's fully_shard refuses (a container without forward).
FSDP_WRAP_POLICIES = ('transformer_based_wrap', 'no_wrap')


@dataclasses.dataclass
class ModelSourceConfig:
    """Where the policy to fine-tune comes from (exactly one of checkpoint / preset is used)."""

    checkpoint: str | None = None  # a maps_vla checkpoint folder (save_pretrained / `maps-vla import` output)
    preset: str = 'tiny'  # else a random-init preset ('tiny', 'minivla', 'openvla'), adapted to the dataset
    dual_encoder: bool = False  # add a frozen copy of the vision encoder (arXiv 2509.11417); presets only
    head: str | None = None  # action head for presets: 'l1_regression' | 'discrete_bins' | 'string' (None: preset's)
    image_size: int | None = None  # override the preset's image side (None: preset's)
    # presets only: feed the dataset's observation.state as a proprio token. False trains from the images alone,
    # which keeps a small model from ignoring them (the state is the easier signal early on: issue 13)
    use_state: bool = True
    # checkpoints only: the action/state q01/q99 the policy normalizes with. 'dataset': recomputed from the training
    # data (another robot or action range); 'checkpoint': kept, so the pretrained head's outputs keep their meaning
    # (the same robot and action space, e.g. the shipped prior on a new sim variant: docs/results/prior.md)
    norm_stats: str = 'dataset'
    # checkpoints with an action expert only: fine-tune with this attention over [patches, instruction] ('causal' |
    # 'bidirectional'; None keeps the checkpoint's). It is a mask, not a weight, so every tensor carries over; a
    # causal prior fine-tuned bidirectionally learns to read its instruction (docs/results/grinningface.md)
    expert_attention: str | None = None

    def __post_init__(self) -> None:
        if self.norm_stats not in NORM_STATS_SOURCES:
            raise ValueError(f'ModelSourceConfig.norm_stats must be one of {NORM_STATS_SOURCES}, got '
                             f'{self.norm_stats!r}')
        if self.expert_attention is not None and self.expert_attention not in ATTENTION_MODES:
            raise ValueError(f"ModelSourceConfig.expert_attention must be None, 'causal' or 'bidirectional', got "
                             f'{self.expert_attention!r}')


@dataclasses.dataclass
class DataConfig:
    """The robot episodes and the optional vision-language co-training data."""

    root: str = ''  # LeRobot v2.1 dataset folder (maps-vla collect / bag2episodes output)
    num_workers: int = 0  # DataLoader worker processes
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)  # image augmentation
    cotrain_root: str | None = None  # vision-language data folder with vl.jsonl (arXiv 2509.11417 co-training)
    cotrain_ratio: float = 0.0  # fraction of steps taking a VL batch instead of a robot one (1.0: VL only, VLM pre-training)
    # Draw the first `early_frames` frames of every episode `early_frames_repeat` times per epoch. Where the target
    # is chosen (which of two cubes) only the first frames need the instruction; later ones show it in the arm's
    # path, so without this the words get the gradient of a small share of frames (docs/results/grinningface.md).
    early_frames: int = 0
    early_frames_repeat: int = 1
    # Draw the frames only the instruction tells apart (same observation as a twin episode of the same scene with
    # another instruction, a different action chunk: `collect --all-targets` demos; train/frame_pool.py) this many
    # times per epoch. Where the choice falls mid-episode (which of two cards, passing the nearer one) early_frames
    # cannot reach them. 1: off.
    ambiguous_frames_repeat: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.cotrain_ratio <= 1.0:
            raise ValueError(f'DataConfig.cotrain_ratio must be in [0, 1], got {self.cotrain_ratio}')
        if self.cotrain_ratio > 0 and not self.cotrain_root:
            raise ValueError('DataConfig.cotrain_ratio > 0 needs DataConfig.cotrain_root (a folder with vl.jsonl)')
        if self.num_workers < 0:
            raise ValueError(f'DataConfig.num_workers must be >= 0, got {self.num_workers}')
        if self.early_frames < 0 or self.early_frames_repeat < 1:
            raise ValueError(f'DataConfig.early_frames must be >= 0 and early_frames_repeat >= 1, got '
                             f'{self.early_frames} and {self.early_frames_repeat}')
        if self.ambiguous_frames_repeat < 1:
            raise ValueError(f'DataConfig.ambiguous_frames_repeat must be >= 1, got {self.ambiguous_frames_repeat}')


@dataclasses.dataclass
class FSDPConfig:
    """FSDP2 through accelerate: parameters, gradients and optimizer state (SPD anchors too) sharded on dim 0.

    Off, a multi-process launch trains with DDP. accelerate 1.15 only shards on accelerator devices (GPU, XPU, ...);
    on CPU processes `train` raises instead of silently falling back to DDP.
    """

    enabled: bool = False  # shard with FSDP2 (launch several processes: `accelerate launch` / torchrun)
    auto_wrap_policy: str = 'transformer_based_wrap'  # 'transformer_based_wrap': a unit per layer | 'no_wrap': one
    transformer_cls_names_to_wrap: tuple[str, ...] = ()  # unit classes (empty: the submodels' `_no_split_modules`)
    reshard_after_forward: bool = True  # free gathered parameters after each unit's forward (False: keep them)

    def __post_init__(self) -> None:
        if self.auto_wrap_policy not in FSDP_WRAP_POLICIES:
            raise ValueError(f'FSDPConfig.auto_wrap_policy must be one of {FSDP_WRAP_POLICIES}, got '
                             f'{self.auto_wrap_policy!r}')
        self.transformer_cls_names_to_wrap = tuple(self.transformer_cls_names_to_wrap)
        bad = [n for n in self.transformer_cls_names_to_wrap if not isinstance(n, str) or not n]
        if bad:
            raise ValueError(f'FSDPConfig.transformer_cls_names_to_wrap must hold class names, got {bad!r}')


@dataclasses.dataclass
class TrainConfig:
    """One fine-tuning run."""

    model: ModelSourceConfig = dataclasses.field(default_factory=ModelSourceConfig)  # the starting policy
    data: DataConfig = dataclasses.field(default_factory=DataConfig)  # what to train on
    method: FinetuneMethodConfig = dataclasses.field(default_factory=FinetuneMethodConfig)  # MAPS / baselines
    out_dir: str = 'outputs/train'  # checkpoints, TensorBoard logs and the final policy go here
    steps: int = 1000  # optimizer steps
    batch_size: int = 8  # samples per micro-batch per process
    grad_accum: int = 1  # micro-batches per optimizer step
    grad_clip: float | None = None  # max global grad norm (None: off, as the official MAPS script)
    mixed_precision: str = 'no'  # 'no' | 'bf16' | 'fp16' (accelerate autocast)
    lr_schedule: str = 'constant'  # 'constant' (MAPS scripts) | 'cosine' | 'step' (x0.1 at lr_decay_step)
    warmup_steps: int = 0  # linear LR warm-up steps
    lr_decay_step: int | None = None  # 'step' schedule: where the LR drops by 10x
    seed: int = 0  # seeds model init, data order and augmentation
    save_every: int = 500  # checkpoint every N optimizer steps (and at the end)
    keep_checkpoints: int = 2  # newest training-state checkpoints kept on disk
    log_every: int = 10  # TensorBoard scalars every N steps
    drift_every: int = 100  # per-module drift scalars every N steps (0: off)
    health_every: int = 200  # image/state-dependence check every N steps and at the end (0: off; train/health.py)
    resume: bool = True  # continue from out_dir's latest checkpoint when there is one
    progress: bool = True  # tqdm progress bar
    fsdp: FSDPConfig = dataclasses.field(default_factory=FSDPConfig)  # FSDP2 sharding (off: DDP or one process)

    def __post_init__(self) -> None:
        for name in ('steps', 'batch_size', 'grad_accum', 'save_every', 'log_every', 'keep_checkpoints'):
            if getattr(self, name) < 1:
                raise ValueError(f'TrainConfig.{name} must be >= 1, got {getattr(self, name)}')
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f'TrainConfig.mixed_precision must be one of {MIXED_PRECISION}, got '
                             f'{self.mixed_precision!r}')
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f'TrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}')
        if self.lr_schedule == 'step' and not self.lr_decay_step:
            raise ValueError("TrainConfig.lr_schedule='step' needs lr_decay_step")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f'TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip}')
        if self.warmup_steps < 0 or self.drift_every < 0 or self.health_every < 0:
            raise ValueError(f'TrainConfig.warmup_steps, drift_every and health_every must be >= 0, got '
                             f'{self.warmup_steps}, {self.drift_every}, {self.health_every}')
        if self.fsdp.enabled and self.method.method == 'l2sp':
            raise ValueError("TrainConfig.fsdp.enabled does not support method 'l2sp': its regularizer keeps "
                             'unsharded per-process anchors; use maps, spd, fft or freeze:* under FSDP2')
