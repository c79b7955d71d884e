"""Our checkpoint folder (HF style) and the checked tensor loading shared with the importers.

Folder layout written by `save_pretrained`:
    config.json          {"format": "maps_vla.vla", "format_version": 1, "config": <VLAConfig as a dict>,
                          "files": {"model.safetensors": {"sha256": <hex digest>, "bytes": <size>}}}
    model.safetensors    the full state dict (tied lm_head omitted; the frozen dual-encoder copy included)
    normalization.json   q01/q99 (+ mask) of actions and state (`NormStats`)
    action_spec.json     `maps_vla.policy.ActionSpec` fields
    tokenizer files      whatever the tokenizer's `save_pretrained` writes (tokenizer.json, tokenizer_config.json, ..)

Every load problem (missing file, missing/unexpected key, shape mismatch, non-floating dtype, unparsable JSON, a
damaged safetensors header) raises one error that names the file (and the key); floating tensors of another
precision are cast. The weights are checked against the sha256 recorded at save time before they are parsed, so a
truncated or bit-flipped weight file is a `CheckpointError`, not a silently wrong policy; a checkpoint saved before
hashes were recorded loads with a debug note.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors.torch import load_file, save_file
from torch import nn

from maps_vla.config import from_dict, to_dict
from maps_vla.model.vla.configuration_vla import MODEL_TYPE, VLAConfig
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.model.vla.processor_vla import NormStats
from maps_vla.model.vla.tokenization_vla import load_tokenizer
from maps_vla.policy import ActionSpec

__all__ = ['save_pretrained', 'load_pretrained', 'read_config', 'load_tensors_into', 'build_empty', 'finalize_loaded',
           'require_file', 'checkpoint_folder', 'file_sha256', 'pin_weights', 'CheckpointError', 'CONFIG_FILE',
           'WEIGHTS_FILE', 'NORMALIZATION_FILE', 'ACTION_SPEC_FILE']

logger = logging.getLogger(__name__)

CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'
NORMALIZATION_FILE = 'normalization.json'
ACTION_SPEC_FILE = 'action_spec.json'
_FORMAT = 'maps_vla.vla'
_TIED_LM_HEAD = 'language_model.lm_head.weight'


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated or does not match its recorded hash; the message names the file."""


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f'{str(path)!r} is not valid JSON ({exc}); the file is truncated or corrupt: '
                              're-copy or re-save the checkpoint') from None


def _verify(directory: Path, payload: dict, name: str) -> None:
    """Check `name` against the hash config.json recorded for it (a debug note when none was recorded)."""
    path = directory / name
    recorded = (payload.get('files') or {}).get(name)
    if not recorded:
        logger.debug('%s has no recorded sha256 (saved before hashes were recorded); not verified', path)
        return
    size = path.stat().st_size
    if 'bytes' in recorded and size != recorded['bytes']:
        raise CheckpointError(f'{str(path)!r} has {size} bytes, but {CONFIG_FILE} recorded {recorded["bytes"]} at '
                              'save time: the file is truncated or was replaced; re-copy or re-save the checkpoint')
    actual = file_sha256(path)
    if actual != recorded.get('sha256'):
        raise CheckpointError(f'{str(path)!r} does not match the sha256 recorded in {CONFIG_FILE} (recorded '
                              f'{recorded.get("sha256")}, found {actual}): the file is corrupt or was changed after '
                              'saving; re-copy or re-save the checkpoint')


def checkpoint_folder(value: str, option: str, keywords: str) -> Path:
    """`value` as a checkpoint folder (one holding config.json), else FileNotFoundError naming the config `option`
    and the `keywords` it takes besides a folder."""
    path = Path(value)
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f'{option} {value!r} is not a checkpoint folder (no {CONFIG_FILE}); use {keywords} '
                                'or a policy folder written by maps-vla train or maps-vla pretrain (out/train/policy)')
    return path


