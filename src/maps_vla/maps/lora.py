"""MAPS on LoRA factors (OpenVLA-OFT recipe, maps_spd.md §2.4).

`apply_lora` wraps the model with peft LoRA on every linear layer of the pretrained stack (rank r, alpha 2r,
dropout 0, Gaussian init: A ~ N(0, 1/r), B = 0); the new modules (action head, proprio projector) stay fully
trainable as peft `modules_to_save`, and the frozen dual-encoder copy is left alone.
`lora_param_groups` then schedules the LoRA factor tensors A and B separately, each with the λ of the block of the
layer it wraps (names carry the `base_model.model.` prefix, which the stack recognition strips).

Anchor modes, i.e. what SPD pulls the factors back toward:
- `init` (the official MAPS code): anchors are the factors at initialisation, so B is pulled toward B₀ = 0 and
  A toward its random Gaussian init A₀ (not toward 0). This is the optimizer's `anchor='copy'` taken right after
  `apply_lora`, before any step.
- `zero` (the SPD paper's PEFT recipe, `pre=None`): both factors are pulled toward 0, which regularises the
  factor norms ‖A‖, ‖B‖ and stores no anchor (optimizer `anchor='zero'`).
Both compute SPD's condition and ratio per factor tensor, never on ΔW = BA.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from torch import nn

from maps_vla.maps.param_groups import StackSpec, maps_param_groups
from maps_vla.maps.stacks import DEFAULT_NEW_MODULES, FROZEN_PREFIXES, is_under, strip_wrappers

__all__ = ['LORA_ANCHOR_MODES', 'apply_lora', 'is_lora_factor', 'lora_param_groups', 'lora_target_modules']

logger = logging.getLogger(__name__)

# LoRA anchor mode -> the optimizer's `anchor` argument
LORA_ANCHOR_MODES: dict[str, str] = {'init': 'copy', 'zero': 'zero'}


def is_lora_factor(name: str) -> bool:
    """Whether parameter `name` is a LoRA A or B factor (`...lora_A.<adapter>.weight`)."""
    return '.lora_A.' in name or '.lora_B.' in name


def lora_target_modules(model: nn.Module, *, new_modules: Sequence[str] = DEFAULT_NEW_MODULES,
                        exclude: Sequence[str] = FROZEN_PREFIXES) -> list[str]:
    """Names of the linear layers LoRA wraps: peft's 'all-linear' minus the new heads and the frozen copy.

    Like peft's 'all-linear', the output layer (`lm_head`, or a sub-model's `get_output_embeddings()`) is left out;
    so are the `out_proj` layers inside `nn.MultiheadAttention` (which reads their weight directly, bypassing LoRA),
    and layers the model itself froze: the VLA's last ViT blocks never run, so their factors would get no gradient
    (DDP then stops on unused parameters).

    Raises:
        ValueError: no linear layer is left.
    """
    skip = {id(sub) for mha in model.modules() if isinstance(mha, nn.MultiheadAttention) for sub in mha.modules()}
    for module in model.modules():
        get_out = getattr(module, 'get_output_embeddings', None)
        if module is not model and callable(get_out) and isinstance(out := get_out(), nn.Module):
            skip.add(id(out))
    targets = []
    for name, module in model.named_modules():
        bare = strip_wrappers(name)
        if (not isinstance(module, nn.Linear) or not module.weight.requires_grad or id(module) in skip
                or bare.split('.')[-1] == 'lm_head' or any(is_under(bare, p) for p in new_modules)
                or any(bare.startswith(p) for p in exclude)):
            continue
        targets.append(name)
    if not targets:
        raise ValueError('no linear layer to wrap with LoRA outside the new modules')
    return targets


def apply_lora(model: nn.Module, rank: int = 32, *, alpha: float | None = None, dropout: float = 0.0,
               new_modules: Sequence[str] = DEFAULT_NEW_MODULES) -> nn.Module:
    """Wrap `model` with peft LoRA as the official OpenVLA-OFT + MAPS runs do.

    Args:
        model: the pretrained model (weights loaded).
        rank: LoRA rank r (32 in the paper).
        alpha: LoRA alpha (default 2r).
        dropout: LoRA dropout (0 in the paper).
        new_modules: modules kept fully trainable (peft `modules_to_save`).

    Returns:
        The `peft.PeftModel`; base weights frozen, LoRA factors and new modules trainable. Its parameter names
        start with `base_model.model.`.

    Raises:
        ValueError: rank < 1.
    """
    from peft import LoraConfig, get_peft_model

    if rank < 1:
        raise ValueError(f'LoRA rank must be >= 1, got {rank!r}')
    present = [p for p in new_modules if any(is_under(strip_wrappers(n), p) for n, _ in model.named_modules())]
    config = LoraConfig(r=rank, lora_alpha=2 * rank if alpha is None else alpha, lora_dropout=dropout,
                        target_modules=lora_target_modules(model, new_modules=new_modules),
                        init_lora_weights='gaussian', modules_to_save=present or None)
    peft_model = get_peft_model(model, config)
    n_train = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    logger.info('LoRA r=%d on %d linear layers; %s trainable parameters', rank, len(config.target_modules),
                f'{n_train:,}')
    return peft_model


def lora_param_groups(model: nn.Module, lambda_max: float, schedule: str = 'linear', *, anchor: str = 'init',
                      stack: StackSpec = None, new_modules: Sequence[str] = DEFAULT_NEW_MODULES) -> list[dict[str, Any]]:
    """MAPS groups over the LoRA factors (A and B as separate tensors) plus the new modules at λ = 0.

    Each group carries `SPDAdam`'s per-group 'anchor' (`LORA_ANCHOR_MODES[anchor]` for λ > 0, 'zero' for λ = 0).
    Build the optimizer right after `apply_lora`, so that `init` anchors are the factors at initialisation.

    Args:
        model: a peft-wrapped model (`apply_lora`).
        lambda_max, schedule, stack, new_modules: as in `maps_param_groups`.
        anchor: 'init' (official code: θ₀ = the factors now) or 'zero' (SPD paper: θ₀ = 0).

    Returns:
        The groups of `maps_param_groups`.

    Raises:
        ValueError: unknown anchor mode, the model has no trainable LoRA factor, or trainable tensors that are
            neither factors nor part of a new module (a base weight left trainable).
    """
    if anchor not in LORA_ANCHOR_MODES:
        raise ValueError(f'LoRA anchor must be one of {sorted(LORA_ANCHOR_MODES)}, got {anchor!r}')
    groups = maps_param_groups(model, lambda_max, schedule, stack=stack, new_modules=new_modules,
                               anchor=LORA_ANCHOR_MODES[anchor])
    names = [n for g in groups for n in g['param_names']]
    if not any(is_lora_factor(n) for n in names):
        raise ValueError('lora_param_groups: no trainable LoRA factor (lora_A/lora_B); call apply_lora first')
    stray = [n for g in groups if g['backbone'] not in new_modules for n in g['param_names'] if not is_lora_factor(n)]
    if stray:
        raise ValueError(f'{len(stray)} trainable pretrained tensors are not LoRA factors, e.g. {stray[:3]!r}; '
                         'LoRA expects the base weights frozen')
    return groups
