"""Fused DINOv2 + SigLIP vision backbone (Prismatic "dinosiglip"), with the optional dual encoder of 2509.11417.

Parameter names are a contract with the MAPS param-group code:
    vision_backbone.featurizer               transformers Dinov2WithRegistersModel (trainable)
    vision_backbone.fused_featurizer         transformers SiglipVisionModel, no pooling head (trainable)
    vision_backbone.frozen_featurizer        dual encoder only: frozen copy of `featurizer`
    vision_backbone.frozen_fused_featurizer  dual encoder only: frozen copy of `fused_featurizer`

Features are the output of the second-to-last block (`hidden_states[-2]`), before any final norm, patch tokens only
(DINOv2's CLS and register tokens dropped), concatenated on channels: (N, patches, D_dino + D_siglip). Only the first
`depth - 1` blocks are run; the last block and the final norms stay in the module so checkpoints map 1:1, but they
cannot influence the output, so they are created with `requires_grad=False` (no DDP unused-parameter errors, no
optimizer state for them).

Dual encoder (arXiv 2509.11417, "partially-frozen visual encoders"): z = φ_frozen(o) ‖ φ_train(o), i.e. the frozen
copy's fused features and the trainable encoder's fused features are concatenated per patch on channels, giving
(N, patches, 2·(D_dino + D_siglip)); the projector's first layer takes that doubled width. The frozen copy runs under
`no_grad` and stays in eval mode.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel, SiglipVisionConfig, SiglipVisionModel

from maps_vla.model.vla.configuration_vla import VisionConfig

__all__ = ['FusedVisionBackbone', 'second_to_last_features']


def _dino(cfg: VisionConfig) -> Dinov2WithRegistersModel:
    vit = cfg.dino
    model = Dinov2WithRegistersModel(Dinov2WithRegistersConfig(
        hidden_size=vit.hidden_size, num_hidden_layers=vit.num_layers, num_attention_heads=vit.num_heads,
        mlp_ratio=vit.intermediate_size // vit.hidden_size, hidden_act=vit.hidden_act,
        layer_norm_eps=vit.layer_norm_eps, image_size=cfg.image_size, patch_size=cfg.patch_size,
        num_register_tokens=vit.num_register_tokens))
    with torch.no_grad():  # timm's no_embed_class: CLS gets no position embedding (keeps timm files exchangeable)
        model.embeddings.position_embeddings[:, 0].zero_()
    return model


def _siglip(cfg: VisionConfig) -> SiglipVisionModel:
    vit = cfg.siglip
    return SiglipVisionModel(SiglipVisionConfig(
        hidden_size=vit.hidden_size, num_hidden_layers=vit.num_layers, num_attention_heads=vit.num_heads,
        intermediate_size=vit.intermediate_size, hidden_act=vit.hidden_act, layer_norm_eps=vit.layer_norm_eps,
        image_size=cfg.image_size, patch_size=cfg.patch_size, vision_use_head=False))


def _freeze_unused(dino: Dinov2WithRegistersModel, siglip: SiglipVisionModel) -> None:
    for module in (dino.encoder.layer[-1], dino.layernorm, siglip.encoder.layers[-1], siglip.post_layernorm):
        module.requires_grad_(False)
    dino.embeddings.mask_token.requires_grad_(False)  # only used for masked-image pretraining


def _dino_features(dino: Dinov2WithRegistersModel, pixel_values: torch.Tensor) -> torch.Tensor:
    hidden = dino.embeddings(pixel_values.to(dino.embeddings.patch_embeddings.projection.weight.dtype))
    for layer in dino.encoder.layer[:-1]:
        hidden = layer(hidden)
    return hidden[:, 1 + dino.config.num_register_tokens:]


def _siglip_features(siglip: SiglipVisionModel, pixel_values: torch.Tensor) -> torch.Tensor:
    hidden = siglip.embeddings(pixel_values)
    for layer in siglip.encoder.layers[:-1]:
        hidden = layer(hidden, None)
    return hidden


def second_to_last_features(dino: Dinov2WithRegistersModel, siglip: SiglipVisionModel,
                            pixel_values: torch.Tensor) -> torch.Tensor:
    """Fused patch features of one encoder pair.

    Args:
        dino: the DINOv2-with-registers model.
        siglip: the SigLIP vision model.
        pixel_values: (N, 6, S, S); channels 0-2 normalized for DINOv2, 3-5 for SigLIP.

    Returns:
        (N, (S / patch)^2, D_dino + D_siglip), equal to `hidden_states[-2]` of each model (prefix tokens dropped).
    """
    return torch.cat([_dino_features(dino, pixel_values[:, :3]), _siglip_features(siglip, pixel_values[:, 3:])], -1)


class FusedVisionBackbone(nn.Module):
    """DINOv2-reg + SigLIP on the same image; optionally a frozen copy of both (dual encoder)."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        self.featurizer = _dino(config)
        self.fused_featurizer = _siglip(config)
        _freeze_unused(self.featurizer, self.fused_featurizer)
        if config.dual_encoder:
            self.frozen_featurizer = copy.deepcopy(self.featurizer).requires_grad_(False).eval()
            self.frozen_fused_featurizer = copy.deepcopy(self.fused_featurizer).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> FusedVisionBackbone:
        super().train(mode)
        if self.config.dual_encoder:  # the frozen anchor never trains (no dropout / drop-path either)
            self.frozen_featurizer.eval()
            self.frozen_fused_featurizer.eval()
        return self

    def copy_trainable_to_frozen(self) -> None:
        """Make the frozen copy equal to the trainable encoder (after importing pretrained weights)."""
        if not self.config.dual_encoder:
            raise RuntimeError('copy_trainable_to_frozen needs VisionConfig.dual_encoder=True')
        with torch.no_grad():
            self.frozen_featurizer.load_state_dict(self.featurizer.state_dict())
            self.frozen_fused_featurizer.load_state_dict(self.fused_featurizer.state_dict())

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Patch features.

        Args:
            pixel_values: (N, 6, S, S) float; DINOv2-normalized RGB then SigLIP-normalized RGB.

        Returns:
            (N, patches, feature_dim): [frozen DINOv2 ‖ frozen SigLIP ‖] DINOv2 ‖ SigLIP.
        """
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 6:
            raise ValueError(f'pixel_values must be (N, 6, S, S), got {tuple(pixel_values.shape)}')
        trainable = second_to_last_features(self.featurizer, self.fused_featurizer, pixel_values)
        if not self.config.dual_encoder:
            return trainable
        with torch.no_grad():
            frozen = second_to_last_features(self.frozen_featurizer, self.frozen_fused_featurizer, pixel_values)
        return torch.cat([frozen.to(trainable.dtype), trainable], -1)
