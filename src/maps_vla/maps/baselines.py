"""What a MAPS experiment compares against: full fine-tuning (AdamW), freezing presets, and L2-SP.

- Full fine-tuning (`fft_optimizer`): `torch.optim.AdamW` on every trainable tensor with torch's default
  weight_decay = 0.01, as the official MAPS code's baseline (maps_spd.md §2.2 item 8, §4.10). Note that MAPS' own
  λ = 0 groups are plain Adam without weight decay.
- Freezing (`freeze`): the paper's freezing study (maps_spd.md §3) as presets over the module stack:
  `dinov2`, `siglip`, `vision` (both towers), `projector`, `language` (whole LLM), `llm-early` / `llm-late` (the
  first ⌊L/2⌋ LLM layers / the rest; `embed_tokens` counts as early, the final norm and `lm_head` as late, as in the
  `linear` schedule) and `vlm` (every pretrained module; new modules stay trainable), plus any module-name prefix.
- L2-SP (`L2SP`; Li, Grandvalet, Davoine, ICML 2018, arXiv 1802.01483): loss += α/2·Σ‖θ−θ₀‖² over the pretrained
  trainable tensors + β/2·Σ‖θ‖² over the new modules. Defaults α = 0.1, β = 0.01: Li et al. pick both by
  cross-validation on a log grid, and these are the values usually quoted for their image-classification runs;
  treat them as a starting point to tune, not as a reproduction. Pair it with an optimizer without weight decay
  (`make_optimizer` uses Adam), otherwise the new modules are decayed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from maps_vla.maps.param_groups import StackSpec, resolve_stack
from maps_vla.maps.stacks import DEFAULT_NEW_MODULES, Location, ModuleStack, is_under, strip_wrappers
from maps_vla.registry import Registry, unknown_name_error

__all__ = ['FREEZE_PRESETS', 'L2SP', 'fft_optimizer', 'freeze', 'frozen_names']

logger = logging.getLogger(__name__)

# preset name -> predicate(location, stack) telling whether a parameter at that location is frozen
FREEZE_PRESETS: Registry[Callable[[Location, ModuleStack], bool]] = Registry('freezing preset')
_PRETRAINED_KINDS = ('block', 'pre', 'post', 'module')


def _backbone_preset(*backbones: str) -> Callable[[Location, ModuleStack], bool]:
    return lambda loc, stack: loc.kind in _PRETRAINED_KINDS and loc.backbone in backbones


def _llm_half(early: bool) -> Callable[[Location, ModuleStack], bool]:
    def predicate(loc: Location, stack: ModuleStack) -> bool:
        if loc.kind not in _PRETRAINED_KINDS or loc.backbone != 'llm':
            return False
        llm_slots = [i for i, s in enumerate(stack.slots) if s.backbone == 'llm']
        rank = llm_slots.index(loc.slot)
        return (rank < len(llm_slots) // 2) == early

    return predicate


FREEZE_PRESETS.register('dinov2')(_backbone_preset('dinov2'))
FREEZE_PRESETS.register('siglip')(_backbone_preset('siglip'))
FREEZE_PRESETS.register('vision')(_backbone_preset('dinov2', 'siglip'))
FREEZE_PRESETS.register('projector')(_backbone_preset('projector'))
FREEZE_PRESETS.register('language')(_backbone_preset('llm'))
FREEZE_PRESETS.register('llm-early')(_llm_half(early=True))
FREEZE_PRESETS.register('llm-late')(_llm_half(early=False))
FREEZE_PRESETS.register('vlm')(lambda loc, stack: loc.kind in _PRETRAINED_KINDS)


def frozen_names(names: Sequence[str], presets: str | Sequence[str], *, stack: StackSpec = None,
                 new_modules: Sequence[str] = DEFAULT_NEW_MODULES) -> list[str]:
    """The subset of parameter `names` that the freezing `presets` select.

    Args:
        names: parameter names of the model (all of them, so the stack is complete).
        presets: preset names from `FREEZE_PRESETS` and/or module-name prefixes, as a list or a comma-separated
            string, e.g. 'dinov2,llm-early' or ['vision', 'projector.fc1'].
        stack, new_modules: as in `param_groups.plan_groups`.

    Returns:
        The selected names, in the input order.

    Raises:
        ValueError: an entry is neither a preset nor a prefix of any name (with the closest preset name).
    """
    items = [p.strip() for p in (presets.split(',') if isinstance(presets, str) else presets) if p.strip()]
    if not items:
        raise ValueError(f'no freezing preset given: {presets!r}; known presets: {", ".join(FREEZE_PRESETS)}')
    module_stack = resolve_stack(names, stack, new_modules=new_modules)
    bare = [strip_wrappers(n) for n in names]
    selected = [False] * len(names)
    for item in items:
        if item in FREEZE_PRESETS:
            predicate = FREEZE_PRESETS.get(item)
            hits = [predicate(module_stack.locate(n), module_stack) for n in names]
        else:
            hits = [is_under(b, item.rstrip('.')) or is_under(n, item.rstrip('.')) for n, b in zip(names, bare)]
            if not any(hits):
                raise unknown_name_error('freezing preset or module prefix', item, FREEZE_PRESETS.names())
        selected = [s or h for s, h in zip(selected, hits)]
    return [n for n, s in zip(names, selected) if s]


def freeze(model: nn.Module, presets: str | Sequence[str], *, stack: StackSpec = None,
           new_modules: Sequence[str] = DEFAULT_NEW_MODULES) -> list[str]:
    """Set `requires_grad=False` on the parameters the `presets` select (see `frozen_names`).

    Returns:
        The names frozen by this call.
    """
    params = dict(model.named_parameters())
    names = frozen_names(list(params), presets, stack=stack, new_modules=new_modules)
    for name in names:
        params[name].requires_grad_(False)
    n_frozen = sum(params[n].numel() for n in names)
    logger.info('froze %d tensors (%s parameters) for %r', len(names), f'{n_frozen:,}', presets)
    return names


def fft_optimizer(model: nn.Module, lr: float, *, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                  weight_decay: float = 0.01) -> torch.optim.AdamW:
    """Full fine-tuning baseline: AdamW on every trainable tensor (torch default weight_decay 0.01, as the code).

    Raises:
        ValueError: the model has no trainable parameter.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError('the model has no trainable parameter (requires_grad=True)')
    return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class L2SP:
    """L2-SP penalty: α/2·Σ_pretrained‖θ−θ₀‖² + β/2·Σ_new‖θ‖², anchored at the weights when constructed.

    Call it (or `penalty()`) every step and add the returned scalar to the loss before `backward()`.

    Args:
        model: the model, with the pretrained weights loaded and the trainable set final.
        alpha: strength toward the pretrained weights θ₀.
        beta: plain L2 strength on the new modules (no pretrained weights).
        stack: None (recognise), prefixes, or a ModuleStack; `[]` for a model without a recognised stack (then
            everything outside `new_modules` counts as pretrained).
        new_modules: prefixes of modules without pretrained weights.
        anchor_device: where θ₀ lives (default: with each parameter); a CPU anchor costs a copy per step.
        anchor_dtype: dtype of θ₀ (default: the parameter's).

    Raises:
        ValueError: negative alpha/beta, or no trainable parameter.
    """

    def __init__(self, model: nn.Module, alpha: float = 0.1, beta: float = 0.01, *, stack: StackSpec = None,
                 new_modules: Sequence[str] = DEFAULT_NEW_MODULES, anchor_device: torch.device | str | None = None,
                 anchor_dtype: torch.dtype | None = None) -> None:
        if not alpha >= 0 or not beta >= 0:
            raise ValueError(f'L2SP alpha and beta must be >= 0, got alpha={alpha!r}, beta={beta!r}')
        self.alpha, self.beta = float(alpha), float(beta)
        named = list(model.named_parameters())
        module_stack = resolve_stack([n for n, _ in named], stack, new_modules=new_modules)
        self.pretrained: dict[str, nn.Parameter] = {}
        self.new: dict[str, nn.Parameter] = {}
        self.anchors: dict[str, torch.Tensor] = {}
        for name, p in named:
            if not p.requires_grad:
                continue
            if module_stack.locate(name).kind == 'new':
                self.new[name] = p
            else:
                self.pretrained[name] = p
                self.anchors[name] = p.detach().to(device=anchor_device or p.device, dtype=anchor_dtype or p.dtype,
                                                   copy=True)
        if not self.pretrained and not self.new:
            raise ValueError('L2SP: the model has no trainable parameter')

    def penalty(self) -> torch.Tensor:
        """The penalty, a float32 scalar on the parameters' device, differentiable w.r.t. the parameters."""
        total = None
        for name, p in self.pretrained.items():
            term = (p.float() - self.anchors[name].to(p.device, torch.float32)).square().sum() * (self.alpha / 2)
            total = term if total is None else total + term
        for p in self.new.values():
            term = p.float().square().sum() * (self.beta / 2)
            total = term if total is None else total + term
        return total

    __call__ = penalty

    def state_dict(self) -> dict[str, object]:
        """α, β and the anchors, for checkpoints (the anchors must survive a resume)."""
        return {'alpha': self.alpha, 'beta': self.beta, 'anchors': dict(self.anchors)}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore `state_dict()`; the anchor names must match this model's pretrained trainable tensors.

        Raises:
            ValueError: the anchor names differ.
        """
        anchors = dict(state['anchors'])  # type: ignore[arg-type]
        if set(anchors) != set(self.anchors):
            raise ValueError(f'L2SP anchors do not match the model: missing {sorted(set(self.anchors) - set(anchors))[:3]}, '
                             f'unexpected {sorted(set(anchors) - set(self.anchors))[:3]}')
        self.alpha, self.beta = float(state['alpha']), float(state['beta'])  # type: ignore[arg-type]
        for name, value in anchors.items():
            self.anchors[name].copy_(value)
