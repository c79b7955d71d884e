"""Import a native Prismatic run folder (MiniVLA, `prism-qwen25-extra-dinosiglip-224px-0_5b`, ...) into `VLAPolicy`.

Published layout (vla_arch.md §1.5, MINI:prismatic/models/load.py):
    config.json                 {"model": {model_id, vision_backbone_id, llm_backbone_id, arch_specifier, ..}} (VLM)
                                or {"vla": {base_vlm, action_tokenizer, ..}} (VLA)
    dataset_statistics.json     VLA runs only: {unnorm_key: {action: {q01, q99, mask}, proprio: {..}}}
    checkpoints/latest-checkpoint.pt  or  checkpoints/step-XXXXXX-epoch-XX-loss=X.XXXX.pt
        torch.save({"model": {"vision_backbone": {dino_featurizer.*, siglip_featurizer.*},   (VLA runs)
                              "projector": {projector.0/2/4.*},
                              "llm_backbone": {llm.model.*, llm.lm_head.weight}}})
VLM-stage checkpoints hold no vision weights (timm downloaded them at training time): pass the two cached timm
files (`vit_large_patch14_reg4_dinov2.lvd142m`, `vit_so400m_patch14_siglip_224`, plain timm keys) as
`timm_weights`. No tokenizer ships with these folders: pass a local Qwen2.5 / Llama-2 tokenizer folder.

Action heads are never in these files (MiniVLA decodes extra or VQ tokens): `action_head` (if it has parameters)
and `proprio_projector` start from random weights. The VLA run config is checked: runs with MiniVLA's residual-VQ
action tokenizer (`vla.action_tokenizer` '*_vq_*', weights in `vq/`) or other tokenizers without a maps_vla
counterpart, a frame history (`vla.image_sequence_len` > 1), or a wrist view (`vla.use_wrist_image`) that the
config's cameras do not match are refused, naming the key. Note that native MiniVLA was trained with the exact ImageNet
DINOv2 statistics (`IMAGENET_MEAN`), while MAPS fine-tunes it through the HF processor (bf16-rounded, the presets'
default): set `VLAConfig.vision.dino` accordingly.
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
from maps_vla.model.importers.key_mapping import SIGLIP_UNUSED_PREFIX, dinov2_rules, export_with_rules, siglip_rules
from maps_vla.model.vla.configuration_vla import VLA_PRESETS, VLAConfig
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.model.vla.processor_vla import NormStats
from maps_vla.model.vla.tokenization_vla import load_tokenizer
from maps_vla.policy import ActionSpec

__all__ = ['import_minivla', 'export_prismatic', 'SUPPORTED_ACTION_TOKENIZERS']

logger = logging.getLogger(__name__)

_DINO = 'vision_backbone.dino_featurizer.'
_SIGLIP = 'vision_backbone.siglip_featurizer.'
_LLM = 'llm_backbone.llm.'
_PROJECTOR = ('projector.projector.0', 'projector.projector.2', 'projector.projector.4')


# openvla-mini's ACTION_TOKENIZERS that map onto our discrete-bins head (the others decode through a residual-VQ
# VAE or FAST/DCT, which maps_vla does not implement)
SUPPORTED_ACTION_TOKENIZERS = ('action_tokenizer', 'extra_action_tokenizer')


def _check_vla_section(path: Path, vla: dict, config: VLAConfig, run_dir: Path) -> None:
    """The VLA run options that change what the weights mean: action tokenizer, frame history, wrist view."""
    tokenizer = vla.get('action_tokenizer', 'action_tokenizer')
    if 'vq' in str(tokenizer) or (run_dir / 'vq').is_dir():
        raise ValueError(f"{path}: key 'vla.action_tokenizer' is {tokenizer!r}"
                         + (f" and {str(run_dir / 'vq')!r} exists" if (run_dir / 'vq').is_dir() else '')
                         + ": MiniVLA's residual-VQ action tokenizer decodes action chunks through a VQ-VAE "
                         "(the 'vq/' weights) that maps_vla does not implement; only runs trained with "
                         f'{list(SUPPORTED_ACTION_TOKENIZERS)} import')
    if tokenizer not in SUPPORTED_ACTION_TOKENIZERS:
        raise ValueError(f"{path}: key 'vla.action_tokenizer' is {tokenizer!r}; only "
                         f'{list(SUPPORTED_ACTION_TOKENIZERS)} map onto maps_vla action heads')
    if config.head.type == 'discrete_bins':
        extra = tokenizer == 'extra_action_tokenizer'
        if extra != (config.head.action_vocab_end is not None):
            raise ValueError(f"{path}: key 'vla.action_tokenizer' is {tokenizer!r} (action ids "
                             f"{'after the base vocabulary' if extra else 'at the end of the vocabulary'}), but "
                             f'ActionHeadConfig.action_vocab_end is {config.head.action_vocab_end!r}; set it '
                             f"{'to the end of the extra tokens' if extra else 'to None'}")
    history = int(vla.get('image_sequence_len', 1) or 1)
    if history != 1:
        raise ValueError(f"{path}: key 'vla.image_sequence_len' is {history}: the run was trained on a history of "
                         'frames, which VLAPolicy does not take (one frame per view)')
    wrist = bool(vla.get('use_wrist_image', False))
    if wrist != (config.num_views == 2):
        raise ValueError(f"{path}: key 'vla.use_wrist_image' is {wrist}, so the run sees {2 if wrist else 1} "
                         f'view(s), but VLAConfig.cameras is {list(config.cameras)}')


def _check_run_config(path: Path, config: VLAConfig) -> None:
    data = json.loads(path.read_text())
    model = data.get('model') or {}
    if not model and not data.get('vla'):
        raise ValueError(f"{path}: expected a 'model' or 'vla' section (a Prismatic run config)")
    if isinstance(data.get('vla'), dict):
        _check_vla_section(path, data['vla'], config, path.parent)
    vision, llm = model.get('vision_backbone_id', ''), model.get('llm_backbone_id', '')
    if vision and not vision.startswith('dinosiglip'):
        raise ValueError(f"{path}: key 'model.vision_backbone_id' is {vision!r}; only dinosiglip backbones map "
                         'onto VLAPolicy')
    if llm and config.llm.arch not in llm.replace('qwen25', 'qwen2'):
        raise ValueError(f"{path}: key 'model.llm_backbone_id' is {llm!r} but LLMConfig.arch is "
                         f'{config.llm.arch!r}')


def _checkpoint_file(run_dir: Path, checkpoint: str | os.PathLike | None) -> Path:
    if checkpoint is not None:
        return require_file(Path(checkpoint), 'Prismatic checkpoint')
    latest = run_dir / 'checkpoints' / 'latest-checkpoint.pt'
    found = latest if latest.is_file() else latest_file(run_dir / 'checkpoints', 'step-*.pt')
    if found is None:
        raise FileNotFoundError(f"Missing checkpoint file {str(run_dir / 'checkpoints' / 'step-*.pt')!r} "
                                '(or latest-checkpoint.pt)')
    return found


def _read_modules(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    payload = load_torch_file(path)
    modules = payload.get('model') if isinstance(payload, dict) else None
    if not isinstance(modules, dict):
        raise ValueError(f"{path}: missing key 'model' (expected torch.save({{'model': {{...}}}}))")
    for name in ('projector', 'llm_backbone'):
        if not isinstance(modules.get(name), dict):
            raise ValueError(f"{path}: missing key 'model.{name}'")
    return modules


def _add_timm_file(foreign: ForeignState, path: Path, prefix: str) -> None:
    if path.suffix == '.safetensors':
        foreign.add_safetensors(require_file(path, 'timm ViT weights'), prefix)
    else:
        state = load_torch_file(path)
        if not isinstance(state, dict):
            raise ValueError(f'{path}: expected a timm state dict, got {type(state).__name__}')
        foreign.add_tensors(state, path, prefix)


def import_minivla(run_dir: str | os.PathLike, config: VLAConfig | str = 'minivla', *,
                   checkpoint: str | os.PathLike | None = None, tokenizer: str | os.PathLike | None = None,
                   timm_weights: tuple[str | os.PathLike, str | os.PathLike] | None = None,
                   unnorm_key: str | None = None, norm_stats: NormStats | None = None,
                   action_spec: ActionSpec | None = None, device: str | torch.device = 'cpu',
                   dtype: torch.dtype | None = None) -> VLAPolicy:
    """Build a `VLAPolicy` from a native Prismatic (MiniVLA) run folder.

    Args:
        run_dir: the run folder (layout in the module docstring).
        config: our config (or preset name); shapes are checked against it.
        checkpoint: a specific `.pt`; default `checkpoints/latest-checkpoint.pt`, else the highest `step-*.pt`.
        tokenizer: local tokenizer folder; None uses `config.tokenizer`.
        timm_weights: (DINOv2 file, SigLIP file) for checkpoints without vision weights.
        unnorm_key: dataset in dataset_statistics.json when it holds several.
        norm_stats: override the statistics (e.g. of the dataset about to be fine-tuned on); otherwise from
            dataset_statistics.json, or identity for VLM runs that have none.
        action_spec, device, dtype: as in `import_openvla_oft`.

    Returns:
        The policy in eval mode.

    Raises:
        FileNotFoundError, ValueError, TypeError: as in `import_openvla_oft`, naming the file and key.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f'Run folder {str(run_dir)!r} does not exist')
    config = VLA_PRESETS.get(config)() if isinstance(config, str) else config
    _check_run_config(require_file(run_dir / 'config.json', 'Prismatic run config'), config)
    stats_path = run_dir / 'dataset_statistics.json'
    if norm_stats is None and stats_path.is_file():
        norm_stats = NormStats.from_dataset_statistics(json.loads(stats_path.read_text()), unnorm_key, str(stats_path))
    path = _checkpoint_file(run_dir, checkpoint)
    modules = _read_modules(path)

    foreign = ForeignState(path)
    foreign.add_tensors(modules['projector'], path, 'projector.')
    foreign.add_tensors(modules['llm_backbone'], path, 'llm_backbone.')
    if isinstance(modules.get('vision_backbone'), dict):
        foreign.add_tensors(modules['vision_backbone'], path, 'vision_backbone.')
        if timm_weights is not None:
            logger.warning('%s has vision weights; timm_weights are ignored', path)
    elif timm_weights is not None:
        _add_timm_file(foreign, Path(timm_weights[0]), _DINO)
        _add_timm_file(foreign, Path(timm_weights[1]), _SIGLIP)
    else:
        raise FileNotFoundError(f"{path}: no 'model.vision_backbone' (a VLM-stage checkpoint); pass "
                                'timm_weights=(<vit_large_patch14_reg4_dinov2.lvd142m file>, '
                                '<vit_so400m_patch14_siglip_224 file>)')

    if tokenizer is not None:
        config = config.replace(tokenizer=str(tokenizer))
    policy = build_empty(config, load_tokenizer(config.tokenizer), norm_stats, action_spec)
    tensors = _assemble.vision_tensors(policy, foreign, _DINO, _SIGLIP, 'gamma')
    tensors.update(_assemble.projector_tensors(policy, foreign, _PROJECTOR))
    tensors.update(_assemble.llm_tensors(policy, foreign, _LLM))
    foreign.check_all_used(ignore_prefixes=(_SIGLIP + SIGLIP_UNUSED_PREFIX,))
    fresh = [n for n in ('action_head', 'proprio_projector') if getattr(policy, n) is not None]
    fresh_keys = _assemble.add_fresh_modules(policy, fresh)
    return _assemble.finish(policy, tensors, str(path), fresh_keys, device, dtype)


def export_prismatic(policy: VLAPolicy) -> dict[str, dict[str, torch.Tensor]]:
    """Our weights as Prismatic's `{"vision_backbone": .., "projector": .., "llm_backbone": ..}` module dicts.

    Raises:
        ValueError: for dual-encoder policies.
    """
    if policy.config.vision.dual_encoder:
        raise ValueError('A dual-encoder policy has no Prismatic layout')
    cfg, state = policy.config, policy.state_dict()
    vision = export_with_rules(dinov2_rules(cfg.vision.dino.num_layers, 'gamma'), state,
                               'vision_backbone.featurizer.', 'dino_featurizer.')
    vision.update(export_with_rules(siglip_rules(cfg.vision.siglip.num_layers), state,
                                    'vision_backbone.fused_featurizer.', 'siglip_featurizer.'))
    projector = {f'projector.{i}.{p}': state[f'projector.fc{n}.{p}'].contiguous()
                 for n, i in ((1, 0), (2, 2), (3, 4)) for p in ('weight', 'bias')}
    llm = {'llm.' + k[len('language_model.'):]: v.contiguous() for k, v in state.items()
           if k.startswith('language_model.')}
    return {'vision_backbone': vision, 'projector': projector, 'llm_backbone': llm}
