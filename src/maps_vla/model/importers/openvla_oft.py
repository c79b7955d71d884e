"""Import an OpenVLA / OpenVLA-OFT checkpoint folder (HF `OpenVLAForActionPrediction` layout) into `VLAPolicy`.

Published folder (e.g. moojink/openvla-7b-oft-finetuned-libero-spatial, vla_arch.md §1.5):
    config.json                               model_type "openvla", text_config, norm_stats
    model-0000i-of-0000n.safetensors + model.safetensors.index.json   (or a single model.safetensors), bf16
        vision_backbone.featurizer.*          timm DINOv2-reg names, LayerScale as `scale_factor`
        vision_backbone.fused_featurizer.*    timm SigLIP names (attn_pool.* unused, dropped)
        projector.fc1/fc2/fc3.*, language_model.model.*, language_model.lm_head.weight
    dataset_statistics.json                   {unnorm_key: {action: {q01, q99, mask, ..}, proprio: {..}}}
    action_head--<step>_checkpoint.pt         torch.save(state_dict) of the L1 head, keys prefixed `module.`
    proprio_projector--<step>_checkpoint.pt   the same for the proprio projector (fp32)
    lora_adapter/                             adapter_config.json + adapter_model.safetensors (already merged into
                                              the released weights; merge it only into un-merged base weights)
    tokenizer files

Refused with a message naming the file (VLAPolicy has no such modules, and importing around them would silently
give a different policy): FiLM checkpoints (`vision_backbone--*_checkpoint.pt`, the instruction-conditioned vision
backbone of `use_film=True`) and diffusion OFT (`noisy_action_projector--*_checkpoint.pt`, `use_diffusion=True`).

Normalization: OFT normalizes actions and proprio to [-1, 1] with [q01, q99] bounds (NormalizationType.BOUNDS_Q99,
LIBERO and Bridge) or with [min, max] (NormalizationType.BOUNDS, ALOHA); the formula is otherwise the same, so the
ALOHA statistics are imported as our [low, high] bounds (`normalization='bounds'`, chosen automatically for an
unnorm key naming ALOHA or 14-D bimanual actions).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from maps_vla.model.checkpoint import build_empty, require_file
from maps_vla.model.importers import _assemble
from maps_vla.model.importers.foreign import ForeignState, latest_file, load_torch_file
from maps_vla.model.importers.key_mapping import (SIGLIP_UNUSED_PREFIX, copy_rules, dinov2_rules, export_with_rules,
                                                  import_with_rules, siglip_rules)
from maps_vla.model.vla.configuration_vla import VLA_PRESETS, VLAConfig
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.model.vla.processor_vla import NormStats
from maps_vla.model.vla.tokenization_vla import load_tokenizer
from maps_vla.policy import ActionSpec

__all__ = ['import_openvla_oft', 'export_openvla_oft', 'ACTION_HEAD_PATTERN', 'PROPRIO_PATTERN', 'FILM_PATTERN',
           'DIFFUSION_PATTERN', 'NORMALIZATIONS']

logger = logging.getLogger(__name__)

ACTION_HEAD_PATTERN = 'action_head--*_checkpoint.pt'
PROPRIO_PATTERN = 'proprio_projector--*_checkpoint.pt'
FILM_PATTERN = 'vision_backbone--*_checkpoint.pt'  # FiLM-conditioned vision backbone (use_film=True)
DIFFUSION_PATTERN = 'noisy_action_projector--*_checkpoint.pt'  # diffusion action head (use_diffusion=True)
NORMALIZATIONS = ('bounds_q99', 'bounds')  # OFT's NormalizationType.BOUNDS_Q99 / BOUNDS
_BIMANUAL_DIM = 14  # ALOHA's action and proprio size
_SIGLIP = 'vision_backbone.fused_featurizer.'
_DINO = 'vision_backbone.featurizer.'


def _check_hf_config(path: Path, config: VLAConfig) -> dict:
    data = json.loads(path.read_text())
    vocab = (data.get('text_config') or {}).get('vocab_size')
    if vocab is not None and vocab != config.llm.vocab_size:
        raise ValueError(f"{path}: key 'text_config.vocab_size' is {vocab}, the config has LLMConfig.vocab_size "
                         f'{config.llm.vocab_size}')
    if data.get('model_type') not in (None, 'openvla', 'prismatic'):
        logger.warning('%s: model_type %r is not openvla; importing anyway', path, data.get('model_type'))
    return data


def _refuse_unsupported(folder: Path) -> None:
    film = latest_file(folder, FILM_PATTERN)
    if film is not None:
        raise ValueError(f'{str(film)!r}: a FiLM checkpoint (OpenVLA-OFT use_film=True): its vision backbone has FiLM '
                         'layers conditioned on the instruction, which VLAPolicy does not have; importing the plain '
                         'vision weights of the model files instead would give different image features. FiLM '
                         'checkpoints (e.g. the ALOHA OFT+ models) are not supported.')
    diffusion = latest_file(folder, DIFFUSION_PATTERN)
    if diffusion is not None:
        raise ValueError(f'{str(diffusion)!r}: a diffusion OpenVLA-OFT checkpoint (use_diffusion=True): VLAPolicy '
                         'has no diffusion action head (noise predictor and noisy action projector). Only L1 '
                         'regression OFT heads (action_head--*_checkpoint.pt) import.')


def _as_bounds(stats: dict, source: str) -> dict:
    """OFT statistics with [min, max] in place of [q01, q99] (NormalizationType.BOUNDS)."""
    out = {}
    for key, entry in stats.items():
        entry = dict(entry)
        for part in ('action', 'proprio'):
            if isinstance(entry.get(part), dict):
                values = entry[part]
                missing = [name for name in ('min', 'max') if name not in values]
                if missing:
                    raise ValueError(f"{source}: key '{key}.{part}' has no {missing} for normalization='bounds' "
                                     '(OFT NormalizationType.BOUNDS)')
                entry[part] = {**values, 'q01': values['min'], 'q99': values['max']}
        out[key] = entry
    return out


def _norm_stats(folder: Path, hf_config: dict, unnorm_key: str | None, normalization: str | None,
                config: VLAConfig) -> NormStats:
    path = folder / 'dataset_statistics.json'
    if path.is_file():
        stats, source = json.loads(path.read_text()), str(path)
    elif hf_config.get('norm_stats'):
        stats, source = hf_config['norm_stats'], str(folder / 'config.json')
    else:
        raise FileNotFoundError(f'Missing checkpoint file {str(path)!r} (and config.json has no norm_stats)')
    if normalization is None:
        key = unnorm_key if unnorm_key is not None else (next(iter(stats)) if len(stats) == 1 else '')
        aloha = 'aloha' in str(key).lower() or config.action_dim == _BIMANUAL_DIM
        normalization = 'bounds' if aloha else 'bounds_q99'
        logger.info('%s: normalizing with %s (OFT uses min/max bounds for ALOHA, q01/q99 otherwise); pass '
                    'normalization= to choose', source, normalization)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}')
    if normalization == 'bounds':
        stats = _as_bounds(stats, source)
    return NormStats.from_dataset_statistics(stats, unnorm_key, source)


def _main_weights(folder: Path) -> ForeignState:
    index = folder / 'model.safetensors.index.json'
    if index.is_file():
        foreign = ForeignState(index)
        foreign.add_sharded_safetensors(index)
        return foreign
    single = folder / 'model.safetensors'
    if not single.is_file():
        raise FileNotFoundError(f'Missing checkpoint file {str(index)!r} (or a single {single.name})')
    foreign = ForeignState(single)
    foreign.add_safetensors(single)
    return foreign


def _component(policy: VLAPolicy, path: Path, name: str) -> dict[str, torch.Tensor]:
    """An OFT `<name>--*.pt` state dict (DDP `module.` prefix optional) mapped onto `policy.<name>`."""
    state = load_torch_file(path)
    if not isinstance(state, dict):
        raise ValueError(f'{path}: expected a state dict, got {type(state).__name__}')
    foreign = ForeignState(path)
    foreign.add_tensors(state, path)
    prefix = 'module.' if state and all(k.startswith('module.') for k in state) else ''
    keys = list(getattr(policy, name).state_dict())
    out = import_with_rules(copy_rules(keys), foreign.take, _assemble.shapes_of(policy), f'{name}.', prefix)
    foreign.check_all_used()
    return out


def import_openvla_oft(folder: str | os.PathLike, config: VLAConfig | str = 'openvla', *,
                       unnorm_key: str | None = None, merge_lora: bool = False, new_heads: bool = False,
                       action_spec: ActionSpec | None = None, device: str | torch.device = 'cpu',
                       dtype: torch.dtype | None = None, normalization: str | None = None) -> VLAPolicy:
    """Build a `VLAPolicy` from an OpenVLA-OFT (or OpenVLA) HF checkpoint folder.

    Args:
        folder: the checkpoint folder (layout in the module docstring).
        config: our config (or preset name) describing the checkpoint; shapes are checked against it. With
            `vision.dual_encoder` the frozen copy starts equal to the imported encoder.
        unnorm_key: dataset in dataset_statistics.json; required when it holds several.
        merge_lora: add `lora_adapter/` to the weights (only for un-merged base weights; the released OFT
            checkpoints are already merged).
        new_heads: allow a missing action_head / proprio_projector file (initialized randomly), e.g. when
            starting OFT training from openvla-7b.
        action_spec: saved with the policy (default: 7-D end-effector deltas).
        device, dtype: where to put the model and to which floating dtype to cast it (None: the files' dtype).
        normalization: 'bounds_q99' ([q01, q99], OFT's LIBERO / Bridge models) or 'bounds' ([min, max], OFT's
            ALOHA models); None picks 'bounds' for an unnorm key naming ALOHA or 14-D actions, else 'bounds_q99'.

    Returns:
        The policy in eval mode.

    Raises:
        FileNotFoundError: a required file is missing (named).
        ValueError: a missing/unexpected key or a shape mismatch (file and key named); a FiLM or diffusion
            checkpoint (file named); statistics without min/max for normalization='bounds'.
        TypeError: a non-floating tensor (file and key named).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'Checkpoint folder {str(folder)!r} does not exist')
    _refuse_unsupported(folder)
    config = VLA_PRESETS.get(config)() if isinstance(config, str) else config
    config = config.replace(tokenizer=str(folder))  # the tokenizer ships with the checkpoint
    hf_config = _check_hf_config(require_file(folder / 'config.json', 'OpenVLA config'), config)
    norm_stats = _norm_stats(folder, hf_config, unnorm_key, normalization, config)
    require_file(folder / 'tokenizer_config.json', 'tokenizer')
    policy = build_empty(config, load_tokenizer(folder), norm_stats, action_spec)
    foreign = _main_weights(folder)
    if merge_lora:
        foreign.merge_lora(folder / 'lora_adapter')
    elif (folder / 'lora_adapter').is_dir():
        logger.info('%s/lora_adapter found; assuming it is merged into the weights (merge_lora=False)', folder)

    tensors = _assemble.vision_tensors(policy, foreign, _DINO, _SIGLIP, 'scale_factor')
    tensors.update(_assemble.projector_tensors(policy, foreign, ('projector.fc1', 'projector.fc2', 'projector.fc3')))
    tensors.update(_assemble.llm_tensors(policy, foreign, 'language_model.'))
    foreign.check_all_used(ignore_prefixes=(_SIGLIP + SIGLIP_UNUSED_PREFIX,))

    fresh = []
    components = [('action_head', ACTION_HEAD_PATTERN)] if config.head.type == 'l1_regression' else []
    if config.proprio_dim:
        components.append(('proprio_projector', PROPRIO_PATTERN))
    for name, pattern in components:
        path = latest_file(folder, pattern)
        if path is not None:
            tensors.update(_component(policy, path, name))
        elif new_heads:
            fresh.append(name)
        else:
            raise FileNotFoundError(f'Missing checkpoint file {str(folder / pattern)!r} for {name} '
                                    '(pass new_heads=True to start it from random weights)')
    if config.head.type != 'l1_regression' and latest_file(folder, ACTION_HEAD_PATTERN) is not None:
        logger.warning('%s has an L1 action head file but the config uses %r; it is ignored', folder,
                       config.head.type)
    fresh_keys = _assemble.add_fresh_modules(policy, fresh)
    return _assemble.finish(policy, tensors, str(foreign.default_file), fresh_keys, device, dtype)


