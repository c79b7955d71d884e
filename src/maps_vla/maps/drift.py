"""Parameter drift per module: ‖θ−θ₀‖ and ‖θ−θ₀‖/‖θ₀‖ in stack order, as a table and a plot like MAPS Fig. 3.

Units are those of `param_groups` (a block, the projector, a backbone's embeddings or final layers, a new module).
A unit's drift is the L2 norm over all of its tensors together. θ₀ comes from the anchors (a name → tensor
mapping) or a state dict saved before fine-tuning.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from maps_vla.maps.param_groups import StackSpec, resolve_stack
from maps_vla.maps.stacks import DEFAULT_NEW_MODULES

__all__ = ['DriftRow', 'drift_report', 'drift_table', 'optimizer_anchors', 'plot_drift']

_COLORS = {'dinov2': 'tab:blue', 'siglip': 'tab:orange', 'projector': 'tab:green', 'llm': 'tab:red'}
_SHORT = {'dinov2': 'D', 'siglip': 'S', 'projector': 'P', 'llm': 'L'}


@dataclasses.dataclass(frozen=True)
class DriftRow:
    """Drift of one unit."""

    name: str  # the unit (block prefix, 'projector', '<root>:embed', new module, ...)
    backbone: str | None  # 'dinov2' | 'siglip' | 'projector' | 'llm' | new-module prefix | explicit prefix
    kind: str  # Location.kind of the unit ('block', 'pre', 'post', 'module', 'new', 'unknown')
    absolute: float  # ‖θ−θ₀‖ over the unit's tensors
    reference_norm: float  # ‖θ₀‖
    numel: int  # number of parameters

    @property
    def relative(self) -> float:
        """‖θ−θ₀‖ / ‖θ₀‖ (inf when θ₀ = 0 and θ moved, 0 when neither)."""
        if self.reference_norm > 0:
            return self.absolute / self.reference_norm
        return math.inf if self.absolute > 0 else 0.0


def optimizer_anchors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """θ₀ by parameter name from an optimizer built on `maps_param_groups` (groups carry 'param_names').

    Parameters without a stored anchor (SPDAdam groups with anchor 'zero', e.g. the λ = 0 groups) are left out;
    snapshot the state dict before training to see their drift too.

    Raises:
        ValueError: a group has no 'param_names'.
    """
    out = {}
    for i, group in enumerate(optimizer.param_groups):
        if 'param_names' not in group:
            raise ValueError(f'param group {i} has no param_names; build the groups with maps_param_groups')
        for name, p in zip(group['param_names'], group['params']):
            anchor = optimizer.state.get(p, {}).get('anchor')
            if anchor is not None:
                out[name] = anchor
    return out


def drift_report(current: nn.Module | Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], *,
                 stack: StackSpec = None, new_modules: Sequence[str] = DEFAULT_NEW_MODULES,
                 trainable_only: bool = False) -> list[DriftRow]:
    """Per-unit drift of `current` from `reference`, over the tensor names both hold.

    Args:
        current: the fine-tuned model (its named_parameters) or a state dict.
        reference: θ₀ by name: the anchors, or a state dict from before fine-tuning.
        stack, new_modules: as in `param_groups.plan_groups`.
        trainable_only: with a model, only tensors with requires_grad.

    Returns:
        Rows in stack order (frozen copies left out).

    Raises:
        ValueError: no common tensor name, or a shape mismatch.
    """
    if isinstance(current, nn.Module):
        tensors = {n: p for n, p in current.named_parameters() if p.requires_grad or not trainable_only}
    else:
        tensors = dict(current)
    names = [n for n in tensors if n in reference]
    if not names:
        raise ValueError(f'no tensor name in common between the model ({list(tensors)[:2]!r}...) and the '
                         f'reference ({list(reference)[:2]!r}...)')
    module_stack = resolve_stack(list(tensors), stack, new_modules=new_modules)
    sums: dict[str, list] = {}
    for name in sorted(names, key=module_stack.sort_key):
        loc = module_stack.locate(name)
        if loc.kind == 'frozen':
            continue
        cur, ref = tensors[name].detach(), reference[name].detach()
        if cur.shape != ref.shape:
            raise ValueError(f'{name}: shape {tuple(cur.shape)} differs from the reference {tuple(ref.shape)}')
        ref = ref.to(cur.device, torch.float32)
        entry = sums.setdefault(loc.unit, [loc.backbone, loc.kind, 0.0, 0.0, 0])
        entry[2] += float((cur.float() - ref).square().sum())
        entry[3] += float(ref.square().sum())
        entry[4] += cur.numel()
    return [DriftRow(unit, b, kind, math.sqrt(d2), math.sqrt(r2), n) for unit, (b, kind, d2, r2, n) in sums.items()]


def _as_runs(reports: Sequence[DriftRow] | Mapping[str, Sequence[DriftRow]]) -> dict[str, list[DriftRow]]:
    return {k: list(v) for k, v in reports.items()} if isinstance(reports, Mapping) else {'drift': list(reports)}


def drift_table(reports: Sequence[DriftRow] | Mapping[str, Sequence[DriftRow]]) -> str:
    """A markdown table: one row per unit, absolute and relative drift per run (runs side by side).

    Args:
        reports: rows of one run, or {run label: rows} for several runs of the same model.
    """
    runs = _as_runs(reports)
    units: dict[str, str] = {}
    for rows in runs.values():
        for row in rows:
            units.setdefault(row.name, row.backbone or '-')
    by_run = {label: {r.name: r for r in rows} for label, rows in runs.items()}
    header = '| module | backbone | ' + ' | '.join(f'‖Δθ‖ {k} | rel {k}' for k in runs) + ' |'
    lines = [header, '|' + '---|' * (2 + 2 * len(runs))]
    for unit, backbone in units.items():
        cells = []
        for label in runs:
            row = by_run[label].get(unit)
            cells += [f'{row.absolute:.4g}', f'{row.relative:.3g}'] if row else ['', '']
        lines.append(f'| {unit} | {backbone} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _label(row: DriftRow) -> str:
    short = _SHORT.get(row.backbone or '', (row.backbone or '?')[:6])
    if row.kind == 'block':
        return f'{short}{row.name.rsplit(".", 1)[-1]}'
    return {'pre': f'{short} emb', 'post': f'{short} fin'}.get(row.kind, short)


def plot_drift(reports: Sequence[DriftRow] | Mapping[str, Sequence[DriftRow]], path: str | Path, *,
               relative: bool = True, title: str | None = None, log: bool = False) -> Path:
    """Bar plot of drift per unit in stack order, colored by backbone; one panel per run, shared axes.

    Args:
        reports: rows of one run, or {run label: rows}.
        path: PNG to write (parent folders are created).
        relative: plot ‖θ−θ₀‖/‖θ₀‖ instead of ‖θ−θ₀‖.
        title: figure title.
        log: logarithmic y axis.

    Returns:
        The written path.
    """
    # a bare Figure renders with Agg and leaves pyplot's global backend and figure list alone
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    runs = _as_runs(reports)
    order: dict[str, DriftRow] = {}
    for rows in runs.values():
        for row in rows:
            order.setdefault(row.name, row)
    units = list(order)
    other = iter(['tab:purple', 'tab:brown', 'tab:pink', 'tab:gray', 'tab:olive', 'tab:cyan'] * 8)
    colors = dict(_COLORS)
    for row in order.values():
        if (row.backbone or '-') not in colors:
            colors[row.backbone or '-'] = next(other)
    height, width = 2.6 * len(runs) + 1.0, max(6.0, 0.18 * len(units) + 2)
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(len(runs), 1, sharex=True, sharey=True, squeeze=False)
    for ax, (label, rows) in zip(axes[:, 0], runs.items()):
        by_name = {r.name: r for r in rows}
        values = [(by_name[u].relative if relative else by_name[u].absolute) if u in by_name else 0.0 for u in units]
        ax.bar(range(len(units)), [v if math.isfinite(v) else 0.0 for v in values],
               color=[colors[order[u].backbone or '-'] for u in units])
        ax.set_ylabel(('‖Δθ‖/‖θ₀‖' if relative else '‖Δθ‖') + f'\n{label}')
        if log:
            ax.set_yscale('log')
        ax.grid(axis='y', alpha=0.3)
    axes[-1, 0].set_xticks(range(len(units)), [_label(order[u]) for u in units], rotation=90, fontsize=7)
    present = [b for b in colors if any((r.backbone or '-') == b for r in order.values())]
    ncol = len(present) if width >= 10 else min(len(present), 4)
    fig.suptitle(title or 'Parameter drift per module (stack order)', fontsize=10)
    fig.legend(handles=[Patch(color=colors[b], label=b) for b in present], fontsize=7, ncol=ncol,
               loc='upper center', bbox_to_anchor=(0.5, 1 - 0.3 / height), frameon=False)
    legend_rows = -(-len(present) // ncol)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.35 + 0.2 * legend_rows) / height))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
