"""`GrinningFaceConfig`: every size, budget and method of the GrinningFace experiment (defaults = the CI setting).

The dataclass defaults are the smallest setting, which runs on a CPU in a few minutes and only proves that the
chain works; `config/experiment/grinningface_cpu.yaml` and `grinningface_gpu.yaml` are the measured settings.
"""

from __future__ import annotations

import dataclasses

from maps_vla.control.smoothing import check_smoothing
from maps_vla.maps.factory import FinetuneMethodConfig
from maps_vla.train.configuration_train import NORM_STATS_SOURCES, ModelSourceConfig
from maps_vla.sim.config_env import CameraView, EnvConfig

__all__ = ['ModelSizeConfig', 'MethodRun', 'GrinningFaceConfig', 'DEFAULT_METHODS']


@dataclasses.dataclass
class ModelSizeConfig:
    """The VLM: the tiny preset's layout (DINOv2-reg + SigLIP ViTs, projector, Qwen2), at these sizes."""

    image_size: int = 28  # policy view side in px (a multiple of the 14 px patch)
    vit_width: int = 32  # both ViTs' width
    vit_layers: int = 3  # both ViTs' depth
    vit_heads: int = 2  # both ViTs' attention heads
    llm_width: int = 64  # Qwen2 width
    llm_layers: int = 2  # Qwen2 depth
    llm_heads: int = 4  # Qwen2 query heads
    llm_kv_heads: int = 2  # Qwen2 key/value heads
    cameras: tuple[str, ...] = ('third_person',)  # views the VLA sees (VL pre-training uses the first)
    # 'word': a word tokenizer over the experiment's texts (an emoji name is a few tokens, as with a subword
    # tokenizer); 'char': the built-in character tokenizer (one token per character, far harder for a tiny LLM)
    tokenizer: str = 'word'
    # short prompts: fewer tokens per sample
    prompt_template: str = 'task: {instruction}\naction:'  # robot prompt
    vl_prompt_template: str = 'q: {question}\na:'  # vision-language prompt

    def __post_init__(self) -> None:
        if self.image_size < 14 or self.image_size % 14:
            raise ValueError(f'ModelSizeConfig.image_size must be a multiple of 14, got {self.image_size}')
        for name in ('vit_width', 'vit_layers', 'vit_heads', 'llm_width', 'llm_layers', 'llm_heads',
                     'llm_kv_heads'):
            if getattr(self, name) < 1:
                raise ValueError(f'ModelSizeConfig.{name} must be >= 1, got {getattr(self, name)}')
        if self.vit_layers < 2:
            raise ValueError(f'ModelSizeConfig.vit_layers must be >= 2, got {self.vit_layers}')
        if self.tokenizer not in ('word', 'char'):
            raise ValueError(f"ModelSizeConfig.tokenizer must be 'word' or 'char', got {self.tokenizer!r}")
        if not self.cameras or self.cameras[0] != 'third_person':
            raise ValueError(f"ModelSizeConfig.cameras must start with 'third_person' (the view the VL data and "
                             f'the probes use), got {self.cameras!r}')


