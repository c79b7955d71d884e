"""Configuration of the VLA policy: fused DINOv2+SigLIP vision, GELU-MLP projector, Qwen2/Llama LLM, action head.

`VLAConfig` is a frozen dataclass tree that round-trips through `maps_vla.config` (YAML) and `config.json` in
checkpoints. Named presets live in `VLA_PRESETS`: `tiny` (CPU tests), `minivla` (DINOv2 ViT-L/14-reg4 + SigLIP
so400m/14 + Qwen2.5-0.5B) and `openvla` (same vision + Llama-2-7B). Sizes follow docs/reference/vla_arch.md §1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from maps_vla.registry import Registry

__all__ = [
    'ViTConfig',
    'VisionConfig',
    'LLMConfig',
    'ActionHeadConfig',
    'VLAConfig',
    'VLA_PRESETS',
    'resized',
    'REGRESSION_LOSSES',
    'ATTENTION_MODES',
    'IMAGENET_MEAN',
    'IMAGENET_STD',
    'IMAGENET_MEAN_BF16',
    'IMAGENET_STD_BF16',
    'SIGLIP_MEAN',
    'SIGLIP_STD',
]

# Exact timm/ImageNet statistics (native Prismatic training, e.g. MiniVLA).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The same rounded to bf16: what the released HF processor applies (OpenVLA, OFT, MAPS fine-tunes), vla_arch.md §2.
IMAGENET_MEAN_BF16 = (0.484375, 0.455078125, 0.40625)
IMAGENET_STD_BF16 = (0.228515625, 0.2236328125, 0.224609375)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)

_LLM_ARCHS = ('qwen2', 'llama')
ATTENTION_MODES = ('bidirectional', 'causal')  # the LLM's attention over the prefix (l1 head, action expert)
REGRESSION_LOSSES = ('l1', 'l2')  # losses of the regression heads (l1_regression, action_expert)
EXPERT_CONTEXTS = ('llm_and_prefix', 'llm')  # what the action expert attends to


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f'{owner}.{name} must be > 0, got {value!r}')


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """One ViT of the fused vision backbone (built as a transformers model)."""

    hidden_size: int = 1024  # width D of the ViT
    num_layers: int = 24  # transformer blocks; features come from the second-to-last one
    num_heads: int = 16  # attention heads (hidden_size must divide evenly)
    intermediate_size: int = 4096  # MLP width (DINOv2: must be a multiple of hidden_size, it is stored as a ratio)
    num_register_tokens: int = 4  # DINOv2 register tokens (0 for SigLIP); dropped with CLS from the features
    hidden_act: str = 'gelu'  # exact GELU as in the timm checkpoints (not transformers' SigLIP default tanh GELU)
    layer_norm_eps: float = 1e-6  # LayerNorm epsilon of every block
    mean: tuple[float, float, float] = IMAGENET_MEAN_BF16  # per-channel pixel mean for this ViT
    std: tuple[float, float, float] = IMAGENET_STD_BF16  # per-channel pixel std for this ViT

    def __post_init__(self) -> None:
        _positive('ViTConfig', hidden_size=self.hidden_size, num_heads=self.num_heads,
                  intermediate_size=self.intermediate_size, layer_norm_eps=self.layer_norm_eps)
        if self.num_layers < 2:
            raise ValueError(f'ViTConfig.num_layers must be >= 2 (features come from the second-to-last block), '
                             f'got {self.num_layers}')
        if self.hidden_size % self.num_heads:
            raise ValueError(f'ViTConfig.hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}')
        if self.num_register_tokens < 0:
            raise ValueError(f'ViTConfig.num_register_tokens must be >= 0, got {self.num_register_tokens}')
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f'ViTConfig.mean/std must be 3 values (std > 0), got {self.mean!r} / {self.std!r}')


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    """The fused vision backbone: DINOv2-with-registers and SigLIP on the same image, features concatenated."""

    image_size: int = 224  # square input side in pixels, per view
    patch_size: int = 14  # ViT patch side; image_size // patch_size squared patches per view
    dino: ViTConfig = ViTConfig()  # `vision_backbone.featurizer` (Dinov2WithRegistersModel)
    siglip: ViTConfig = ViTConfig(  # `vision_backbone.fused_featurizer` (SiglipVisionModel, no pooling head)
        hidden_size=1152, num_layers=27, num_heads=16, intermediate_size=4304, num_register_tokens=0,
        mean=SIGLIP_MEAN, std=SIGLIP_STD)
    dual_encoder: bool = False  # arXiv 2509.11417: add frozen copies; their features are concatenated per patch
    center_crop_scale: float = 1.0  # area kept by a centred crop before resizing (0.9 for random-crop-trained models)
    capture_size: int | None = None  # camera side (px) of the training frames; eval renders at it (None: unknown)

    def __post_init__(self) -> None:
        _positive('VisionConfig', image_size=self.image_size, patch_size=self.patch_size)
        if self.image_size % self.patch_size:
            raise ValueError(f'VisionConfig.image_size {self.image_size} is not a multiple of patch_size '
                             f'{self.patch_size}')
        if self.dino.num_register_tokens < 1:
            raise ValueError('VisionConfig.dino.num_register_tokens must be >= 1 (Dinov2WithRegistersModel), '
                             f'got {self.dino.num_register_tokens}')
        if self.dino.intermediate_size % self.dino.hidden_size:
            raise ValueError(f'VisionConfig.dino.intermediate_size {self.dino.intermediate_size} must be a multiple '
                             f'of hidden_size {self.dino.hidden_size} (transformers stores it as mlp_ratio)')
        if self.siglip.num_register_tokens:
            raise ValueError('VisionConfig.siglip.num_register_tokens must be 0, got '
                             f'{self.siglip.num_register_tokens}')
        if not 0 < self.center_crop_scale <= 1:
            raise ValueError(f'VisionConfig.center_crop_scale must be in (0, 1], got {self.center_crop_scale}')
        if self.capture_size is not None and self.capture_size < 1:
            raise ValueError(f'VisionConfig.capture_size must be > 0 px or None, got {self.capture_size}')

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def fused_dim(self) -> int:
        """Channels of one fused patch feature from one encoder pair (DINOv2 ‖ SigLIP)."""
        return self.dino.hidden_size + self.siglip.hidden_size

    @property
    def feature_dim(self) -> int:
        """Channels per patch that reach the projector (doubled by the dual encoder)."""
        return self.fused_dim * (2 if self.dual_encoder else 1)


@dataclasses.dataclass(frozen=True)
class LLMConfig:
    """The language model (`language_model` = Qwen2ForCausalLM or LlamaForCausalLM)."""

    arch: str = 'qwen2'  # 'qwen2' (MiniVLA) or 'llama' (OpenVLA)
    vocab_size: int = 151936  # embedding rows (tokenizer length padded to a multiple of 64)
    hidden_size: int = 896  # model width d
    intermediate_size: int = 4864  # SwiGLU MLP width
    num_layers: int = 24  # decoder layers
    num_heads: int = 14  # query heads
    num_kv_heads: int = 2  # key/value heads (GQA); equal to num_heads for MHA
    rms_norm_eps: float = 1e-6  # RMSNorm epsilon (1e-6 also for the released Llama-2 OpenVLA checkpoints)
    rope_theta: float = 1_000_000.0  # RoPE base
    max_position_embeddings: int = 32768  # longest sequence
    tie_word_embeddings: bool = True  # lm_head shares the input embedding (Qwen2.5-0.5B: yes, Llama-2: no)
    pad_token_id: int | None = None  # id used to pad; None: the tokenizer's
    attn_implementation: str = 'sdpa'  # 'sdpa' or 'eager' (flash-attention cannot take the bidirectional mask)

    def __post_init__(self) -> None:
        if self.arch not in _LLM_ARCHS:
            raise ValueError(f'LLMConfig.arch must be one of {_LLM_ARCHS}, got {self.arch!r}')
        _positive('LLMConfig', vocab_size=self.vocab_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                  intermediate_size=self.intermediate_size, num_heads=self.num_heads, num_kv_heads=self.num_kv_heads,
                  rms_norm_eps=self.rms_norm_eps, rope_theta=self.rope_theta,
                  max_position_embeddings=self.max_position_embeddings)
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError(f'LLMConfig: hidden_size {self.hidden_size}, num_heads {self.num_heads} and num_kv_heads '
                             f'{self.num_kv_heads} must divide evenly')
        if self.attn_implementation not in ('sdpa', 'eager'):
            raise ValueError("LLMConfig.attn_implementation must be 'sdpa' or 'eager', got "
                             f'{self.attn_implementation!r}')


@dataclasses.dataclass(frozen=True)
class ActionHeadConfig:
    """Which action head and its options; fields not used by the chosen head are ignored."""

    type: str = 'l1_regression'  # a name in ACTION_HEADS: 'l1_regression', 'action_expert', 'discrete_bins', 'string'
    mlp_blocks: int = 2  # l1_regression: residual blocks of the MLPResNet
    attention: str = 'bidirectional'  # l1_regression: 'bidirectional' (OFT: all non-padding keys) or 'causal'
    n_bins: int = 256  # discrete_bins: uniform bins over [-1, 1]
    action_vocab_end: int | None = None  # discrete_bins: action ids are [end - n_bins, end); None: len(tokenizer)
    decimals: int = 2  # string: digits after the decimal point of each normalized value
    max_new_tokens: int | None = None  # string: generation budget; None: enough for a full chunk
    expert_width: int = 128  # action_expert: width of the expert transformer
    expert_layers: int = 2  # action_expert: layers (self-attention, cross-attention to the VLM features, MLP)
    expert_heads: int = 4  # action_expert: attention heads (expert_width must divide evenly)
    # action_expert: the LLM's attention over [patches, instruction] before the expert reads its states. 'causal':
    # the instruction sees the patches but no patch state depends on the words; 'bidirectional' (π0's prefix):
    # each sees the other, so the patch states can say where the named object is (docs/results/grinningface.md)
    expert_attention: str = 'causal'
    # action_expert: what the expert attends to. 'llm_and_prefix': the LLM's states and the projected patch tokens
    # before the LLM (direct visual access, what made the prior pick); 'llm': the LLM's states alone, so everything
    # the actions use has passed the LLM, where the words are (no instruction-blind shortcut around it)
    expert_context: str = 'llm_and_prefix'
    regression_loss: str = 'l1'  # l1_regression / action_expert: 'l1' (OFT) or 'l2' (leaves a dimension's median)

    def __post_init__(self) -> None:
        for name in ('attention', 'expert_attention'):
            if getattr(self, name) not in ATTENTION_MODES:
                raise ValueError(f'ActionHeadConfig.{name} must be one of {ATTENTION_MODES}, got '
                                 f'{getattr(self, name)!r}')
        if self.expert_context not in EXPERT_CONTEXTS:
            raise ValueError(f'ActionHeadConfig.expert_context must be one of {EXPERT_CONTEXTS}, got '
                             f'{self.expert_context!r}')
        _positive('ActionHeadConfig', mlp_blocks=self.mlp_blocks, n_bins=self.n_bins, expert_width=self.expert_width,
                  expert_layers=self.expert_layers, expert_heads=self.expert_heads)
        if self.expert_width % self.expert_heads:
            raise ValueError(f'ActionHeadConfig.expert_width {self.expert_width} is not divisible by expert_heads '
                             f'{self.expert_heads}')
        if self.regression_loss not in REGRESSION_LOSSES:
            raise ValueError(f'ActionHeadConfig.regression_loss must be one of {REGRESSION_LOSSES}, got '
                             f'{self.regression_loss!r}')
        if self.n_bins < 2:
            raise ValueError(f'ActionHeadConfig.n_bins must be >= 2, got {self.n_bins}')
        if not 0 <= self.decimals <= 6:
            raise ValueError(f'ActionHeadConfig.decimals must be in 0..6, got {self.decimals}')
        if self.max_new_tokens is not None and self.max_new_tokens <= 0:
            raise ValueError(f'ActionHeadConfig.max_new_tokens must be > 0 or None, got {self.max_new_tokens}')


@dataclasses.dataclass(frozen=True)
class VLAConfig:
    """The whole policy; `config.json` of a checkpoint holds exactly this (plus a format marker)."""

    name: str = 'minivla'  # preset this config started from (informational)
    vision: VisionConfig = VisionConfig()  # fused (and optionally dual) vision backbone
    llm: LLMConfig = LLMConfig()  # language model
    head: ActionHeadConfig = ActionHeadConfig()  # action head / action tokenizer
    chunk_size: int = 8  # K actions predicted per query
    action_dim: int = 7  # A dimensions per action
    proprio_dim: int = 8  # state dimensions fed as one token after the patches; 0: no proprio projector
    cameras: tuple[str, ...] = ('third_person', 'wrist')  # views in order; observation.images.<name>
    prompt_template: str = 'In: What action should the robot take to {instruction}?\nOut:'  # robot prompt
    vl_prompt_template: str = 'In: {question}\nOut:'  # co-training prompt (image + question -> answer)
    lowercase_instruction: bool = True  # OpenVLA lower-cases the instruction
    tokenizer: str = 'char'  # 'char': built-in character tokenizer; else a local folder with tokenizer files

    def __post_init__(self) -> None:
        _positive('VLAConfig', chunk_size=self.chunk_size, action_dim=self.action_dim)
        if self.proprio_dim < 0:
            raise ValueError(f'VLAConfig.proprio_dim must be >= 0, got {self.proprio_dim}')
        if not 1 <= len(self.cameras) <= 2 or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f'VLAConfig.cameras must name 1 or 2 distinct views, got {self.cameras!r}')
        if '{instruction}' not in self.prompt_template:
            raise ValueError(f'VLAConfig.prompt_template must contain {{instruction}}, got {self.prompt_template!r}')
        if '{question}' not in self.vl_prompt_template:
            raise ValueError(f'VLAConfig.vl_prompt_template must contain {{question}}, got {self.vl_prompt_template!r}')
        if not self.tokenizer:
            raise ValueError("VLAConfig.tokenizer must be 'char' or a folder, got ''")

    @property
    def num_views(self) -> int:
        return len(self.cameras)

    def replace(self, **changes) -> VLAConfig:
        """A copy with top-level fields changed (sub-configs are replaced whole)."""
        return dataclasses.replace(self, **changes)


def resized(config: VLAConfig, *, vit_width: int, vit_layers: int, vit_heads: int, llm_width: int, llm_layers: int,
            llm_heads: int, llm_kv_heads: int, **changes) -> VLAConfig:
    """`config` with both ViTs and the LLM at new sizes (MLP widths 4x the model width), plus top-level changes."""
    vit = dict(hidden_size=vit_width, num_layers=vit_layers, num_heads=vit_heads, intermediate_size=4 * vit_width)
    vision = dataclasses.replace(config.vision, dino=dataclasses.replace(config.vision.dino, **vit),
                                 siglip=dataclasses.replace(config.vision.siglip, **vit))
    llm = dataclasses.replace(config.llm, hidden_size=llm_width, intermediate_size=4 * llm_width,
                              num_layers=llm_layers, num_heads=llm_heads, num_kv_heads=llm_kv_heads)
    return dataclasses.replace(config, vision=vision, llm=llm, **changes)


VLA_PRESETS: Registry[Callable[[], VLAConfig]] = Registry('VLA preset')


@VLA_PRESETS.register('tiny')
def _tiny() -> VLAConfig:
    """A few-layer model for CPU tests: 28 px views (4 patches), ViT widths 32/48, Qwen2 width 64."""
    return VLAConfig(
        name='tiny',
        vision=VisionConfig(
            image_size=28,
            dino=ViTConfig(hidden_size=32, num_layers=3, num_heads=2, intermediate_size=128),
            siglip=ViTConfig(hidden_size=48, num_layers=3, num_heads=2, intermediate_size=96, num_register_tokens=0,
                             mean=SIGLIP_MEAN, std=SIGLIP_STD),
        ),
        llm=LLMConfig(vocab_size=384, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                      num_kv_heads=2, rope_theta=10000.0, max_position_embeddings=1024),
    )


@VLA_PRESETS.register('prior')
def _prior() -> VLAConfig:
    """The shipped CPU prior's architecture: 84 px views (6x6 patches), ViTs 64 wide x 4 (features of block 3),
    Qwen2 128 x 4, an action expert reading the LLM and the patch tokens (sized to train on 2 CPU cores)."""
    cfg = resized(_tiny(), vit_width=64, vit_layers=4, vit_heads=2, llm_width=128, llm_layers=4, llm_heads=4,
                  llm_kv_heads=2, name='prior',
                  head=ActionHeadConfig(type='action_expert', expert_width=128, expert_layers=2, expert_heads=4))
    # short templates (GrinningFace's): fewer tokens per step for a word-level prior
    return cfg.replace(vision=dataclasses.replace(cfg.vision, image_size=84),
                       prompt_template='task: {instruction}\naction:', vl_prompt_template='q: {question}\na:')


@VLA_PRESETS.register('minivla')
def _minivla() -> VLAConfig:
    """MiniVLA-OFT as MAPS trains it: DINOv2-L/14-reg4 + SigLIP so400m/14 + Qwen2.5-0.5B, 2 views + proprio."""
    # action ids of MiniVLA's extra-token tokenizer: len(Qwen tokenizer 151665 + 256 <|extra_i|>) = 151921
    return VLAConfig(name='minivla', head=ActionHeadConfig(action_vocab_end=151921))


@VLA_PRESETS.register('openvla')
def _openvla() -> VLAConfig:
    """OpenVLA-OFT: the same vision + Llama-2-7B (HF OpenVLA config: vocab 32064, eps 1e-6), 2 views + proprio."""
    return VLAConfig(
        name='openvla',
        llm=LLMConfig(arch='llama', vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_layers=32,
                      num_heads=32, num_kv_heads=32, rope_theta=10000.0, max_position_embeddings=2048,
                      tie_word_embeddings=False, pad_token_id=32000),
        head=ActionHeadConfig(action_vocab_end=32000),
        # OpenVLA(-OFT) trained on 'Out: ' + actions and appends '▁' (29871) at inference when it is missing: with
        # the Llama-2 tokenizer the trailing space yields that token (to verify once the real tokenizer is at hand)
        prompt_template='In: What action should the robot take to {instruction}?\nOut: ',
    )


# --- transformers Auto classes -------------------------------------------------------------------------------------
MODEL_TYPE = 'maps_vla'  # the "model_type" of a checkpoint's config.json
_AUTO: dict[str, type] = {}


def register_auto_classes() -> None:
    """Let transformers' `AutoConfig` / `AutoModel.from_pretrained` open maps_vla checkpoints (idempotent).

    `AutoConfig` gives a `PretrainedConfig` of model_type 'maps_vla' holding config.json (the `VLAConfig` under
    `.config`, `.vla_config()` as the dataclass); `AutoModel` gives the `VLAPolicy` (`VLAPolicy.from_pretrained`;
    `device` and `dtype` keyword arguments are passed on). Called by `import maps_vla.model` (which imports
    transformers anyway), so `import maps_vla` itself stays free of it.
    """
    if _AUTO:
        return
    from transformers import AutoConfig, AutoModel, PretrainedConfig

    class MapsVLAConfig(PretrainedConfig):
        """config.json of a maps_vla checkpoint, as transformers sees it."""

        model_type = MODEL_TYPE

        def vla_config(self) -> VLAConfig:
            from maps_vla.config import from_dict

            return from_dict(VLAConfig, self.config)

    class MapsVLAForAuto:
        """What `AutoModel` instantiates for model_type 'maps_vla': `VLAPolicy.from_pretrained`."""

        config_class = MapsVLAConfig

        @classmethod
        def from_pretrained(cls, directory, *args, config=None, device='cpu', dtype=None, **hub_kwargs):
            from maps_vla.model.vla.modeling_vla import VLAPolicy

            if args:
                raise TypeError(f'maps_vla checkpoints take no positional model arguments, got {args}')
            return VLAPolicy.from_pretrained(directory, device=device, dtype=dtype or hub_kwargs.get('torch_dtype'))

    AutoConfig.register(MODEL_TYPE, MapsVLAConfig, exist_ok=True)
    AutoModel.register(MapsVLAConfig, MapsVLAForAuto, exist_ok=True)
    _AUTO.update(config=MapsVLAConfig, model=MapsVLAForAuto)
