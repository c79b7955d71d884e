"""Tensors of a foreign checkpoint, read lazily, each remembering its file, so every error names file and key.

`ForeignState.take(key, shape)` is the only way importers read a tensor: it raises ValueError for a missing key or a
wrong shape and TypeError for a non-floating dtype, each naming the file and the key; `check_all_used` turns keys
the importer never read into an "unexpected key" error. Safetensors files are opened lazily (memory stays at about
one model); `.pt` files are loaded with `torch.load(weights_only=True, mmap=True)`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

__all__ = ['ForeignState', 'load_torch_file', 'latest_file']

logger = logging.getLogger(__name__)


def load_torch_file(path: Path) -> object:
    """`torch.load` a checkpoint safely (tensors and plain containers only)."""
    if not path.is_file():
        raise FileNotFoundError(f'Missing checkpoint file {str(path)!r}')
    try:
        return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except RuntimeError:  # files from the legacy (non-zip) serializer cannot be memory-mapped
        return torch.load(path, map_location='cpu', weights_only=True)


def latest_file(folder: Path, pattern: str) -> Path | None:
    """The file matching `pattern` (a glob with one '*' holding a step number) with the highest step, or None."""
    def step(path: Path) -> int:
        digits = ''.join(c if c.isdigit() else ' ' for c in path.name).split()
        return int(digits[0]) if digits else -1
    matches = sorted(folder.glob(pattern), key=step)
    return matches[-1] if matches else None


class ForeignState:
    """Foreign tensors by key, with their files.

    Args:
        default_file: the file blamed when a key is missing altogether (e.g. the safetensors index).
    """

    def __init__(self, default_file: str | Path) -> None:
        self.default_file = str(default_file)
        self._file: dict[str, str] = {}
        self._load: dict[str, Callable[[], torch.Tensor]] = {}
        self._delta: dict[str, torch.Tensor] = {}
        self._delta_file: dict[str, str] = {}
        self._used: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self._load

    def keys(self) -> list[str]:
        return list(self._load)

    def add_tensors(self, tensors: dict[str, torch.Tensor], file: str | Path, prefix: str = '',
                    strip_prefix: str = '') -> None:
        """Register in-memory tensors as `prefix + key` (with `strip_prefix` removed from each key if present)."""
        for key, value in tensors.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f'{file}: entry {key!r} is a {type(value).__name__}, not a tensor')
            name = prefix + (key[len(strip_prefix):] if strip_prefix and key.startswith(strip_prefix) else key)
            self._file[name] = str(file)
            self._load[name] = lambda value=value: value

    def add_safetensors(self, path: Path, prefix: str = '') -> None:
        """Register every tensor of one safetensors file (read on `take`)."""
        if not path.is_file():
            raise FileNotFoundError(f'Missing checkpoint file {str(path)!r}')
        handle = safe_open(str(path), framework='pt')
        for key in handle.keys():
            self._file[prefix + key] = str(path)
            self._load[prefix + key] = lambda key=key: handle.get_tensor(key)

    def add_sharded_safetensors(self, index_path: Path) -> None:
        """Register the shards named by a `model.safetensors.index.json` weight map."""
        if not index_path.is_file():
            raise FileNotFoundError(f'Missing checkpoint file {str(index_path)!r}')
        weight_map = json.loads(index_path.read_text()).get('weight_map')
        if not isinstance(weight_map, dict):
            raise ValueError(f'{str(index_path)!r} has no "weight_map"')
        for shard in sorted(set(weight_map.values())):
            shard_path = index_path.parent / shard
            if not shard_path.is_file():
                raise FileNotFoundError(f'Missing checkpoint file {str(shard_path)!r} (listed in {index_path.name})')
            handle = safe_open(str(shard_path), framework='pt')
            present = set(handle.keys())
            for key in (k for k, v in weight_map.items() if v == shard):
                if key not in present:
                    raise ValueError(f'{shard_path}: missing key {key!r} (listed in {index_path.name})')
            for key in present:
                self._file[key] = str(shard_path)
                self._load[key] = lambda key=key, handle=handle: handle.get_tensor(key)

    def take(self, key: str, shape: Iterable[int]) -> torch.Tensor:
        """The tensor `key`, checked to be floating-point with `shape` (plus any merged LoRA delta)."""
        if key not in self._load:
            raise ValueError(f'{self.default_file}: missing key {key!r}')
        value = self._load[key]()
        file, shape = self._file[key], tuple(shape)
        if not value.is_floating_point():
            raise TypeError(f'{file}: key {key!r} has dtype {value.dtype}; expected a floating-point tensor')
        if tuple(value.shape) != shape:
            raise ValueError(f'{file}: key {key!r} has shape {tuple(value.shape)}, but this model needs {shape}; '
                             'is the config right for this checkpoint?')
        if key in self._delta:
            delta = self._delta[key]
            if tuple(delta.shape) != shape:
                raise ValueError(f'{self._delta_file[key]}: LoRA update for {key!r} has shape {tuple(delta.shape)}, '
                                 f'the weight has {shape}')
            value = (value.float() + delta).to(value.dtype)
        self._used.add(key)
        return value

    def skip(self, key: str) -> None:
        """Mark `key` as deliberately unused (e.g. a tied lm_head)."""
        self._used.add(key)

    def check_all_used(self, ignore_prefixes: Iterable[str] = ()) -> None:
        """ValueError naming the file and the first key the import never read (outside `ignore_prefixes`)."""
        prefixes = tuple(ignore_prefixes)
        unused = [k for k in self._load if k not in self._used and not k.startswith(prefixes)]
        if unused:
            more = f' (and {len(unused) - 1} more)' if len(unused) > 1 else ''
            raise ValueError(f'{self._file[unused[0]]}: unexpected key {unused[0]!r}{more}; this model has no place '
                             'for it (a FiLM or other unsupported variant?)')

    def merge_lora(self, adapter_dir: Path) -> int:
        """Add a PEFT LoRA adapter's ΔW = scale·B·A to the base weights it targets; returns the number merged.

        `adapter_model.safetensors` keys are `base_model.model.<module>.lora_{A,B}.weight`; scale is
        lora_alpha / r (or lora_alpha / sqrt(r) with use_rslora).
        """
        config_path = adapter_dir / 'adapter_config.json'
        weights_path = adapter_dir / 'adapter_model.safetensors'
        for path in (config_path, weights_path):
            if not path.is_file():
                raise FileNotFoundError(f'Missing LoRA adapter file {str(path)!r}')
        config = json.loads(config_path.read_text())
        rank, alpha = int(config['r']), float(config['lora_alpha'])
        scale = alpha / rank ** 0.5 if config.get('use_rslora') else alpha / rank
        tensors = load_file(weights_path)
        merged = 0
        for key in sorted(tensors):
            if not key.endswith('.lora_A.weight'):
                if not key.endswith('.lora_B.weight'):
                    raise ValueError(f'{weights_path}: unsupported adapter key {key!r} (only lora_A/lora_B of Linear)')
                continue
            module = key[:-len('.lora_A.weight')].removeprefix('base_model.model.')
            b_key = key.replace('.lora_A.', '.lora_B.')
            if b_key not in tensors:
                raise ValueError(f'{weights_path}: key {key!r} has no matching {b_key!r}')
            target = module + '.weight'
            if target not in self._load:
                raise ValueError(f'{weights_path}: key {key!r} targets {target!r}, which the checkpoint lacks')
            delta = scale * (tensors[b_key].float() @ tensors[key].float())
            self._delta[target] = self._delta.get(target, 0) + delta
            self._delta_file[target] = str(weights_path)
            merged += 1
        logger.info('Merged %d LoRA adapters from %s (scale %.4g)', merged, adapter_dir, scale)
        return merged