def pin_weights(record: Path, folder: Path) -> str:
    """The sha256 of `folder`'s weights, written to the JSON file `record` on first use; a later call with other
    weights raises ValueError naming `record`'s folder, so a resumed run never mixes two starting points."""
    digest = file_sha256(folder / WEIGHTS_FILE)
    if record.is_file():
        old = json.loads(record.read_text())
        if old['sha256'] != digest:
            raise ValueError(f'{str(record.parent)!r} holds runs started from other weights ({old["path"]}, sha256 '
                             f'{old["sha256"][:12]}; now {str(folder)!r}, {digest[:12]}); choose another out folder '
                             'or delete it')
        return digest
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix('.tmp')
    tmp.write_text(json.dumps({'path': str(folder), 'sha256': digest}, indent=1))
    tmp.replace(record)
    return digest


def require_file(path: Path, what: str = '') -> Path:
    """`path` if it is a file, else FileNotFoundError naming it (and what it is for)."""
    if not path.is_file():
        suffix = f' ({what})' if what else ''
        raise FileNotFoundError(f'Missing checkpoint file {str(path)!r}{suffix}')
    return path


def _skipped_keys(policy: VLAPolicy) -> set[str]:
    return {_TIED_LM_HEAD} if policy.config.llm.tie_word_embeddings else set()


def save_pretrained(policy: VLAPolicy, directory: str | os.PathLike) -> Path:
    """Write `policy` as our checkpoint folder (see module docstring); returns the folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    skipped = _skipped_keys(policy)
    state = {k: v.detach().contiguous() for k, v in policy.state_dict().items() if k not in skipped}
    save_file(state, directory / WEIGHTS_FILE, metadata={'format': 'pt'})
    weights = directory / WEIGHTS_FILE
    payload = {'model_type': MODEL_TYPE, 'format': _FORMAT, 'format_version': 1, 'config': to_dict(policy.config),
               'files': {WEIGHTS_FILE: {'sha256': file_sha256(weights), 'bytes': weights.stat().st_size}}}
    (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2))
    policy.norm_stats.save(directory / NORMALIZATION_FILE)
    (directory / ACTION_SPEC_FILE).write_text(json.dumps(dataclasses.asdict(policy.action_spec), indent=2))
    policy.tokenizer.save_pretrained(directory)
    logger.info('Saved %s policy to %s', policy.config.name, directory)
    return directory


def build_empty(config: VLAConfig, tokenizer=None, norm_stats: NormStats | None = None,
                action_spec: ActionSpec | None = None) -> VLAPolicy:
    """A policy whose parameters are on the meta device (no random init); fill it with `load_tensors_into`."""
    with init_empty_weights(include_buffers=False):
        return VLAPolicy(config, tokenizer=tokenizer, norm_stats=norm_stats, action_spec=action_spec)


def load_tensors_into(module: nn.Module, tensors: dict[str, torch.Tensor], origins: dict[str, str], *,
                      default_origin: str, allow_missing: Iterable[str] = ()) -> None:
    """Check `tensors` against `module.state_dict()` and assign them (works on meta-device modules).

    Args:
        module: the target (its state-dict keys define what is needed).
        tensors: our key -> tensor.
        origins: our key -> "file: foreign key" text for error messages (defaults to `default_origin`).
        default_origin: the file blamed for a missing key.
        allow_missing: keys that may be absent (they keep their current value; must not be on meta).

    Raises:
        ValueError: a missing or unexpected key, or a shape mismatch (the first problem, with a count of others).
        TypeError: a non-floating tensor where a floating parameter is expected.
    """
    expected = module.state_dict()
    allow = set(allow_missing)
    problems: list[Exception] = []
    for key, ref in expected.items():
        where = origins.get(key, f'{default_origin}: {key!r}')
        if key not in tensors:
            if key not in allow:
                problems.append(ValueError(f'{default_origin}: missing key {key!r}'))
            continue
        value = tensors[key]
        if ref.is_floating_point() and not value.is_floating_point():
            problems.append(TypeError(f'{where}: dtype {value.dtype} where a floating-point tensor is expected '
                                      f'(for {key!r})'))
        elif tuple(value.shape) != tuple(ref.shape):
            problems.append(ValueError(f'{where}: shape {tuple(value.shape)} does not match the model\'s '
                                       f'{tuple(ref.shape)} for {key!r}; is the config right for this checkpoint?'))
    for key in tensors:
        if key not in expected:
            problems.append(ValueError(f'{origins.get(key, default_origin)}: unexpected key {key!r} for this model'))
    if problems:
        first = problems[0]
        if len(problems) > 1:
            raise type(first)(f'{first} (and {len(problems) - 1} more problem(s))')
        raise first
    state = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    module.load_state_dict(state, strict=False, assign=True)


def finalize_loaded(policy: VLAPolicy, device: str | torch.device, dtype: torch.dtype | None) -> VLAPolicy:
    """Re-tie embeddings, check nothing is left on the meta device, move/cast, and switch to eval mode."""
    if policy.config.llm.tie_word_embeddings:
        policy.language_model.tie_weights()
    meta = [name for name, p in policy.named_parameters() if p.is_meta]
    if meta:
        raise RuntimeError(f'Parameters left uninitialized after loading: {meta[:5]}')
    policy.to(device=device, dtype=dtype) if dtype is not None else policy.to(device=device)
    return policy.eval()


def _read_config(directory: Path) -> tuple[VLAConfig, dict]:
    """The folder's VLAConfig and the whole config.json payload (with the file hashes)."""
    if not directory.is_dir():
        raise FileNotFoundError(f'Checkpoint folder {str(directory)!r} does not exist')
    config_path = require_file(directory / CONFIG_FILE, 'policy config')
    payload = _read_json(config_path)
    if not isinstance(payload, dict) or payload.get('format') != _FORMAT:
        found = payload.get('format') if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f'{str(config_path)!r} is not a maps_vla checkpoint (format {found!r}); '
                         'use maps_vla.model.importers for OpenVLA-OFT / MiniVLA folders')
    try:
        return from_dict(VLAConfig, payload['config']), payload
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f'{str(config_path)!r}: invalid policy config: {type(exc).__name__}: {exc}') from None


