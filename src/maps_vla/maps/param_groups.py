"""MAPS optimizer parameter groups: one group per (stack unit, λ), and a readable λ table.

Works from `named_parameters()` alone, so it also runs on a meta-device model or on a list of (name, shape)
read from a checkpoint header (`plan_groups`). Parameters with `requires_grad=False` are skipped.

Each group of `maps_param_groups` is a dict with
    'params': list[nn.Parameter], 'lam': float, 'name': str (the unit: a block prefix such as
    'language_model.model.layers.3', 'projector', '<root>:embed', '<root>:final', a new module, ...),
    'param_names': list[str], 'backbone': str | None (for plots: 'dinov2', 'siglip', 'projector', 'llm', ...).
`SPDAdam` (and any torch optimizer) keeps the extra keys.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Union

import torch
from torch import nn

from maps_vla.maps.schedules import ParamSpec, schedule_lambdas
from maps_vla.maps.stacks import DEFAULT_NEW_MODULES, ModuleStack, recognize_stack

__all__ = ['GroupPlan', 'NamedParams', 'StackSpec', 'lambda_table', 'maps_param_groups', 'named_specs',
           'plan_groups', 'resolve_stack']

logger = logging.getLogger(__name__)

# a model, its named_parameters() (or any (name, tensor) pairs), or (name, shape) pairs
NamedParams = Union[nn.Module, Iterable[tuple[str, Any]]]
# None: recognise the Prismatic stack; a list of ordered module-name prefixes; or a ready ModuleStack
StackSpec = Union[None, Sequence[str], ModuleStack]


@dataclasses.dataclass
class GroupPlan:
    """A planned parameter group, without tensors."""

    name: str  # the unit (see module docstring)
    lam: float  # SPD strength of every tensor in the group
    backbone: str | None  # Location.backbone of the unit
    param_names: list[str]  # full names, in named_parameters() order
    shapes: list[tuple[int, ...]]  # one per name

    @property
    def numel(self) -> int:
        """Total number of elements in the group."""
        return sum(int(torch.Size(s).numel()) for s in self.shapes)


def named_specs(source: NamedParams) -> list[tuple[str, tuple[int, ...], bool | None]]:
    """(name, shape, trainable) for a module, (name, tensor) pairs or (name, shape) pairs.

    `nn.Parameter`s are trainable iff `requires_grad`; for plain tensors and shapes (a state dict, a checkpoint
    header) `trainable` is None: unknown, treated as trainable except for frozen copies.

    Raises:
        TypeError: an entry is not a (name, tensor-or-shape) pair.
    """
    items = source.named_parameters() if isinstance(source, nn.Module) else source
    out: list[tuple[str, tuple[int, ...], bool | None]] = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(f'expected (name, tensor) or (name, shape) pairs, got {item!r}') from None
        if isinstance(value, torch.Tensor):
            trainable = value.requires_grad if isinstance(value, nn.Parameter) else None
            out.append((str(name), tuple(value.shape), trainable))
        elif isinstance(value, (tuple, list, torch.Size)) and all(isinstance(d, int) for d in value):
            out.append((str(name), tuple(value), None))
        else:
            raise TypeError(f'parameter {name!r}: expected a tensor or a shape, got {type(value).__name__}')
    return out


def resolve_stack(names: Sequence[str], stack: StackSpec = None, *,
                  new_modules: Sequence[str] = DEFAULT_NEW_MODULES) -> ModuleStack:
    """A `ModuleStack` from a stack spec (None: recognise; prefixes: explicit; a ModuleStack: as is)."""
    if isinstance(stack, ModuleStack):
        return stack
    return recognize_stack(names, stack, new_modules=new_modules)


def plan_groups(source: NamedParams, lambda_max: float, schedule: str = 'linear', *, stack: StackSpec = None,
                new_modules: Sequence[str] = DEFAULT_NEW_MODULES) -> list[GroupPlan]:
    """Plan the MAPS groups from names and shapes only.

    Args:
        source: a module, its `named_parameters()`, or (name, shape) pairs, in `named_parameters()` order.
        lambda_max: the largest λ.
        schedule: a name in `schedules.SCHEDULES`.
        stack: None (recognise Prismatic/OpenVLA/MiniVLA/our names), ordered module-name prefixes, or a ModuleStack.
        new_modules: prefixes of modules without pretrained weights (λ = 0).

    Returns:
        Groups in stack order (embeddings, blocks, final layers per backbone; then new modules; then the rest).

    Raises:
        ValueError: unknown schedule, a stack that cannot be recognised, a trainable parameter of a frozen
            copy, or (linear) a trainable parameter outside the stack.
    """
    specs = named_specs(source)
    module_stack = resolve_stack([n for n, _, _ in specs], stack, new_modules=new_modules)
    frozen = [n for n, _, t in specs if t and module_stack.locate(n).kind == 'frozen']
    if frozen:
        raise ValueError(f'{len(frozen)} parameters of a frozen copy are trainable, e.g. {frozen[:2]!r}; '
                         'set requires_grad=False on them')
    trainable = [ParamSpec(n, s) for n, s, t in specs if t or t is None and module_stack.locate(n).kind != 'frozen']
    lams = schedule_lambdas(schedule, trainable, module_stack, lambda_max)
    groups: dict[tuple[str, float], GroupPlan] = {}
    for spec, lam in zip(trainable, lams):
        loc = module_stack.locate(spec.name)
        group = groups.get((loc.unit, lam))
        if group is None:
            group = groups[(loc.unit, lam)] = GroupPlan(loc.unit, lam, loc.backbone, [], [])
        group.param_names.append(spec.name)
        group.shapes.append(spec.shape)
    unit_seen = {unit: i for i, (unit, _) in reversed(list(enumerate(groups)))}
    ordered = sorted(groups, key=lambda k: (module_stack.sort_key(groups[k].param_names[0]), unit_seen[k[0]], -k[1]))
    plans = [groups[k] for k in ordered]
    logger.debug('%d MAPS groups (%s, λ_max=%g) over %d trainable tensors', len(plans), schedule, lambda_max,
                 len(trainable))
    return plans


def maps_param_groups(model: nn.Module | Iterable[tuple[str, nn.Parameter]], lambda_max: float,
                      schedule: str = 'linear', *, stack: StackSpec = None,
                      new_modules: Sequence[str] = DEFAULT_NEW_MODULES, anchor: str | None = None) -> list[dict[str, Any]]:
    """Optimizer parameter groups for MAPS: one group per (unit, λ); biases and new modules get λ = 0.

    Args:
        model: the model (or its `named_parameters()`); meta-device tensors are fine.
        lambda_max: the largest λ (e.g. 3.2 for full-FT MiniVLA-OFT on LIBERO-90, maps_spd.md §2.5).
        schedule: 'linear' (paper), 'linear-code' (official code), 'cosine' or 'constant' (uniform SPD).
        stack: None (recognise), ordered module-name prefixes, or a ModuleStack.
        new_modules: prefixes of modules without pretrained weights.
        anchor: None leaves the anchor to the optimizer's default; 'copy' or 'zero' sets `SPDAdam`'s per-group
            'anchor' on the λ > 0 groups, and 'zero' on the λ = 0 groups, which never project and so need no
            stored copy.

    Returns:
        Dicts with 'params', 'lam', 'name', 'param_names', 'backbone' (and 'anchor'), in stack order; every
        trainable parameter is in exactly one group.

    Raises:
        ValueError: see `plan_groups`.
        TypeError: `model` yields something that is not a tensor.
    """
    named = list(model.named_parameters()) if isinstance(model, nn.Module) else list(model)
    by_name = {}
    for name, tensor in named:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f'maps_param_groups needs tensors; {name!r} is {type(tensor).__name__} '
                            '(use plan_groups for names and shapes)')
        by_name[name] = tensor
    if anchor not in (None, 'copy', 'zero'):
        raise ValueError(f"anchor must be None, 'copy' or 'zero', got {anchor!r}")
    groups = []
    for plan in plan_groups(named, lambda_max, schedule, stack=stack, new_modules=new_modules):
        group = {'params': [by_name[n] for n in plan.param_names], 'lam': plan.lam, 'name': plan.name,
                 'param_names': list(plan.param_names), 'backbone': plan.backbone}
        if anchor is not None:
            group['anchor'] = anchor if plan.lam > 0 else 'zero'
        groups.append(group)
    return groups


def lambda_table(source: NamedParams | Sequence[dict[str, Any]] | Sequence[GroupPlan], lambda_max: float | None = None,
                 schedule: str = 'linear', *, stack: StackSpec = None,
                 new_modules: Sequence[str] = DEFAULT_NEW_MODULES) -> str:
    """A plain-text table of every unit's λ and size, in stack order.

    Args:
        source: groups from `maps_param_groups`, plans from `plan_groups`, or anything `plan_groups` accepts
            (then `lambda_max` is required).
        lambda_max, schedule, stack, new_modules: as in `plan_groups`, used only when planning.

    Returns:
        One row per unit: λ of its decayed tensors ('0' if none), #tensors decayed / at λ = 0, #parameters.

    Raises:
        ValueError: `lambda_max` missing when the groups must be planned.
    """
    plans = _as_plans(source, lambda_max, schedule, stack, new_modules)
    rows: dict[str, list[Any]] = {}
    for plan in plans:
        row = rows.setdefault(plan.name, [plan.backbone or '-', [], 0, 0, 0])
        if plan.lam > 0:
            row[1].append(plan.lam)
            row[2] += len(plan.param_names)
        else:
            row[3] += len(plan.param_names)
        row[4] += plan.numel
    width = max([len('module')] + [len(n) for n in rows])
    lines = [f'{"#":>3}  {"module":<{width}}  {"backbone":<17}  {"lambda":>8}  {"decayed":>7}  {"lam=0":>5}  {"params":>13}']
    lines.append('-' * len(lines[0]))
    for i, (name, (backbone, lams, n_dec, n_zero, numel)) in enumerate(rows.items()):
        lam = '/'.join(f'{x:.4f}' for x in sorted(set(lams), reverse=True)) if lams else '0'
        lines.append(f'{i:>3}  {name:<{width}}  {backbone:<17}  {lam:>8}  {n_dec:>7}  {n_zero:>5}  {numel:>13,}')
    total = sum(r[4] for r in rows.values())
    decayed = sum(p.numel for p in plans if p.lam > 0)
    lines.append('-' * len(lines[0]))
    lines.append(f'{len(rows)} modules, {len(plans)} groups, {total:,} trainable parameters '
                 f'({decayed:,} decayed, {total - decayed:,} at lambda 0)')
    return '\n'.join(lines)


def _as_plans(source: Any, lambda_max: float | None, schedule: str, stack: StackSpec,
              new_modules: Sequence[str]) -> list[GroupPlan]:
    if isinstance(source, (list, tuple)) and source and all(isinstance(g, GroupPlan) for g in source):
        return list(source)
    if isinstance(source, (list, tuple)) and source and all(isinstance(g, dict) for g in source):
        return [GroupPlan(g.get('name', f'group{i}'), float(g.get('lam', 0.0)), g.get('backbone'),
                          list(g.get('param_names', [f'group{i}.{j}' for j in range(len(g['params']))])),
                          [tuple(p.shape) for p in g['params']]) for i, g in enumerate(source)]
    if lambda_max is None:
        raise ValueError('lambda_table needs lambda_max to plan the groups of a model or a name list')
    return plan_groups(source, lambda_max, schedule, stack=stack, new_modules=new_modules)
