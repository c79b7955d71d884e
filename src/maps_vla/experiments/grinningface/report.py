"""The experiment's report: results.md (table of means ± std over seeds), results.json and plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from maps_vla.experiments.grinningface.configuration import GrinningFaceConfig
from maps_vla.experiments.grinningface.pipeline import run_metrics_path

__all__ = ['write_report', 'COLUMNS', 'summarize']

# metric key -> column title; success/* columns are added when closed-loop rollouts ran
COLUMNS = {
    'grounding/train': 'target ID',
    'grounding/ood_emoji': 'target OOD',
    'probe_where/train': 'VL where ID',
    'probe_where/ood_emoji': 'VL where OOD',
    'probe_what/train': 'VL what ID',
    'probe_what/ood_emoji': 'VL what OOD',
    'success/train': 'success ID',
    'success/ood_emoji': 'success OOD',
    'drift': 'drift',
}


_KNOWLEDGE_MARGIN = 0.15  # prior probe accuracy above chance below which retention cannot be measured


def _drift(rows: list[dict[str, Any]]) -> float:
    """Relative drift ‖θ−θ₀‖/‖θ₀‖ over every pretrained unit (new modules excluded)."""
    rows = [r for r in rows if r['kind'] != 'new']
    reference = math.sqrt(sum(r['reference_norm'] ** 2 for r in rows))
    return math.sqrt(sum(r['absolute'] ** 2 for r in rows)) / reference if reference else 0.0


def _values(metrics: dict[str, Any]) -> dict[str, float]:
    out = {k: float(v) for k, v in metrics.items() if k in COLUMNS and k != 'drift'}
    out['drift'] = _drift(metrics['drift'])
    return out


def summarize(cfg: GrinningFaceConfig, out: Path) -> dict[str, Any]:
    """{'prior': values, 'methods': [{key, label, method, lambda_max, schedule, seeds, mean, std}]} of finished runs."""
    summary: dict[str, Any] = {'prior': _values(json.loads((out / 'prior_metrics.json').read_text())),
                               'chance': {'target': 1 / cfg.num_cards, 'where': 1 / cfg.num_cards, 'what': 1 / 24},
                               'methods': []}
    for run in cfg.methods:
        runs = [json.loads(p.read_text()) for s in cfg.seeds if (p := run_metrics_path(out, run, s)).is_file()]
        if not runs:
            continue
        values = [_values(m) for m in runs]
        keys = [k for k in COLUMNS if all(k in v for v in values)]
        summary['methods'].append({
            'key': run.key, 'label': run.label, 'method': run.method, 'lambda_max': run.lambda_max,
            'schedule': run.schedule, 'seeds': [m['seed'] for m in runs],
            'mean': {k: float(np.mean([v[k] for v in values])) for k in keys},
            'std': {k: float(np.std([v[k] for v in values])) for k in keys},
            'per_seed': {k: [v[k] for v in values] for k in keys},
        })
    return summary


def _table(summary: dict[str, Any]) -> str:
    keys = [k for k in COLUMNS if any(k in m['mean'] for m in summary['methods']) or k in summary['prior']]
    lines = ['| method | seeds | ' + ' | '.join(COLUMNS[k] for k in keys) + ' |',
             '|---|---|' + '---|' * len(keys)]
    prior = summary['prior']
    lines.append('| pretrained prior (action head untrained) | - | '
                 + ' | '.join(f'{prior[k]:.2f}' if k in prior else '-' for k in keys) + ' |')
    for m in summary['methods']:
        cells = [f'{m["mean"][k]:.2f} ± {m["std"][k]:.2f}' if k in m['mean'] else '-' for k in keys]
        lines.append(f'| {m["label"]} | {len(m["seeds"])} | ' + ' | '.join(cells) + ' |')
    chance = summary['chance']
    lines.append(f'\nChance: target choice and VL where {chance["target"]:.2f}, VL what {chance["what"]:.3f}. '
                 'Drift: ‖θ−θ₀‖/‖θ₀‖ over all pretrained tensors (θ₀ = the prior).')
    return '\n'.join(lines)


def _plot_methods(summary: dict[str, Any], path: Path) -> Path:
    from matplotlib.figure import Figure

    methods = summary['methods']
    panels = [('grounding/ood_emoji', 'target choice, held-out emojis (OOD)'),
              ('grounding/train', 'target choice, train emojis (ID)'),
              ('probe_where/ood_emoji', 'VL probe "where is X", held-out emojis')]
    fig = Figure(figsize=(4.2 * len(panels), 0.42 * len(methods) + 1.6))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    y = np.arange(len(methods))
    for ax, (key, title) in zip(axes, panels):
        means = [m['mean'].get(key, np.nan) for m in methods]
        stds = [m['std'].get(key, 0.0) for m in methods]
        colors = ['tab:red' if m['method'] == 'maps' else 'tab:orange' if m['method'] == 'spd' else 'tab:gray'
                  for m in methods]
        ax.barh(y, means, xerr=stds, color=colors, capsize=3)
        if key in summary['prior']:
            ax.axvline(summary['prior'][key], color='k', ls=':', lw=1, label='prior')
        ax.axvline(summary['chance']['target'], color='tab:blue', ls='--', lw=1, label='chance')
        ax.set_xlim(0, 1)
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(y, [m['label'] for m in methods], fontsize=8)
    axes[0].invert_yaxis()
    axes[-1].legend(fontsize=7, loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _plot_lambda(summary: dict[str, Any], path: Path) -> Path | None:
    from matplotlib.figure import Figure

    curves = {'uniform SPD': [m for m in summary['methods'] if m['method'] == 'spd'],
              'MAPS linear': [m for m in summary['methods'] if m['method'] == 'maps' and m['schedule'] == 'linear']}
    if not any(len(c) > 1 for c in curves.values()):
        return None
    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    for ax, (key, title) in zip(axes, [('grounding/ood_emoji', 'target choice OOD'),
                                        ('grounding/train', 'target choice ID')]):
        for (name, runs), color in zip(curves.items(), ('tab:orange', 'tab:red')):
            runs = sorted(runs, key=lambda m: m['lambda_max'])
            if runs:
                ax.errorbar([m['lambda_max'] for m in runs], [m['mean'].get(key, np.nan) for m in runs],
                            yerr=[m['std'].get(key, 0.0) for m in runs], marker='o', capsize=3, color=color,
                            label=name)
        ax.axhline(summary['chance']['target'], color='tab:blue', ls='--', lw=1, label='chance')
        ax.set_xlabel('λ (SPD) / λ_max (MAPS)')
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write_report(cfg: GrinningFaceConfig, out: Path) -> dict[str, Path]:
    """Write results.md, results.json, methods.png, lambda_sweep.png (with ≥ 2 λ per family) and drift.png."""
    from maps_vla.maps.drift import DriftRow, plot_drift

    summary = summarize(cfg, out)
    files = {'results.json': out / 'results.json'}
    files['results.json'].write_text(json.dumps(summary, indent=1))
    if summary['methods']:
        files['methods.png'] = _plot_methods(summary, out / 'methods.png')
        sweep = _plot_lambda(summary, out / 'lambda_sweep.png')
        if sweep is not None:
            files['lambda_sweep.png'] = sweep
        drift = {}
        for m in summary['methods']:
            path = run_metrics_path(out, next(r for r in cfg.methods if r.key == m['key']), m['seeds'][0])
            drift[m['label']] = [DriftRow(**r) for r in json.loads(path.read_text())['drift']]
        files['drift.png'] = plot_drift(drift, out / 'drift.png', title='drift from the prior (first seed)',
                                        log=True)
    prior, chance = summary['prior'], summary['chance']
    weak = [f'{COLUMNS[k]} {prior[k]:.2f} (chance {chance[c]:.2f})'
            for k, c in (('probe_where/ood_emoji', 'where'), ('probe_what/ood_emoji', 'what'))
            if prior.get(k, 0.0) < chance[c] + _KNOWLEDGE_MARGIN]
    warning = ([f'**The prior knows little about the held-out emojis** ({", ".join(weak)}): there is little '
                'pretrained knowledge to keep, so this comparison cannot test retention. Pre-train longer or '
                'larger first.', ''] if weak else [])
    text = [f'# GrinningFace experiment: {out}', '', *warning,
            f'{len(summary["methods"])} of {len(cfg.methods)} methods with results; '
            f'{cfg.finetune_steps} fine-tuning steps, batch {cfg.finetune_batch_size}, lr {cfg.finetune_lr:g}, '
            f'{cfg.demos} demos (train emojis only); VLM pre-trained {cfg.pretrain_steps} steps on '
            f'{2 * cfg.vl_scenes} scenes of all 24 emojis.', '', _table(summary), '']
    text += [f'![{name}]({name})' for name in ('methods.png', 'lambda_sweep.png', 'drift.png') if name in files]
    files['results.md'] = out / 'results.md'
    files['results.md'].write_text('\n'.join(text) + '\n')
    return files
