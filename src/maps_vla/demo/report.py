"""The demo's report folder: success table and bar plot over policies, drift table and plot, and summary.md.

The summary states what the numbers mean, worded from the numbers themselves: per policy and variant, the start
policy's own score, and the expert's ceiling and the random floor beside them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch

if TYPE_CHECKING:
    from maps_vla.demo.pipeline import DemoResult

__all__ = ['success_table', 'plot_success', 'verdict', 'write_report', 'write_summary', 'slug']

def slug(name: str) -> str:
    """A folder name for a policy row ('MAPS fine-tuned' -> 'maps_fine-tuned')."""
    return re.sub(r'[^a-z0-9_.-]+', '_', name.lower()).strip('_') or 'policy'


def _variants(report: Any) -> dict[str, Any]:
    """Variant name -> its Summary (success count, rate and Wilson interval)."""
    return {s.name: s for s in report.summaries() if not s.name.endswith('(all)')}


def _cell(s: Any) -> str:
    return f'{s.successes}/{s.episodes} = {s.rate:.0%} [{s.low:.0%}, {s.high:.0%}]' if s else '-'


def _roles(cfg: Any) -> dict[str, str]:
    """Variant -> its role in the demo ('ID: fine-tuned on', 'retention', 'OOD: never seen')."""
    roles = {cfg.finetune_variant: 'new task (fine-tuned on)'}
    if cfg.retention_variant:
        roles[cfg.retention_variant] = "start policy's task (retention)"
    roles[cfg.ood_variant] = 'held out (OOD)'
    return roles


def success_table(reports: dict[str, Any], roles: dict[str, str]) -> str:
    """Markdown: one row per policy, one column per variant: successes, rate and 95 % Wilson interval."""
    lines = ['| policy | ' + ' | '.join(f'{v}: {role}' for v, role in roles.items()) + ' |',
             '|---|' + '---|' * len(roles)]
    for name, report in reports.items():
        summaries = _variants(report)
        lines.append(f'| {name} | ' + ' | '.join(_cell(summaries.get(v)) for v in roles) + ' |')
    return '\n'.join(lines) + '\n'


def plot_success(reports: dict[str, Any], roles: dict[str, str], path: Path, title: str) -> Path:
    """Grouped bars (one per variant) per policy with 95 % Wilson intervals; returns `path`."""
    colours = ('#4C72B0', '#55A868', '#DD8452', '#8172B2')
    fig = Figure(figsize=(2.2 * len(reports) + 2.0, 3.6), layout='constrained')
    ax = fig.add_subplot()
    width = 0.8 / len(roles)
    for i, report in enumerate(reports.values()):
        summaries = _variants(report)
        for j, variant in enumerate(roles):
            s = summaries.get(variant)
            if s is None:
                continue
            x = i + (j - (len(roles) - 1) / 2) * width
            ax.bar(x, s.rate, width, yerr=[[s.rate - s.low], [s.high - s.rate]], capsize=3, color=colours[j % 4])
            ax.text(x, s.high + 0.02, f'{s.successes}/{s.episodes}', ha='center', va='bottom', fontsize=7)
    ax.set_xticks(range(len(reports)), [n.replace(' (', '\n(') for n in reports], fontsize=8)
    ax.set_ylim(0, 1.2)
    ax.set_ylabel('success rate')
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[Patch(color=colours[j % 4], label=f'{v}: {r}') for j, (v, r) in enumerate(roles.items())],
              fontsize=7, loc='upper right')
    fig.savefig(path, dpi=120)
    return path


def verdict(result: DemoResult) -> str:
    """The plain-words reading of the success table."""
    from maps_vla.demo.pipeline import BASELINE_ROWS, START_ROW

    cfg = result.config
    roles = list(_roles(cfg))
    new = cfg.finetune_variant
    rate = {name: _variants(report) for name, report in result.reports.items()}
    expert, random_ = rate[BASELINE_ROWS[0]], rate[BASELINE_ROWS[1]]
    scale = (f'The scripted expert (privileged state, the ceiling) succeeded in {expert[new].successes}/'
             f'{expert[new].episodes} episodes of {new}; random actions (the floor) in {random_[new].successes}/'
             f'{random_[new].episodes}.')
    parts = []
    for name, losses in result.losses.items():
        tail = losses[-max(1, len(losses) // 10):]
        cells = ', '.join(f'{v} {rate[name][v].successes}/{rate[name][v].episodes}' for v in roles)
        parts.append(f'{name}: {cells} (loss {losses[0]:.3g} -> {sum(tail) / len(tail):.3g})')
    start = rate[START_ROW]
    begin = ('It started from random weights, which MAPS is not designed for (it pulls weights back towards a '
             'random start).' if cfg.start == 'random' else
             f'It started from {"the pretrained prior" if cfg.start == "prior" else cfg.start}, which before '
             f'fine-tuning scored {start[new].successes}/'
             f'{start[new].episodes} on {new} and ' + ', '.join(f'{start[v].successes}/{start[v].episodes} on {v}'
                                                                   for v in roles[1:]) + '.')
    none = all(rate[name][v].successes == 0 for name in result.losses for v in roles)
    reading = ('No fine-tuned policy succeeded anywhere: read the table as a check of the machinery, not a result.'
               if none else
               f'With {cfg.eval_episodes} episodes per variant, differences inside the 95 % Wilson intervals are '
               'noise; compare MAPS and AdamW on retention and OOD, where MAPS is meant to keep what the prior knew.')
    return (f'After {cfg.steps} steps on {result.demos} demos of {new}: ' + '; '.join(parts) + f'. {begin} {scale} '
            + reading)


def write_report(result: DemoResult) -> dict[str, Path]:
    """success.md, success_rate.png, drift.md, drift.png under `result.out`; returns name -> path."""
    from maps_vla.maps.drift import drift_table, plot_drift

    cfg, out = result.config, result.out
    roles = _roles(cfg)
    files = {'success table': out / 'success.md', 'success plot': out / 'success_rate.png',
             'drift table': out / 'drift.md', 'drift plot': out / 'drift.png', 'lambda table': out / 'lambda_table.txt'}
    files['success table'].write_text(success_table(result.reports, roles))
    plot_success(result.reports, roles, files['success plot'],
                 f'{cfg.task}: {cfg.eval_episodes} episodes per variant (95 % Wilson CI)')
    files['drift table'].write_text(drift_table(result.drift) + '\n')
    plot_drift(result.drift, files['drift plot'],
               title=f'Drift from the starting weights, {cfg.steps} steps (MAPS {cfg.schedule}, '
                     f'λ_max={cfg.lambda_max:g})')
    return files


def write_summary(result: DemoResult) -> str:
    """Write summary.md (ties the other files together) and return its text."""
    from maps_vla.maps.drift import drift_table

    cfg, out = result.config, result.out
    roles = _roles(cfg)
    start = ('the pretrained prior shipped in the package (`maps_vla/assets/prior`, see its MODEL_CARD.md)'
             if cfg.start == 'prior' else 'random weights' if cfg.start == 'random' else f'`{cfg.start}`')
    lines = [
        f'# maps-vla demo ({cfg.size}): fine-tune on a new task variant in the MuJoCo sim', '',
        f'1. **Demos**: {result.demos} scripted-expert episodes of `{cfg.task}/{cfg.finetune_variant}` (a variant the '
        f'start policy never saw), {result.demo_frames} frames ({"mp4" if cfg.video else "PNG"}), '
        f'{result.demos}/{result.expert_attempts} expert attempts succeeded → `data/`.',
        f'2. **Starting policy**: {start}, {result.num_params:,} parameters → `start_policy/`.',
        f'3. **Fine-tuning**: {", ".join(result.losses)}; {cfg.steps} steps each, batch {cfg.batch_size}, lr '
        f'{cfg.lr:g}, seed {cfg.seed}; MAPS λ_max {cfg.lambda_max:g}, {cfg.schedule} schedule; on {cfg.device} → '
        '`train/<method>/policy/`.',
        f'4. **Evaluation**: {cfg.eval_episodes} episodes per variant and policy on '
        + ', '.join(f'`{v}` ({r})' for v, r in roles.items()) + ' → `eval/<policy>/`.', '',
        '## Success', '', success_table(result.reports, roles), verdict(result), '',
        '![success rate](success_rate.png)', '',
        'Rollout of the MAPS-fine-tuned policy: [rollout.mp4](rollout.mp4)' if 'rollout video' in result.files else '',
        '', '## MAPS λ per module', '',
        'Under the linear schedule λ grows towards the input, so early modules are pulled harder back to their '
        'starting weights; λ = 0 modules (new heads, biases, the last LLM layer) train freely.', '',
        '```', result.lambda_table, '```', '',
        '## Drift from the starting weights', '', drift_table(result.drift), '', '![drift](drift.png)', '',
        '## Time', '', '| stage | seconds |', '|---|---|',
        *[f'| {stage} | {s:.1f} |' for stage, s in result.seconds.items()],
        f'| **total** | {sum(result.seconds.values()):.1f} |', '',
        '## The same loop by hand', '', '```',
        f'maps-vla collect --task {cfg.task} --variant {cfg.finetune_variant} --episodes {cfg.episodes} '
        f'--seed {cfg.seed} --out {out}/data',
        *[f'maps-vla train data.root={out}/data model.checkpoint={out}/start_policy method.method={m} '
          f'method.lambda_max={cfg.lambda_max:g} method.schedule={cfg.schedule} method.lr={cfg.lr:g} '
          f'steps={cfg.steps} batch_size={cfg.batch_size} out_dir={out}/train/{m}' for m in cfg.methods],
        f'maps-vla eval --policy {out}/train/{cfg.methods[0]}/policy --task {cfg.task} --variants '
        f'{",".join(roles)} --episodes {cfg.eval_episodes} --out {out}/eval/by_hand',
        '```', '', 'See docs/loop.md for the loop with teleoperated demos and a real Franka.', '',
    ]
    text = '\n'.join(lines)
    (out / 'summary.md').write_text(text)
    return text
