"""Shared steps of the importers: map vision / projector / LLM tensors, add fresh heads, load and finish."""

from __future__ import annotations

import logging

import torch

from maps_vla.model.checkpoint import finalize_loaded, load_tensors_into
from maps_vla.model.heads.base import ACTION_HEADS
from maps_vla.model.importers.foreign import ForeignState
from maps_vla.model.importers.key_mapping import Rule, copy_rules, dinov2_rules, import_with_rules, siglip_rules
from maps_vla.model.vla.modeling_vla import ProprioProjector, VLAPolicy

logger = logging.getLogger(__name__)

_TIED = 'language_model.lm_head.weight'


def shapes_of(policy: VLAPolicy) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in policy.state_dict().items()}


def vision_tensors(policy: VLAPolicy, foreign: ForeignState, dino_prefix: str, siglip_prefix: str,
                   layerscale: str) -> dict[str, torch.Tensor]:
    """Both ViTs (and, with the dual encoder, independent copies for the frozen encoders)."""
    cfg, shapes = policy.config.vision, shapes_of(policy)
    out = import_with_rules(dinov2_rules(cfg.dino.num_layers, layerscale), foreign.take, shapes,
                            'vision_backbone.featurizer.', dino_prefix)
    out.update(import_with_rules(siglip_rules(cfg.siglip.num_layers), foreign.take, shapes,
                                 'vision_backbone.fused_featurizer.', siglip_prefix))
    if cfg.dual_encoder:
        for key in list(out):
            frozen = key.replace('vision_backbone.featurizer.', 'vision_backbone.frozen_featurizer.').replace(
                'vision_backbone.fused_featurizer.', 'vision_backbone.frozen_fused_featurizer.')
            out[frozen] = out[key].clone()
    return out


def projector_tensors(policy: VLAPolicy, foreign: ForeignState, names: tuple[str, str, str]) -> dict[str, torch.Tensor]:
    """fc1/fc2/fc3 from the foreign Linear prefixes `names`; fc1 is widened for the dual encoder."""
    dual = policy.config.vision.dual_encoder
    rules = [Rule(('projector.fc1.weight',), (f'{names[0]}.weight',), 'dual_fc1' if dual else 'copy'),
             Rule(('projector.fc1.bias',), (f'{names[0]}.bias',))]
    for ours, theirs in zip(('fc2', 'fc3'), names[1:]):
        rules += [Rule((f'projector.{ours}.{p}',), (f'{theirs}.{p}',)) for p in ('weight', 'bias')]
    if dual:
        logger.info('Dual encoder: projector fc1 initialized as [W/2, W/2] over [frozen ‖ trainable] features')
    return import_with_rules(rules, foreign.take, shapes_of(policy))


def llm_tensors(policy: VLAPolicy, foreign: ForeignState, foreign_prefix: str) -> dict[str, torch.Tensor]:
    """Every `language_model.*` key from `foreign_prefix + <same relative name>` (tied lm_head skipped)."""
    shapes = shapes_of(policy)
    tied = policy.config.llm.tie_word_embeddings
    keys = [k[len('language_model.'):] for k in shapes if k.startswith('language_model.') and not (tied and k == _TIED)]
    if tied and foreign_prefix + 'lm_head.weight' in foreign:
        foreign.skip(foreign_prefix + 'lm_head.weight')
    return import_with_rules(copy_rules(keys), foreign.take, shapes, 'language_model.', foreign_prefix)


def add_fresh_modules(policy: VLAPolicy, names: list[str]) -> list[str]:
    """Replace meta-device `action_head` / `proprio_projector` by freshly initialized ones; returns their keys."""
    cfg = policy.config
    keys = []
    for name in names:
        if name == 'action_head':
            module = ACTION_HEADS.get(cfg.head.type)(cfg, policy.tokenizer)
        elif name == 'proprio_projector':
            module = ProprioProjector(cfg.proprio_dim, cfg.llm.hidden_size)
        else:
            raise ValueError(f'No fresh initializer for {name!r}')
        setattr(policy, name, module)
        keys += [f'{name}.{k}' for k in module.state_dict()]
        if keys:
            logger.info('%s is not in the checkpoint: initialized randomly', name)
    return keys


def finish(policy: VLAPolicy, tensors: dict[str, torch.Tensor], default_origin: str, fresh_keys: list[str],
           device: str | torch.device, dtype: torch.dtype | None) -> VLAPolicy:
    allow = set(fresh_keys) | ({_TIED} if policy.config.llm.tie_word_embeddings else set())
    load_tensors_into(policy, tensors, {}, default_origin=default_origin, allow_missing=allow)
    return finalize_loaded(policy, device, dtype)