@dataclasses.dataclass
class MethodRun:
    """One fine-tuning method of the comparison (see `maps_vla.maps.factory` for the methods)."""

    method: str = 'maps'  # 'maps' | 'spd' | 'fft' | 'freeze:<presets>' | 'l2sp'
    lambda_max: float = 1.5  # maps / spd: λ_max (uniform λ for spd)
    schedule: str = 'linear'  # maps: 'linear' | 'linear-code' | 'cosine'
    lora: bool = False  # train LoRA factors (rank: GrinningFaceConfig.lora_rank) instead of the full weights
    # mix the experiment's VL data into fine-tuning (GrinningFaceConfig.cotrain_ratio of each batch): the
    # GrinningFace paper's way of keeping the VLM's knowledge
    cotrain: bool = False

    def __post_init__(self) -> None:
        FinetuneMethodConfig(method=self.method, lambda_max=self.lambda_max, schedule=self.schedule,
                             lora=self.lora)  # validates

    @property
    def uses_lambda(self) -> bool:
        return self.method in ('maps', 'spd')

    @property
    def key(self) -> str:
        """Folder-safe unique name, e.g. 'maps-linear-1.5', 'spd-2', 'fft', 'freeze-vision', 'fft-lora',
        'maps-linear-1.5-cotrain'."""
        if self.method == 'maps':
            key = f'maps-{self.schedule}-{self.lambda_max:g}'
        elif self.method == 'spd':
            key = f'spd-{self.lambda_max:g}'
        else:
            key = self.method.replace(':', '-').replace(',', '+')
        return key + '-lora' * self.lora + '-cotrain' * self.cotrain

    @property
    def label(self) -> str:
        """Table label, e.g. 'MAPS linear λ=1.5', 'uniform SPD λ=2', 'FFT (AdamW)', 'freeze vision', 'LoRA (AdamW)',
        'MAPS linear λ=1.5 + co-train'."""
        if self.method == 'maps':
            label = f'MAPS {self.schedule} λ={self.lambda_max:g}'
        elif self.method == 'spd':
            label = f'uniform SPD λ={self.lambda_max:g}'
        elif self.method == 'fft':
            label = 'LoRA (AdamW)' if self.lora else 'FFT (AdamW)'
        else:
            label = self.method.replace(':', ' ').replace(',', '+')
        if self.lora and self.method != 'fft':
            label += ' + LoRA'
        return label + ' + co-train' * self.cotrain


DEFAULT_METHODS = (MethodRun('fft'), MethodRun('freeze:vision'), MethodRun('freeze:vlm'), MethodRun('spd', 0.5),
                   MethodRun('spd', 2.0), MethodRun('maps', 1.5), MethodRun('maps', 3.2),
                   MethodRun('maps', 1.5, 'cosine'))


