"""A tiny VLA with our parameter names, and weight-free name/shape skeletons of MiniVLA and OpenVLA.

`ToyVLA` mirrors the layout of our model (tiny transformers DINOv2-with-registers and SigLIP towers, a 3-layer
projector, a tiny Qwen2 LM, a proprio projector and an action head) so the MAPS grouping, baselines, LoRA and drift
code can be tested and demonstrated on CPU in seconds. It is not the project's model.

`minivla_like_names()` / `openvla_like_names()` list (name, shape) of the real Prismatic-layout checkpoints
(vla_arch.md §1: timm DINOv2 ViT-L/14-reg4 24 blocks, SigLIP so400m 27 blocks, fused GELU projector, Qwen2.5-0.5B
24 layers or Llama-2-7B 32 layers) in `named_parameters()` order, without allocating any weight.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

__all__ = ['ToyVLA', 'ToyVLAConfig', 'minivla_like_names', 'openvla_like_names']

Shape = tuple[int, ...]


@dataclasses.dataclass
class ToyVLAConfig:
    """Sizes of the toy VLA (everything tiny so a forward/backward takes milliseconds on CPU)."""

    hidden: int = 32  # width of both vision towers and of the LM
    vision_layers: int = 3  # blocks per vision tower
    llm_layers: int = 3  # LM decoder layers
    image_size: int = 28  # square input side, pixels
    patch_size: int = 14  # ViT patch side, pixels
    vocab_size: int = 64  # LM vocabulary
    proprio_dim: int = 8  # proprio state size
    action_dim: int = 7  # action vector size
    dual_encoder: bool = False  # add a frozen copy of the DINOv2 tower at vision_backbone.frozen_featurizer

    def __post_init__(self) -> None:
        for field in ('hidden', 'vision_layers', 'llm_layers', 'image_size', 'patch_size', 'vocab_size',
                      'proprio_dim', 'action_dim'):
            if getattr(self, field) < 1:
                raise ValueError(f'ToyVLAConfig.{field} must be >= 1, got {getattr(self, field)!r}')
        if self.image_size % self.patch_size:
            raise ValueError(f'ToyVLAConfig.image_size={self.image_size} is not a multiple of '
                             f'patch_size={self.patch_size}')
        if self.hidden % 2:
            raise ValueError(f'ToyVLAConfig.hidden must be even (2 attention heads), got {self.hidden}')


class _VisionBackbone(nn.Module):
    def __init__(self, cfg: ToyVLAConfig) -> None:
        super().__init__()
        from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel, SiglipVisionConfig, SiglipVisionModel

        common = dict(hidden_size=cfg.hidden, num_hidden_layers=cfg.vision_layers, num_attention_heads=2,
                      intermediate_size=2 * cfg.hidden, image_size=cfg.image_size, patch_size=cfg.patch_size)
        dino_cfg = Dinov2WithRegistersConfig(num_register_tokens=4, **common)
        self.num_prefix_tokens = 1 + dino_cfg.num_register_tokens
        self.featurizer = Dinov2WithRegistersModel(dino_cfg)
        self.fused_featurizer = SiglipVisionModel(SiglipVisionConfig(**common))
        if cfg.dual_encoder:
            self.frozen_featurizer = Dinov2WithRegistersModel(dino_cfg)
            self.frozen_featurizer.load_state_dict(self.featurizer.state_dict())
            self.frozen_featurizer.requires_grad_(False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # like Prismatic: second-to-last block output, patch tokens only, both towers concatenated on channels
        dino = self.featurizer(pixel_values, output_hidden_states=True).hidden_states[-2][:, self.num_prefix_tokens:]
        siglip = self.fused_featurizer(pixel_values, output_hidden_states=True).hidden_states[-2]
        return torch.cat([dino, siglip], dim=-1)


class _Projector(nn.Module):
    def __init__(self, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
        self.fc3 = nn.Linear(llm_dim, llm_dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class _MLP(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, d_out: int) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(d_in)
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.layer_norm(x))))


class ToyVLA(nn.Module):
    """Tiny VLA with our module names: image + instruction tokens + proprio → one action vector.

    Forward: `pixel_values` (B, 3, H, W), `input_ids` (B, T) int64, `proprio` (B, proprio_dim) → (B, action_dim).
    The LM reads [visual tokens, instruction tokens, proprio token]; the action head reads its last hidden state.
    """

    def __init__(self, cfg: ToyVLAConfig | None = None) -> None:
        super().__init__()
        from transformers import Qwen2Config, Qwen2ForCausalLM

        self.cfg = cfg = cfg or ToyVLAConfig()
        self.vision_backbone = _VisionBackbone(cfg)
        self.projector = _Projector(2 * cfg.hidden, cfg.hidden)
        self.language_model = Qwen2ForCausalLM(Qwen2Config(
            hidden_size=cfg.hidden, num_hidden_layers=cfg.llm_layers, num_attention_heads=2, num_key_value_heads=1,
            intermediate_size=2 * cfg.hidden, vocab_size=cfg.vocab_size, tie_word_embeddings=True))
        self.proprio_projector = _MLP(cfg.proprio_dim, cfg.hidden, cfg.hidden)
        self.action_head = _MLP(cfg.hidden, cfg.hidden, cfg.action_dim)

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        visual = self.projector(self.vision_backbone(pixel_values))
        text = self.language_model.get_input_embeddings()(input_ids)
        state = self.proprio_projector(proprio)[:, None]
        hidden = self.language_model.model(inputs_embeds=torch.cat([visual, text, state], dim=1)).last_hidden_state
        return self.action_head(hidden[:, -1])


def _timm_vit(prefix: str, dim: int, depth: int, mlp: int, *, registers: int, layerscale: bool,
              map_head: bool) -> list[tuple[str, Shape]]:
    out: list[tuple[str, Shape]] = []
    if registers:
        out += [(f'{prefix}.cls_token', (1, 1, dim)), (f'{prefix}.reg_token', (1, registers, dim))]
    out += [(f'{prefix}.pos_embed', (1, 256, dim)), (f'{prefix}.patch_embed.proj.weight', (dim, 3, 14, 14)),
            (f'{prefix}.patch_embed.proj.bias', (dim,))]
    for i in range(depth):
        b = f'{prefix}.blocks.{i}'
        out += [(f'{b}.norm1.weight', (dim,)), (f'{b}.norm1.bias', (dim,)),
                (f'{b}.attn.qkv.weight', (3 * dim, dim)), (f'{b}.attn.qkv.bias', (3 * dim,)),
                (f'{b}.attn.proj.weight', (dim, dim)), (f'{b}.attn.proj.bias', (dim,))]
        out += [(f'{b}.ls1.scale_factor', (dim,))] if layerscale else []
        out += [(f'{b}.norm2.weight', (dim,)), (f'{b}.norm2.bias', (dim,)),
                (f'{b}.mlp.fc1.weight', (mlp, dim)), (f'{b}.mlp.fc1.bias', (mlp,)),
                (f'{b}.mlp.fc2.weight', (dim, mlp)), (f'{b}.mlp.fc2.bias', (dim,))]
        out += [(f'{b}.ls2.scale_factor', (dim,))] if layerscale else []
    out += [(f'{prefix}.norm.weight', (dim,)), (f'{prefix}.norm.bias', (dim,))]
    if map_head:
        a = f'{prefix}.attn_pool'
        out += [(f'{a}.latent', (1, 1, dim)), (f'{a}.q.weight', (dim, dim)), (f'{a}.q.bias', (dim,)),
                (f'{a}.kv.weight', (2 * dim, dim)), (f'{a}.kv.bias', (2 * dim,)), (f'{a}.proj.weight', (dim, dim)),
                (f'{a}.proj.bias', (dim,)), (f'{a}.norm.weight', (dim,)), (f'{a}.norm.bias', (dim,)),
                (f'{a}.mlp.fc1.weight', (mlp, dim)), (f'{a}.mlp.fc1.bias', (mlp,)),
                (f'{a}.mlp.fc2.weight', (dim, mlp)), (f'{a}.mlp.fc2.bias', (dim,))]
    return out


def _llm(d: int, depth: int, mlp: int, kv: int, vocab: int, *, qkv_bias: bool, tied: bool) -> list[tuple[str, Shape]]:
    out: list[tuple[str, Shape]] = [('language_model.model.embed_tokens.weight', (vocab, d))]
    for i in range(depth):
        b = f'language_model.model.layers.{i}'
        for proj, rows in (('q_proj', d), ('k_proj', kv), ('v_proj', kv)):
            out.append((f'{b}.self_attn.{proj}.weight', (rows, d)))
            out += [(f'{b}.self_attn.{proj}.bias', (rows,))] if qkv_bias else []
        out += [(f'{b}.self_attn.o_proj.weight', (d, d)), (f'{b}.mlp.gate_proj.weight', (mlp, d)),
                (f'{b}.mlp.up_proj.weight', (mlp, d)), (f'{b}.mlp.down_proj.weight', (d, mlp)),
                (f'{b}.input_layernorm.weight', (d,)), (f'{b}.post_attention_layernorm.weight', (d,))]
    out.append(('language_model.model.norm.weight', (d,)))
    return out if tied else out + [('language_model.lm_head.weight', (vocab, d))]


def _prismatic(llm: list[tuple[str, Shape]], d: int, heads: bool, action_dim: int = 7,
               proprio_dim: int = 8) -> list[tuple[str, Shape]]:
    vision = 1024 + 1152
    out = _timm_vit('vision_backbone.featurizer', 1024, 24, 4096, registers=4, layerscale=True, map_head=False)
    out += _timm_vit('vision_backbone.fused_featurizer', 1152, 27, 4304, registers=0, layerscale=False, map_head=True)
    out += [('projector.fc1.weight', (4 * vision, vision)), ('projector.fc1.bias', (4 * vision,)),
            ('projector.fc2.weight', (d, 4 * vision)), ('projector.fc2.bias', (d,)),
            ('projector.fc3.weight', (d, d)), ('projector.fc3.bias', (d,))]
    out += llm
    if heads:  # OFT: proprio projector and the L1-regression MLPResNet action head (vla_arch.md §1.4)
        out += [('proprio_projector.fc1.weight', (d, proprio_dim)), ('proprio_projector.fc1.bias', (d,)),
                ('proprio_projector.fc2.weight', (d, d)), ('proprio_projector.fc2.bias', (d,))]
        h = 'action_head.model'
        out += [(f'{h}.layer_norm1.weight', (action_dim * d,)), (f'{h}.layer_norm1.bias', (action_dim * d,)),
                (f'{h}.fc1.weight', (d, action_dim * d)), (f'{h}.fc1.bias', (d,))]
        for i in range(2):
            out += [(f'{h}.mlp_resnet_blocks.{i}.ffn.0.weight', (d,)), (f'{h}.mlp_resnet_blocks.{i}.ffn.0.bias', (d,)),
                    (f'{h}.mlp_resnet_blocks.{i}.ffn.1.weight', (d, d)), (f'{h}.mlp_resnet_blocks.{i}.ffn.1.bias', (d,))]
        out += [(f'{h}.layer_norm2.weight', (d,)), (f'{h}.layer_norm2.bias', (d,)),
                (f'{h}.fc2.weight', (action_dim, d)), (f'{h}.fc2.bias', (action_dim,))]
    return out


def minivla_like_names(heads: bool = True) -> list[tuple[str, Shape]]:
    """(name, shape) of MiniVLA (DINOv2 24 + SigLIP 27 blocks, projector, Qwen2.5-0.5B 24 layers, tied lm_head).

    Args:
        heads: append the OFT `proprio_projector.*` and `action_head.*` (new modules).

    Returns:
        Names in `named_parameters()` order of the HF Prismatic layout, with their shapes.
    """
    return _prismatic(_llm(896, 24, 4864, 128, 151936, qkv_bias=True, tied=True), 896, heads)


def openvla_like_names(heads: bool = True) -> list[tuple[str, Shape]]:
    """(name, shape) of OpenVLA (DINOv2 24 + SigLIP 27 blocks, projector, Llama-2-7B 32 layers, own lm_head).

    Args:
        heads: append the OFT `proprio_projector.*` and `action_head.*` (new modules).

    Returns:
        Names in `named_parameters()` order of the HF Prismatic layout, with their shapes.
    """
    return _prismatic(_llm(4096, 32, 11008, 4096, 32064, qkv_bias=False, tied=False), 4096, heads)
