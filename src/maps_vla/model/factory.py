"""`make_policy(cfg)`: a VLA policy from a config or a preset name."""

from __future__ import annotations

import contextlib
import os

import torch
from transformers import PreTrainedTokenizerBase

from maps_vla.model.vla.configuration_vla import VLA_PRESETS, VLAConfig
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.model.vla.processor_vla import NormStats
from maps_vla.policy import ActionSpec

__all__ = ['make_policy', 'make_policy_config', 'load_policy']


def make_policy_config(name: str) -> VLAConfig:
    """The preset config `name` ('tiny', 'minivla', 'openvla'); unknown names list the known ones."""
    return VLA_PRESETS.get(name)()


def make_policy(cfg: VLAConfig | str, *, tokenizer: PreTrainedTokenizerBase | None = None,
                norm_stats: NormStats | None = None, action_spec: ActionSpec | None = None,
                device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> VLAPolicy:
    """A randomly initialized policy.

    Args:
        cfg: a `VLAConfig` or a preset name.
        tokenizer, norm_stats, action_spec: see `VLAPolicy`.
        device: build the parameters directly there (saves a CPU copy of large models); None: CPU.
        dtype: cast floating parameters after building.

    Returns:
        The policy (train mode, as built).
    """
    config = make_policy_config(cfg) if isinstance(cfg, str) else cfg
    if not isinstance(config, VLAConfig):
        raise TypeError(f'make_policy needs a VLAConfig or a preset name, got {type(cfg).__name__}')
    with torch.device(device) if device is not None else contextlib.nullcontext():
        policy = VLAPolicy(config, tokenizer=tokenizer, norm_stats=norm_stats, action_spec=action_spec)
    return policy.to(dtype=dtype) if dtype is not None else policy


def load_policy(directory: str | os.PathLike, device: str | torch.device = 'cpu',
                dtype: torch.dtype | None = None) -> VLAPolicy:
    """A trained policy from a maps_vla checkpoint folder, in eval mode (see `VLAPolicy.from_pretrained`)."""
    return VLAPolicy.from_pretrained(directory, device=device, dtype=dtype)
