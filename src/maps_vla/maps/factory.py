"""Fine-tuning method config and `make_optimizer`: MAPS, uniform SPD, full fine-tuning, freezing, L2-SP.

| method | optimizer | extra |
|---|---|---|
| `maps` | `SPDAdam` over `maps_param_groups(schedule)` | - |
| `spd` | `SPDAdam`, uniform λ (`constant` schedule; the paper's "RFT") | - |
| `fft` | `AdamW(weight_decay)` (torch default 0.01, the official baseline) | - |
| `freeze:<p1,p2>` | freeze the presets/prefixes, then `AdamW(weight_decay)` on the rest | - |
| `l2sp` | `Adam` without weight decay | `L2SP` regularizer: add `reg()` to the loss |

With `lora=True` call `prepare_model` first (it wraps the model with LoRA); MAPS/SPD then schedule the LoRA
factors and anchor them as `lora_anchor` says (`lora.py`). SPD anchors are copied when the optimizer is built,
except for λ = 0 groups (biases, new modules, the last LLM layer under `linear`), which never project and keep
no anchor.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from maps_vla.maps.baselines import FREEZE_PRESETS, L2SP, fft_optimizer, freeze
from maps_vla.maps.optimizer import SPDAdam
from maps_vla.maps.lora import LORA_ANCHOR_MODES, apply_lora, is_lora_factor, lora_param_groups
from maps_vla.maps.param_groups import maps_param_groups
from maps_vla.maps.schedules import SCHEDULES
from maps_vla.maps.stacks import DEFAULT_NEW_MODULES
from maps_vla.registry import Registry

__all__ = ['METHODS', 'FinetuneMethodConfig', 'make_optimizer', 'prepare_model']

logger = logging.getLogger(__name__)

_DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
Builder = Callable[['FinetuneMethodConfig', nn.Module, str], tuple[torch.optim.Optimizer, Any]]
METHODS: Registry[Builder] = Registry('fine-tuning method')


@dataclasses.dataclass
class FinetuneMethodConfig:
    """How to fine-tune: the method, its optimizer hyperparameters and the LoRA / anchor options."""

    method: str = 'maps'  # 'maps' | 'spd' | 'fft' | 'freeze:<preset or prefix>,...' | 'l2sp'
    lambda_max: float = 1.0  # MAPS/SPD: largest λ (paper: 0.5 MiniVLA-VQ … 3.2 full-FT MiniVLA-OFT)
    schedule: str = 'linear'  # MAPS λ schedule: 'linear' | 'linear-code' | 'cosine' | 'constant' (spd forces constant)
    lr: float = 5e-5  # learning rate (paper: 5e-5 for the OFT backbones)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    eps: float = 1e-8  # Adam epsilon
    weight_decay: float = 0.01  # AdamW weight decay for 'fft' and 'freeze:*' (torch default, as the official code)
    max_decay: float | None = None  # SPDAdam: cap on λ·r per step (None: uncapped, as the official code)
    l2sp_alpha: float = 0.1  # L2-SP strength toward the pretrained weights
    l2sp_beta: float = 0.01  # L2-SP plain L2 strength on the new modules
    lora: bool = False  # train LoRA factors instead of full weights (OpenVLA-OFT recipe)
    lora_rank: int = 32  # LoRA rank r (alpha = 2r)
    lora_anchor: str = 'init'  # 'init': anchors = factors at init (official code); 'zero': toward 0 (SPD paper)
    anchor_device: str | None = None  # where SPD/L2-SP anchors live (None: with each parameter; 'cpu' saves GPU memory)
    anchor_dtype: str | None = None  # anchor dtype 'float32' | 'bfloat16' | 'float16' (None: the parameter's)
    new_modules: tuple[str, ...] = DEFAULT_NEW_MODULES  # modules without pretrained weights (λ = 0, fully trained)
    stack: tuple[str, ...] | None = None  # explicit ordered module prefixes (None: recognise Prismatic names)

    def __post_init__(self) -> None:
        base, _, arg = self.method.partition(':')
        if base not in METHODS:
            METHODS.get(base)  # raises ValueError with the closest method name
        if base == 'freeze' and not [p for p in arg.split(',') if p.strip()]:
            raise ValueError(f"FinetuneMethodConfig.method={self.method!r}: 'freeze:' needs presets or prefixes, "
                             f'e.g. freeze:dinov2,llm-early (presets: {", ".join(FREEZE_PRESETS)})')
        if base != 'freeze' and arg:
            raise ValueError(f'FinetuneMethodConfig.method={self.method!r}: only freeze takes a ":" argument')
        if self.schedule not in SCHEDULES:
            try:
                SCHEDULES.get(self.schedule)
            except ValueError as err:
                raise ValueError(f'FinetuneMethodConfig.schedule: {err}') from None
        for name in ('lambda_max', 'weight_decay', 'l2sp_alpha', 'l2sp_beta'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'FinetuneMethodConfig.{name} must be >= 0, got {getattr(self, name)!r}')
        if not self.lr > 0:
            raise ValueError(f'FinetuneMethodConfig.lr must be > 0, got {self.lr!r}')
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f'FinetuneMethodConfig.betas must be two numbers in [0, 1), got {self.betas!r}')
        if not self.eps > 0:
            raise ValueError(f'FinetuneMethodConfig.eps must be > 0, got {self.eps!r}')
        if self.max_decay is not None and not self.max_decay > 0:
            raise ValueError(f'FinetuneMethodConfig.max_decay must be > 0 or None, got {self.max_decay!r}')
        if self.lora_rank < 1:
            raise ValueError(f'FinetuneMethodConfig.lora_rank must be >= 1, got {self.lora_rank!r}')
        if self.lora_anchor not in LORA_ANCHOR_MODES:
            raise ValueError(f'FinetuneMethodConfig.lora_anchor must be one of {sorted(LORA_ANCHOR_MODES)}, '
                             f'got {self.lora_anchor!r}')
        if self.anchor_dtype is not None and self.anchor_dtype not in _DTYPES:
            raise ValueError(f'FinetuneMethodConfig.anchor_dtype must be None or one of {sorted(_DTYPES)}, '
                             f'got {self.anchor_dtype!r}')
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        self.new_modules = tuple(self.new_modules)
        self.stack = None if self.stack is None else tuple(self.stack)

    @property
    def torch_anchor_dtype(self) -> torch.dtype | None:
        """`anchor_dtype` as a torch dtype."""
        return None if self.anchor_dtype is None else _DTYPES[self.anchor_dtype]


def prepare_model(cfg: FinetuneMethodConfig, model: nn.Module) -> nn.Module:
    """Apply the model-changing part of the method: LoRA wrapping (`cfg.lora`).

    Returns:
        The model to train (a peft model when `cfg.lora`, else `model` itself).
    """
    if cfg.lora:
        return apply_lora(model, cfg.lora_rank, new_modules=cfg.new_modules)
    return model


def _spd(cfg: FinetuneMethodConfig, model: nn.Module, schedule: str) -> torch.optim.Optimizer:
    stack = list(cfg.stack) if cfg.stack is not None else None
    if cfg.lora:
        groups = lora_param_groups(model, cfg.lambda_max, schedule, anchor=cfg.lora_anchor, stack=stack,
                                   new_modules=cfg.new_modules)
    else:
        groups = maps_param_groups(model, cfg.lambda_max, schedule, stack=stack, new_modules=cfg.new_modules,
                                   anchor='copy')
    return SPDAdam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, anchor_device=cfg.anchor_device,
                   anchor_dtype=cfg.torch_anchor_dtype, max_decay=cfg.max_decay)


@METHODS.register('maps')
def _maps(cfg: FinetuneMethodConfig, model: nn.Module, arg: str) -> tuple[torch.optim.Optimizer, None]:
    return _spd(cfg, model, cfg.schedule), None


@METHODS.register('spd')
def _uniform_spd(cfg: FinetuneMethodConfig, model: nn.Module, arg: str) -> tuple[torch.optim.Optimizer, None]:
    return _spd(cfg, model, 'constant'), None


@METHODS.register('fft')
def _fft(cfg: FinetuneMethodConfig, model: nn.Module, arg: str) -> tuple[torch.optim.Optimizer, None]:
    return fft_optimizer(model, cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay), None


@METHODS.register('freeze')
def _freeze(cfg: FinetuneMethodConfig, model: nn.Module, arg: str) -> tuple[torch.optim.Optimizer, None]:
    stack = list(cfg.stack) if cfg.stack is not None else None
    freeze(model, arg, stack=stack, new_modules=cfg.new_modules)
    return fft_optimizer(model, cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay), None


@METHODS.register('l2sp')
def _l2sp(cfg: FinetuneMethodConfig, model: nn.Module, arg: str) -> tuple[torch.optim.Optimizer, L2SP]:
    stack = list(cfg.stack) if cfg.stack is not None else None
    reg = L2SP(model, cfg.l2sp_alpha, cfg.l2sp_beta, stack=stack, new_modules=cfg.new_modules,
               anchor_device=cfg.anchor_device, anchor_dtype=cfg.torch_anchor_dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=0.0), reg


def make_optimizer(cfg: FinetuneMethodConfig, model: nn.Module) -> tuple[torch.optim.Optimizer, L2SP | None]:
    """Build the optimizer (and, for L2-SP, the regularizer) of `cfg.method` for `model`.

    Build it right after loading the pretrained weights (and `prepare_model`): SPD and L2-SP anchor at the
    weights they see now. `freeze:*` sets requires_grad=False on the model in place.

    Args:
        cfg: the method config.
        model: the model to fine-tune (the peft model from `prepare_model` when `cfg.lora`).

    Returns:
        (optimizer, regularizer): the regularizer is an `L2SP` for 'l2sp' (add `regularizer()` to the loss),
        else None.

    Raises:
        RuntimeError: `cfg.lora` but the model has no LoRA factor (call `prepare_model` first).
        ValueError: see `maps_param_groups`, `freeze`.
    """
    if cfg.lora and not any(is_lora_factor(n) for n, _ in model.named_parameters()):
        raise RuntimeError('cfg.lora is set but the model has no LoRA factor; call prepare_model(cfg, model) first')
    base, _, arg = cfg.method.partition(':')
    optimizer, regularizer = METHODS.get(base)(cfg, model, arg)
    logger.info('fine-tuning method %s: %s with %d param groups', cfg.method, type(optimizer).__name__,
                len(optimizer.param_groups))
    return optimizer, regularizer