@dataclasses.dataclass
class GrinningFaceConfig:
    """The whole experiment: data, VLM pre-training, the fine-tuning comparison and its evaluation."""

    out: str = 'outputs/grinningface'  # results folder; a rerun resumes every stage that is not finished
    # the model every method fine-tunes: 'pretrain' builds a VLM at `model`'s sizes and pre-trains it on the VL data
    # alone (stage 3); 'shipped' is the package's prior (pick_place demos + VL about all 24 emojis, issue 13); or a
    # policy folder. With a given prior `model` must name its image size and cameras, `render_size` its capture size.
    prior: str = 'pretrain'
    model: ModelSizeConfig = dataclasses.field(default_factory=ModelSizeConfig)  # the VLM's sizes
    render_size: int = 64  # sim camera side in px (views are resized to model.image_size)
    num_cards: int = 4  # cards per scene (2..4); chance of the grounding metric is 1/num_cards
    # where cube and cards lie (EnvConfig.emoji_layout): 'row', or 'compact' (two cards where the shipped prior's
    # pick_place plate stands, the cube in its object square; num_cards 2, with the prior's camera `CameraView()`)
    emoji_layout: str = 'row'
    camera: CameraView = dataclasses.field(default_factory=CameraView)  # the third-person view of every stage
    # stage 1: vision-language pre-training data covering all 24 emojis (16 train + 8 held out)
    vl_scenes: int = 24  # scenes per emoji split (train set, held-out set)
    pretrain_steps: int = 40  # VLM pre-training steps (all VL, cotrain_ratio 1)
    # AdamW learning rate of the pre-training (gradients clipped at norm 1); at 1e-3 a from-scratch VLM of the
    # CPU setting's size collapsed its image tokens to one constant and answered from the text alone
    pretrain_lr: float = 3e-4
    pretrain_batch_size: int = 16  # samples per pre-training step
    # stage 2: scripted-expert robot demos with the 16 train emojis only
    demos: int = 4  # episodes
    # record each demo scene once per card, the same picture with each emoji named (`demos` counts every episode):
    # one instruction per scene lets a policy fit the demos by remembering scenes (docs/results/grinningface.md)
    demo_all_targets: bool = False
    demo_max_steps: int = 200  # frames per demo at most
    # share of demos whose first grasp misses on purpose and is recovered (collect_episodes' regrasp_fraction): a
    # fine-tuned policy that closed beside the cube stayed closed to the timeout (docs/results/grinningface.md)
    demo_regrasp_fraction: float = 0.0
    # stage 3: the comparison
    methods: tuple[MethodRun, ...] = (MethodRun('fft'), MethodRun('maps', 1.5))  # methods compared
    seeds: tuple[int, ...] = (0,)  # fine-tuning seeds (data order, augmentation, new-module init)
    finetune_steps: int = 10  # optimizer steps per run
    finetune_lr: float = 3e-4  # learning rate of every method
    finetune_batch_size: int = 16  # samples per step
    # the rest of the fine-tuning recipe, the same for every method (TrainConfig's defaults: the MAPS scripts')
    finetune_lr_schedule: str = 'constant'  # 'constant' | 'cosine' (TrainConfig.lr_schedule)
    finetune_warmup_steps: int = 0  # linear LR warm-up steps
    finetune_grad_clip: float | None = None  # max global grad norm (None: off)
    # random-crop area of the fine-tuning images (AugmentConfig.crop_area; 1.0: none). The shipped prior was trained
    # without crops, yet fine-tuned with 0.9 (at 1e-4) it placed the most cubes (docs/results/grinningface.md)
    finetune_crop_area: float = 0.9
    # the prior's action-expert attention while fine-tuning (ModelSourceConfig.expert_attention; None: the prior's
    # own). 'bidirectional' lets the patch states depend on the words: the choice recipe's (grinningface.md)
    finetune_expert_attention: str | None = None
    # the action q01/q99 fine-tuning normalizes with: 'dataset' (the demos') or 'checkpoint' (the prior's, so a
    # prior that already acts keeps its outputs' meaning; see ModelSourceConfig.norm_stats)
    norm_stats: str = 'dataset'
    cotrain_ratio: float = 0.2  # VL share of each fine-tuning batch for methods with cotrain
    # draw each demo's first N frames R times per epoch (DataConfig.early_frames / early_frames_repeat): with paired
    # demos only the first frames need the emoji's name, later ones show the chosen card in the arm's path
    finetune_early_frames: int = 0
    finetune_early_frames_repeat: int = 1
    # draw the frames only the emoji's name tells apart R times per epoch (DataConfig.ambiguous_frames_repeat; needs
    # demo_all_targets): in the compact layout the ~9 frames per demo where the carry passes the nearer card
    finetune_ambiguous_frames_repeat: int = 1
    lora_rank: int = 32  # LoRA rank of methods with lora
    # stage 4: evaluation
    probe_scenes: int = 8  # unseen scenes per emoji split for the VL probes
    grounding_episodes: int = 4  # expert episodes per split whose carry frames test the target choice
    grounding_frames: int = 3  # carry frames kept per episode
    # unseen scenes per split recorded once per card, whose ambiguous frames measure how the emoji's name moves the
    # actions (the 'alignment' metric, maps_vla.eval.counterfactual; 0: skip)
    alignment_pairs: int = 4
    rollout_episodes: int = 0  # closed-loop sim episodes per split (0: skip; they need a policy that can grasp)
    rollout_max_steps: int = 150  # env steps per closed-loop episode
    # None: each chunk runs open-loop; 'temporal_ensemble': asked every step, covering chunks averaged (ACT)
    rollout_smoothing: str | None = None
    mixed_precision: str = 'no'  # 'no' | 'bf16' (GPU)
    device: str = 'cpu'  # 'cpu' or 'cuda'
    threads: int | None = 2  # torch CPU threads (None: torch's default)
    progress: bool = True  # tqdm bars

    def __post_init__(self) -> None:
        if not 2 <= self.num_cards <= 4:
            raise ValueError(f'GrinningFaceConfig.num_cards must be in 2..4, got {self.num_cards}')
        for name in ('render_size', 'vl_scenes', 'pretrain_steps', 'pretrain_batch_size', 'demos', 'demo_max_steps',
                     'finetune_steps', 'finetune_batch_size', 'probe_scenes', 'grounding_episodes',
                     'grounding_frames', 'rollout_max_steps', 'finetune_early_frames_repeat',
                     'finetune_ambiguous_frames_repeat'):
            if getattr(self, name) < 1:
                raise ValueError(f'GrinningFaceConfig.{name} must be >= 1, got {getattr(self, name)!r}')
        if self.finetune_ambiguous_frames_repeat > 1 and not self.demo_all_targets:
            raise ValueError('GrinningFaceConfig.finetune_ambiguous_frames_repeat > 1 needs demo_all_targets: true '
                             '(ambiguous frames are found between the demos of one scene with different cards)')
        self.env_config('train')  # EnvConfig's own checks (emoji_layout, and num_cards 2 with 'compact')
        if self.alignment_pairs < 0:
            raise ValueError(f'GrinningFaceConfig.alignment_pairs must be >= 0, got {self.alignment_pairs}')
        if not 0.0 <= self.demo_regrasp_fraction <= 1.0:
            raise ValueError(f'GrinningFaceConfig.demo_regrasp_fraction must be in [0, 1], got '
                             f'{self.demo_regrasp_fraction}')
        if self.rollout_episodes < 0:
            raise ValueError(f'GrinningFaceConfig.rollout_episodes must be >= 0, got {self.rollout_episodes}')
        if not self.methods or not self.seeds:
            raise ValueError('GrinningFaceConfig.methods and seeds must not be empty')
        keys = [m.key for m in self.methods]
        if len(set(keys)) != len(keys):
            raise ValueError(f'GrinningFaceConfig.methods has duplicates: {keys}')
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f'GrinningFaceConfig.seeds has duplicates: {self.seeds}')
        if not (self.pretrain_lr > 0 and self.finetune_lr > 0):
            raise ValueError('GrinningFaceConfig.pretrain_lr and finetune_lr must be > 0')
        if self.finetune_lr_schedule not in ('constant', 'cosine'):  # 'step' needs a decay step
            raise ValueError(f'GrinningFaceConfig.finetune_lr_schedule must be one of constant, cosine, got '
                             f'{self.finetune_lr_schedule!r}')
        if not 0 <= self.finetune_warmup_steps < self.finetune_steps:
            raise ValueError(f'GrinningFaceConfig.finetune_warmup_steps must be in [0, finetune_steps), got '
                             f'{self.finetune_warmup_steps}')
        if self.finetune_grad_clip is not None and self.finetune_grad_clip <= 0:
            raise ValueError(f'GrinningFaceConfig.finetune_grad_clip must be > 0 or None, got {self.finetune_grad_clip}')
        ModelSourceConfig(expert_attention=self.finetune_expert_attention)  # its check, its message
        if not 0.0 < self.finetune_crop_area <= 1.0:
            raise ValueError(f'GrinningFaceConfig.finetune_crop_area must be in (0, 1], got {self.finetune_crop_area}')
        if not self.prior:
            raise ValueError("GrinningFaceConfig.prior must be 'pretrain', 'shipped' or a policy folder, got ''")
        if self.norm_stats not in NORM_STATS_SOURCES:
            raise ValueError(f'GrinningFaceConfig.norm_stats must be one of {NORM_STATS_SOURCES}, got '
                             f'{self.norm_stats!r}')
        if not 0.0 < self.cotrain_ratio < 1.0:
            raise ValueError(f'GrinningFaceConfig.cotrain_ratio must be in (0, 1), got {self.cotrain_ratio}')
        if self.lora_rank < 1:
            raise ValueError(f'GrinningFaceConfig.lora_rank must be >= 1, got {self.lora_rank}')
        check_smoothing(self.rollout_smoothing, 'GrinningFaceConfig.rollout_smoothing')
        if self.mixed_precision not in ('no', 'bf16'):
            raise ValueError(f"GrinningFaceConfig.mixed_precision must be 'no' or 'bf16', got {self.mixed_precision!r}")
        if self.device not in ('cpu', 'cuda') and not self.device.startswith('cuda:'):
            raise ValueError(f"GrinningFaceConfig.device must be 'cpu' or 'cuda[:N]', got {self.device!r}")

    @property
    def pretrains(self) -> bool:
        """Whether the experiment builds its own VLM (stage 3) instead of fine-tuning a given prior."""
        return self.prior == 'pretrain'

    def env_config(self, split: str) -> EnvConfig:
        """The emoji task of one split ('train' or 'ood_emoji') as every stage renders it."""
        return EnvConfig(task='emoji', variant=split, image_size=(self.render_size, self.render_size),
                         num_cards=self.num_cards, emoji_layout=self.emoji_layout, third_person=self.camera)
