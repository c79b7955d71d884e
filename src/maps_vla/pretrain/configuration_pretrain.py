"""`PretrainConfig`: how the shipped prior is built (`maps-vla pretrain --config config/pretrain/<name>.yaml`)."""

from __future__ import annotations

import dataclasses

from maps_vla.control.smoothing import check_smoothing
from maps_vla.model.vla.configuration_vla import ATTENTION_MODES, REGRESSION_LOSSES
from maps_vla.sim.config_env import EMOJI_LAYOUTS, CameraView

__all__ = ['PretrainConfig']

# The GrinningFace CPU framing: cards ~16 px wide at 84 px (~11 px in the default workspace view, too small to learn)
_CARD_CAMERA = CameraView(eye=(0.95, 0.0, 0.6), target=(0.5, 0.0, 0.0), fovy=45.0)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Robot demos across pick_place variants + vision-language co-training on emoji scenes -> a small VLA prior.

    The robot data holds no emoji-task demos (the GrinningFace experiment fine-tunes the prior on those); the VL data
    covers all 24 emojis, so the prior knows them before any robot data shows them.
    """

    out: str = 'outputs/pretrain'  # data, checkpoints, the policy, its evaluation and model card; a rerun resumes
    variants: tuple[str, ...] = ('train', 'ood_color', 'ood_distractors')  # pick_place variants in the robot data
    demos_per_variant: int = 2  # scripted-expert episodes per variant
    # variants (of `variants`) recorded once per target, the same picture with each instruction (`collect
    # --all-targets`; each episode counts towards demos_per_variant): e.g. 'choice', where only the colour word says
    # which cube. With early_frames they make the prior read its instruction (docs/results/grinningface.md)
    paired_variants: tuple[str, ...] = ()
    early_frames: int = 0  # draw each demo's first N frames early_frames_repeat times per epoch (DataConfig)
    early_frames_repeat: int = 1
    image_size: int = 84  # camera side (px) of the demos; the policy's view size unless model_image_size is set
    demo_max_steps: int = 150  # frames per demo at most
    demo_noise: float = 0.0  # m/step std of noise on the demos' executed translation, clean labels kept (DART)
    demo_regrasp_fraction: float = 0.0  # share of demos whose first grasp misses on purpose and is recovered
    vl_scenes: int = 2  # emoji scenes per emoji split for VL co-training (x 4 cards x 2 questions each); 0: none
    vl_camera: CameraView = _CARD_CAMERA  # third-person view of the VL scenes
    # the VL scenes' emoji layout (EnvConfig.emoji_layout): 'row' (four cards) or 'compact' (two cards where the
    # compact pick_place plate stands; pair it with the robot camera, vl_camera: CameraView())
    vl_emoji_layout: str = 'row'
    scene_vl: int = 0  # pick_place scenes per pre-training variant for VL co-training (object positions, colours
    # and shapes: 2 questions per object, maps_vla/pretrain/scene_vl.py); 0: none
    cotrain_ratio: float = 0.2  # fraction of steps on a VL batch
    preset: str = 'prior'  # model preset (VLA_PRESETS), shaped to the data; its tokenizer becomes a word tokenizer
    # a policy folder to continue from instead of the preset's random weights (continued pre-training on a new
    # mixture): its weights, tokenizer and action statistics are kept, so preset, model_image_size, use_state and
    # regression_loss do not apply
    init: str | None = None
    # the action expert's LLM attention over [patches, instruction], for the preset and `init` alike: 'causal' or
    # 'bidirectional' (the patch states see the words; model/heads/action_expert.py)
    expert_attention: str = 'causal'
    model_image_size: int | None = None  # override the preset's view size (None: the preset's)
    use_state: bool = True  # a proprio token from observation.state (False: the images alone)
    regression_loss: str = 'l1'  # the action head's loss: 'l1' (OFT) or 'l2' (see model/heads/base.py)
    steps: int = 4  # optimizer steps
    batch_size: int = 4  # samples per step
    lr: float = 3e-4  # AdamW peak learning rate (cosine schedule, 5 % warm-up); 1e-3 collapsed small VLMs' vision
    grad_clip: float = 1.0  # global gradient-norm clip
    crop_area: float = 0.9  # random-crop area of the augmentation (1.0: no crop); inference takes the centred crop
    state_dropout: float = 0.0  # fraction of samples trained without their state (keeps the images in use)
    save_every: int = 500  # checkpoint every N steps (training resumes from the newest)
    health_every: int = 0  # image/state dependence of the actions every N steps (0: off), see train/health.py
    eval_episodes: int = 2  # closed-loop episodes per pre-training variant (and per held-out variant)
    eval_max_steps: int = 150  # env steps per evaluation episode at most
    # None: each chunk runs open-loop; 'temporal_ensemble': re-infer every step and average the chunks covering it
    eval_smoothing: str | None = None
    probe_scenes: int = 25  # unseen emoji scenes per split for the VL probe of the model card (0: no probe)
    heldout_variants: tuple[str, ...] = ()  # pick_place variants evaluated but never trained on
    seed: int = 0  # seeds demos, initial weights and data order
    threads: int | None = 1  # torch CPU threads (None: torch's default); 1 is fastest for these sizes on 2 cores
    progress: bool = True  # tqdm bars

    def __post_init__(self) -> None:
        from maps_vla.sim.tasks.pick_place import PickPlace
        from maps_vla.train.configuration_train import DataConfig

        if self.vl_emoji_layout not in EMOJI_LAYOUTS:
            raise ValueError(f'PretrainConfig.vl_emoji_layout must be one of {EMOJI_LAYOUTS}, '
                             f'got {self.vl_emoji_layout!r}')
        unknown = [v for v in (*self.variants, *self.heldout_variants) if v not in PickPlace.variants]
        if unknown or not self.variants:
            raise ValueError(f'PretrainConfig.variants / heldout_variants must be pick_place variants '
                             f'{PickPlace.variants}, got {unknown or "none"}')
        if set(self.paired_variants) - set(self.variants):
            raise ValueError(f'PretrainConfig.paired_variants must be among variants {list(self.variants)}, got '
                             f'{sorted(set(self.paired_variants) - set(self.variants))}')
        # DataConfig's own check, here before minutes of data collection
        DataConfig(early_frames=self.early_frames, early_frames_repeat=self.early_frames_repeat)
        if set(self.variants) & set(self.heldout_variants):
            raise ValueError(f'PretrainConfig: a held-out variant is also trained on: '
                             f'{sorted(set(self.variants) & set(self.heldout_variants))}')
        for name in ('demos_per_variant', 'demo_max_steps', 'steps', 'batch_size', 'save_every', 'eval_max_steps'):
            if getattr(self, name) < 1:
                raise ValueError(f'PretrainConfig.{name} must be >= 1, got {getattr(self, name)!r}')
        check_smoothing(self.eval_smoothing, 'PretrainConfig.eval_smoothing')
        if not self.demo_noise >= 0:
            raise ValueError(f'PretrainConfig.demo_noise must be >= 0, got {self.demo_noise}')
        if not 0.0 <= self.demo_regrasp_fraction <= 1.0:
            raise ValueError(f'PretrainConfig.demo_regrasp_fraction must be in [0, 1], got '
                             f'{self.demo_regrasp_fraction}')
        if min(self.vl_scenes, self.scene_vl, self.eval_episodes, self.probe_scenes) < 0:
            raise ValueError('PretrainConfig.vl_scenes, scene_vl, eval_episodes and probe_scenes must be >= 0')
        if not 0 <= self.cotrain_ratio < 1 or (self.cotrain_ratio > 0) != (self.vl_scenes + self.scene_vl > 0):
            raise ValueError(f'PretrainConfig.cotrain_ratio must be in [0, 1), and > 0 exactly when vl_scenes or '
                             f'scene_vl is > 0; got {self.cotrain_ratio} with vl_scenes={self.vl_scenes}, '
                             f'scene_vl={self.scene_vl}')
        if not 16 <= self.image_size <= 512:
            raise ValueError(f'PretrainConfig.image_size must be in 16..512, got {self.image_size}')
        if self.regression_loss not in REGRESSION_LOSSES:  # checked here too: before minutes of data collection
            raise ValueError(f'PretrainConfig.regression_loss must be one of {REGRESSION_LOSSES}, got '
                             f'{self.regression_loss!r}')
        if self.expert_attention not in ATTENTION_MODES:
            raise ValueError(f"PretrainConfig.expert_attention must be 'causal' or 'bidirectional', got "
                             f'{self.expert_attention!r}')
        if self.threads is not None and self.threads < 1:
            raise ValueError(f'PretrainConfig.threads must be >= 1 or None, got {self.threads}')
