"""MAPS λ schedules: stack position → SPD strength λ for every trainable parameter tensor.

Every schedule is a function `(params, stack, lambda_max) -> list[float]` registered in `SCHEDULES`, and every
schedule gives λ = 0 to biases (`*.bias`) and to new modules (action head, proprio projector).

- `linear` (paper, default): λ_k = λ_max·(1 − (k−1)/(|L|−1)) over the stack slots k = 1..|L|: DINOv2 blocks,
  SigLIP blocks, the projector as ONE bridge slot, LLM layers. So the first DINOv2 block gets λ_max and the last
  LLM layer 0. Parameters outside the numbered blocks follow the nearest block of their backbone, because they sit
  at its input or output: patch/position embeddings, cls/register/mask tokens take the backbone's first block's λ;
  final norms and SigLIP's attention-pool head take its last block's; `embed_tokens` takes the first LLM layer's
  and the final LLM norm and `lm_head` the last LLM layer's (0). 1-D weights (norms, LayerScale) are decayed like
  the matrices of their slot, as in the official code. |L| counts every slot of the model, trainable or not, so a
  frozen module keeps its place and does not shift the others' λ.
- `linear-code`: the official MAPS code exactly (maps_spd.md §2.2): layer key = name prefix up to and including
  the first purely numeric segment, indexed 0..N−1 in first-seen order of the (trainable, non-bias) names; names
  without a numeric segment share bucket N (projector, embeddings, final norms, lm_head);
  λ = λ_max·clamp(1 − idx/(N+1), 0, 1). Names containing `action_queries` get 0. The input order matters: pass
  names in `named_parameters()` order (or `ModuleStack.canonical_order` for a checkpoint header).
- `cosine`: the code's `layerwise_decay_cosine`: same keys, λ = λ_max·½(1 + cos(π·idx/(N+1))).
- `constant`: uniform SPD ("RFT" baseline): λ_max for every ≥2-D non-bias tensor, 0 for all 1-D tensors.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence

from maps_vla.maps.stacks import ModuleStack
from maps_vla.registry import Registry

__all__ = ['SCHEDULES', 'ParamSpec', 'ScheduleFn', 'schedule_lambdas']


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """A trainable parameter as the schedules see it: its name and shape, no data."""

    name: str  # full name as in named_parameters(), wrapper prefixes included
    shape: tuple[int, ...]  # tensor shape


ScheduleFn = Callable[[Sequence[ParamSpec], ModuleStack, float], list[float]]
SCHEDULES: Registry[ScheduleFn] = Registry('λ schedule')
_NUMERIC = re.compile(r'^\d+$')


def _is_bias(name: str) -> bool:
    return name.endswith('.bias') or name == 'bias'


def _no_decay(spec: ParamSpec, stack: ModuleStack) -> bool:
    return _is_bias(spec.name) or stack.locate(spec.name).kind == 'new'


@SCHEDULES.register('linear')
def linear(params: Sequence[ParamSpec], stack: ModuleStack, lambda_max: float) -> list[float]:
    """Paper schedule over stack slots; see the module docstring. Raises ValueError for unplaceable names."""
    depth = len(stack.slots)
    out = []
    unplaced = []
    for spec in params:
        loc = stack.locate(spec.name)
        if _no_decay(spec, stack):
            out.append(0.0)
        elif loc.slot is None:
            unplaced.append(spec.name)
            out.append(0.0)
        else:
            out.append(lambda_max * (1.0 - loc.slot / (depth - 1)) if depth > 1 else lambda_max)
    if unplaced:
        raise ValueError(
            f'the linear schedule cannot place {len(unplaced)} trainable parameters in the module stack '
            f'{stack!r}, e.g. {unplaced[:3]!r}; list them in new_modules (λ = 0) or pass stack=[ordered prefixes]')
    return out


def _code_indices(params: Sequence[ParamSpec], stack: ModuleStack) -> tuple[list[int | None], int]:
    """Official-code layer index per param (None: no decay), and N, the number of numbered keys."""
    keys: dict[str, int] = {}
    per_param: list[str | None] = []
    for spec in params:
        if _no_decay(spec, stack) or 'action_queries' in spec.name:
            per_param.append(None)
            continue
        parts = spec.name.split('.')
        numeric = next((i for i, part in enumerate(parts) if _NUMERIC.match(part)), None)
        key = '.'.join(parts[:numeric + 1]) if numeric is not None else ''
        if key:
            keys.setdefault(key, len(keys))
        per_param.append(key)
    n = len(keys)
    return [None if k is None else keys.get(k, n) if k else n for k in per_param], n


@SCHEDULES.register('linear-code')
def linear_code(params: Sequence[ParamSpec], stack: ModuleStack, lambda_max: float) -> list[float]:
    """Official code's `layerwise_decay`: λ_max·clamp(1 − idx/(N+1), 0, 1)."""
    indices, n = _code_indices(params, stack)
    return [0.0 if i is None else lambda_max * min(max(1.0 - i / (n + 1), 0.0), 1.0) for i in indices]


@SCHEDULES.register('cosine')
def cosine(params: Sequence[ParamSpec], stack: ModuleStack, lambda_max: float) -> list[float]:
    """Official code's `layerwise_decay_cosine`: λ_max·½(1 + cos(π·idx/(N+1)))."""
    indices, n = _code_indices(params, stack)
    return [0.0 if i is None else lambda_max * 0.5 * (1.0 + math.cos(math.pi * i / (n + 1))) for i in indices]


@SCHEDULES.register('constant')
def constant(params: Sequence[ParamSpec], stack: ModuleStack, lambda_max: float) -> list[float]:
    """Uniform SPD: λ_max on every ≥2-D non-bias pretrained tensor, 0 elsewhere."""
    return [0.0 if _no_decay(spec, stack) or len(spec.shape) < 2 else lambda_max for spec in params]


def schedule_lambdas(schedule: str, params: Sequence[ParamSpec], stack: ModuleStack, lambda_max: float) -> list[float]:
    """λ for each of `params` under the named schedule.

    Args:
        schedule: a name in `SCHEDULES` ('linear', 'linear-code', 'cosine', 'constant').
        params: the trainable parameters, in `named_parameters()` order.
        stack: the model's module stack (`recognize_stack`).
        lambda_max: the largest λ (≥ 0).

    Returns:
        One λ ≥ 0 per entry of `params`.

    Raises:
        ValueError: unknown schedule (with the closest name), negative `lambda_max`, or (linear) a parameter
            outside the stack.
    """
    fn = SCHEDULES.get(schedule)
    if not lambda_max >= 0.0 or math.isinf(lambda_max):
        raise ValueError(f'lambda_max must be a finite number >= 0, got {lambda_max!r}')
    return fn(params, stack, lambda_max)
