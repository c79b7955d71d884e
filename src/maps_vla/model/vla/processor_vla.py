"""Everything between raw observations and model tensors: images, prompts, action/state normalization.

Images: uint8 or [0, 1] float RGB -> optional centred crop -> bicubic (antialiased) resize to the ViT size ->
normalized twice, once with the DINOv2 statistics and once with SigLIP's, stacked on channels: (.., 6, S, S), the
layout of OpenVLA's `pixel_values`. The DINOv2 statistics are configurable because the released HF checkpoints were
trained with the bf16-rounded ImageNet values (see `IMAGENET_MEAN_BF16`) and native Prismatic ones with exact values.

Actions and proprio use OpenVLA's BOUNDS_Q99: [q01, q99] -> [-1, 1], clipped; dimensions with mask False (e.g. the
gripper) pass through unchanged. Stats are saved as `normalization.json` beside the weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from maps_vla.model.vla.configuration_vla import VLAConfig

__all__ = ['NormStats', 'VLAProcessor']

_EPS = 1e-8  # OpenVLA-OFT adds it to (q99 - q01) to survive constant dimensions


def _floats(values: Any, what: str) -> tuple[float, ...]:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError(f'{what} must be finite, got {values!r}')
    return tuple(float(v) for v in array)


@dataclasses.dataclass(frozen=True)
class NormStats:
    """Quantile statistics of actions (and proprio state) for BOUNDS_Q99 normalization."""

    action_q01: tuple[float, ...]  # per action dimension, 1st percentile
    action_q99: tuple[float, ...]  # per action dimension, 99th percentile
    action_mask: tuple[bool, ...] = ()  # True: normalize this dimension; () = all True
    state_q01: tuple[float, ...] = ()  # per state dimension; () when the policy uses no state
    state_q99: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, 'action_q01', _floats(self.action_q01, 'NormStats.action_q01'))
        object.__setattr__(self, 'action_q99', _floats(self.action_q99, 'NormStats.action_q99'))
        object.__setattr__(self, 'state_q01', _floats(self.state_q01, 'NormStats.state_q01'))
        object.__setattr__(self, 'state_q99', _floats(self.state_q99, 'NormStats.state_q99'))
        mask = tuple(bool(m) for m in self.action_mask) or (True,) * len(self.action_q01)
        object.__setattr__(self, 'action_mask', mask)
        if not len(self.action_q01) == len(self.action_q99) == len(mask):
            raise ValueError(f'NormStats: action q01/q99/mask lengths differ: {len(self.action_q01)}, '
                             f'{len(self.action_q99)}, {len(mask)}')
        if len(self.state_q01) != len(self.state_q99):
            raise ValueError(f'NormStats: state q01/q99 lengths differ: {len(self.state_q01)}, {len(self.state_q99)}')
        for name in ('action', 'state'):
            low, high = np.array(getattr(self, f'{name}_q01')), np.array(getattr(self, f'{name}_q99'))
            if np.any(high < low):
                raise ValueError(f'NormStats: {name} q99 < q01 in dimensions {np.flatnonzero(high < low).tolist()}')

    @classmethod
    def identity(cls, action_dim: int, state_dim: int = 0) -> NormStats:
        """Stats that map [-1, 1] onto itself (for untrained models)."""
        return cls((-1.0,) * action_dim, (1.0,) * action_dim, (), (-1.0,) * state_dim, (1.0,) * state_dim)

    @classmethod
    def from_dataset_statistics(cls, stats: dict[str, Any], unnorm_key: str | None = None,
                                source: str = 'dataset_statistics.json') -> NormStats:
        """From OpenVLA/Prismatic `dataset_statistics.json`: {key: {action: {q01, q99, mask}, proprio: {...}}}.

        Raises:
            ValueError: several datasets and no `unnorm_key`, an unknown key, or missing q01/q99 entries.
        """
        if unnorm_key is None:
            if len(stats) != 1:
                raise ValueError(f'{source} holds several datasets {sorted(stats)}; pass unnorm_key=<one of them>')
            unnorm_key = next(iter(stats))
        if unnorm_key not in stats:
            raise ValueError(f'{source}: unnorm_key {unnorm_key!r} not found; known: {sorted(stats)}')
        entry = stats[unnorm_key]
        try:
            action = entry['action']
            q01, q99 = action['q01'], action['q99']
        except (KeyError, TypeError):
            raise ValueError(f'{source}: {unnorm_key!r} needs action.q01 and action.q99') from None
        proprio = entry.get('proprio') or {}
        return cls(q01, q99, action.get('mask', ()), proprio.get('q01', ()), proprio.get('q99', ()))

    def to_json(self) -> dict[str, Any]:
        return {'action': {'q01': list(self.action_q01), 'q99': list(self.action_q99), 'mask': list(self.action_mask)},
                'state': {'q01': list(self.state_q01), 'q99': list(self.state_q99)}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NormStats:
        state = data.get('state') or {}
        return cls(data['action']['q01'], data['action']['q99'], data['action'].get('mask', ()),
                   state.get('q01', ()), state.get('q99', ()))

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike) -> NormStats:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'Normalization file {str(path)!r} does not exist')
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f'{str(path)!r} is not a valid normalization file: {exc}') from None


def _as_tensor(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)


class VLAProcessor:
    """Turns observations into model inputs and model outputs back into actions.

    Args:
        config: the policy config (image size, crop, per-ViT statistics, prompt template).
        tokenizer: the text tokenizer of the LLM.
        norm_stats: action/state quantiles; None gives identity stats.
    """

    def __init__(self, config: VLAConfig, tokenizer: PreTrainedTokenizerBase, norm_stats: NormStats | None = None):
        self.config = config
        self.tokenizer = tokenizer
        self.norm_stats = norm_stats or NormStats.identity(config.action_dim, config.proprio_dim)
        if len(self.norm_stats.action_q01) != config.action_dim:
            raise ValueError(f'NormStats has {len(self.norm_stats.action_q01)} action dims, config.action_dim is '
                             f'{config.action_dim}')
        if config.proprio_dim and len(self.norm_stats.state_q01) != config.proprio_dim:
            raise ValueError(f'NormStats has {len(self.norm_stats.state_q01)} state dims, config.proprio_dim is '
                             f'{config.proprio_dim}')

    # --- images ---------------------------------------------------------------------------------------------
    def preprocess_images(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """RGB views -> stacked DINOv2/SigLIP-normalized pixels.

        Args:
            images: (..., 3, H, W) uint8 or float in [0, 1] (tensor or numpy); (..., 6, S, S) float is taken as
                already preprocessed and returned unchanged.

        Returns:
            (..., 6, S, S) float32 with S = config.vision.image_size.
        """
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
        size = self.config.vision.image_size
        if images.shape[-3] == 6 and images.is_floating_point():
            if images.shape[-2:] != (size, size):
                raise ValueError(f'Preprocessed images must be {size}x{size}, got {tuple(images.shape)}')
            return images
        if images.ndim < 3 or images.shape[-3] != 3:
            raise ValueError(f'images must be (..., 3, H, W) RGB, got shape {tuple(images.shape)}')
        lead = images.shape[:-3]
        x = images.reshape(-1, *images.shape[-3:])
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        x = self._crop_resize(x, size)
        vision = self.config.vision
        dino = (x - _as_tensor(vision.dino.mean, x)[:, None, None]) / _as_tensor(vision.dino.std, x)[:, None, None]
        sig = (x - _as_tensor(vision.siglip.mean, x)[:, None, None]) / _as_tensor(vision.siglip.std, x)[:, None, None]
        return torch.cat([dino, sig], 1).reshape(*lead, 6, size, size)

    def _crop_resize(self, x: torch.Tensor, size: int) -> torch.Tensor:
        scale = self.config.vision.center_crop_scale
        if scale < 1.0:  # centred box of `scale` area (OpenVLA eval: sqrt(0.9) of each side)
            height, width = x.shape[-2:]
            crop_h, crop_w = max(1, round(height * math.sqrt(scale))), max(1, round(width * math.sqrt(scale)))
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            x = x[..., top:top + crop_h, left:left + crop_w]
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode='bicubic', align_corners=False, antialias=True).clamp(0, 1)
        return x

    # --- text -----------------------------------------------------------------------------------------------
    def build_prompt(self, instruction: str) -> str:
        """The robot prompt, e.g. 'In: What action should the robot take to pick up the cup?\\nOut:'."""
        instruction = instruction.strip().rstrip('.?!')
        if self.config.lowercase_instruction:
            instruction = instruction.lower()
        return self.config.prompt_template.format(instruction=instruction)

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> right-padded ids and mask, each (B, L), with the tokenizer's special tokens (e.g. BOS)."""
        ids = [self.tokenizer(text).input_ids for text in texts]
        if any(len(row) == 0 for row in ids):
            raise ValueError(f'A prompt tokenized to nothing: {texts!r}')
        return self.pad(ids)

    def pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad id lists with the pad id: (ids (B, L), mask (B, L))."""
        length = max(len(row) for row in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), length), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, :len(row)] = 1
        return ids, mask

    # --- actions and state ----------------------------------------------------------------------------------
    def normalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Raw actions (..., A) -> [-1, 1] (masked dimensions unchanged)."""
        s = self.norm_stats
        return self._normalize(actions, s.action_q01, s.action_q99, s.action_mask)

    def unnormalize_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """[-1, 1] actions (..., A) -> raw units: 0.5 (a + 1)(q99 - q01 + 1e-8) + q01 where mask is True."""
        s = self.norm_stats
        q01, q99 = _as_tensor(s.action_q01, actions), _as_tensor(s.action_q99, actions)
        mask = torch.tensor(s.action_mask, device=actions.device)
        return torch.where(mask, 0.5 * (actions + 1) * (q99 - q01 + _EPS) + q01, actions)

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        """Raw proprio (..., S) -> [-1, 1], clipped (OpenVLA-OFT `normalize_proprio`)."""
        s = self.norm_stats
        return self._normalize(state, s.state_q01, s.state_q99, (True,) * len(s.state_q01))

    @staticmethod
    def _normalize(x: torch.Tensor, q01: tuple[float, ...], q99: tuple[float, ...],
                   mask: tuple[bool, ...]) -> torch.Tensor:
        if x.shape[-1] != len(q01):
            raise ValueError(f'Expected {len(q01)} dimensions in the last axis, got shape {tuple(x.shape)}')
        low, high = _as_tensor(q01, x), _as_tensor(q99, x)
        scaled = (2 * (x - low) / (high - low + _EPS) - 1).clamp(-1, 1)
        return torch.where(torch.tensor(mask, device=x.device), scaled, x)