def read_config(directory: str | os.PathLike) -> VLAConfig:
    """A checkpoint folder's VLAConfig alone, without building the model or reading its weights.

    Raises:
        FileNotFoundError / ValueError / CheckpointError: as `load_pretrained` for the folder and its config.json.
    """
    return _read_config(Path(directory))[0]


def load_pretrained(directory: str | os.PathLike, device: str | torch.device = 'cpu',
                    dtype: torch.dtype | None = None) -> VLAPolicy:
    """Load a folder written by `save_pretrained`.

    Args:
        directory: the checkpoint folder.
        device: where to put the model.
        dtype: cast floating parameters to this; None keeps the stored dtype.

    Returns:
        The policy in eval mode.

    Raises:
        FileNotFoundError: a required file is missing (named).
        CheckpointError: a file is unparsable, truncated, or does not match its recorded sha256 (named).
        ValueError/TypeError: a bad config, key, shape or dtype (file and key named).
    """
    directory = Path(directory)
    config, payload = _read_config(directory)
    norm_stats = NormStats.load(require_file(directory / NORMALIZATION_FILE, 'action/state statistics'))
    spec_path = require_file(directory / ACTION_SPEC_FILE, 'action spec')
    spec_data = _read_json(spec_path)
    try:
        action_spec = ActionSpec(**{**spec_data, 'names': tuple(spec_data['names'])})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f'{str(spec_path)!r}: invalid action spec: {type(exc).__name__}: {exc}') from None
    require_file(directory / 'tokenizer_config.json', 'tokenizer')
    try:
        tokenizer = load_tokenizer(directory)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f'{str(directory)!r}: the tokenizer files cannot be loaded: {type(exc).__name__}: '
                              f'{exc}') from None
    weights = require_file(directory / WEIGHTS_FILE, 'weights')
    _verify(directory, payload, WEIGHTS_FILE)
    policy = build_empty(config, tokenizer, norm_stats, action_spec)
    try:
        tensors = load_file(weights)
    except Exception as exc:  # safetensors raises SafetensorError (not a ValueError) for a damaged header or body
        raise CheckpointError(f'{str(weights)!r} is not a readable safetensors file ({type(exc).__name__}: {exc}); '
                              'it is truncated or corrupt: re-copy or re-save the checkpoint') from None
    load_tensors_into(policy, tensors, {}, default_origin=str(weights), allow_missing=_skipped_keys(policy))
    return finalize_loaded(policy, device, dtype)