def export_openvla_oft(policy: VLAPolicy) -> dict[str, dict[str, torch.Tensor]]:
    """Our weights under OpenVLA-OFT names: {'model': HF state dict, 'action_head': .., 'proprio_projector': ..}.

    The head dicts carry OFT's `module.` prefix; SigLIP's unused `attn_pool` head is not produced.

    Raises:
        ValueError: for dual-encoder policies (no OpenVLA layout exists for them).
    """
    if policy.config.vision.dual_encoder:
        raise ValueError('A dual-encoder policy has no OpenVLA-OFT layout')
    cfg, state = policy.config, policy.state_dict()
    model = export_with_rules(dinov2_rules(cfg.vision.dino.num_layers, 'scale_factor'), state, _DINO, _DINO)
    model.update(export_with_rules(siglip_rules(cfg.vision.siglip.num_layers), state, _SIGLIP, _SIGLIP))
    for key, value in state.items():
        if key.startswith(('projector.', 'language_model.')):
            model[key] = value.contiguous()
    if cfg.llm.tie_word_embeddings:
        model.pop('language_model.lm_head.weight', None)
    out = {'model': model}
    for name in ('action_head', 'proprio_projector'):
        module = getattr(policy, name)
        if module is not None and len(module.state_dict()):
            out[name] = {f'module.{k}': v.contiguous() for k, v in module.state_dict().items()}
    return out
