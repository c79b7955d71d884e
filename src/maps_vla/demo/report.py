"""The demo's report folder: success table and bar plot over policies, drift table and plot, and summary.md.

The summary states what the numbers mean, worded from the numbers themselves: a tiny random-init model trained
for minutes on a CPU is not expected to pick anything, and the summary says so when it does not.
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

_COLOURS = {'ID': '#4C72B0', 'OOD': '#DD8452'}


def slug(name: str) -> str:
    """A folder name for a policy row ('MAPS fine-tuned' -> 'maps_fine-tuned')."""
    return re.sub(r'[^a-z0-9_.-]+', '_', name.lower()).strip('_') or 'policy'


def _splits(report: Any) -> dict[str, Any]:
    """'ID' / 'OOD' -> the pooled Summary of that split (when the report has it)."""
    from maps_vla.eval import Split

    return {split.name: s for split in Split if (s := report.aggregate(split)) is not None}


def success_table(reports: dict[str, Any], ood_variant: str) -> str:
    """Markdown: one row per policy, ID and OOD successes with rate and 95 % Wilson interval."""
    lines = [f'| policy | ID (train) | OOD ({ood_variant}) |', '|---|---|---|']
    for name, report in reports.items():
        cells = []
        for split in ('ID', 'OOD'):
            s = _splits(report).get(split)
            cells.append(f'{s.successes}/{s.episodes} = {s.rate:.0%} [{s.low:.0%}, {s.high:.0%}]' if s else '-')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def plot_success(reports: dict[str, Any], path: Path, title: str) -> Path:
    """Grouped bars (ID, OOD) per policy with 95 % Wilson intervals; returns `path`."""
    fig = Figure(figsize=(1.9 * len(reports) + 1.8, 3.4), layout='constrained')
    ax = fig.add_subplot()
    width = 0.38
    for i, report in enumerate(reports.values()):
        for j, (split, s) in enumerate(sorted(_splits(report).items())):
            x = i + (j - 0.5) * width
            ax.bar(x, s.rate, width, yerr=[[s.rate - s.low], [s.high - s.rate]], capsize=3, color=_COLOURS[split])
            ax.text(x, s.high + 0.02, f'{s.successes}/{s.episodes}', ha='center', va='bottom', fontsize=8)
    ax.set_xticks(range(len(reports)), list(reports))
    ax.set_ylim(0, 1.18)
    ax.set_ylabel('success rate')
    ax.set_title(title, fontsize=10)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in _COLOURS.items()], fontsize=8, loc='upper right')
    fig.savefig(path, dpi=120)
    return path


def verdict(result: DemoResult) -> str:
    """The plain-words reading of the success table."""
    from maps_vla.demo.pipeline import POLICY_ROWS

    cfg = result.config
    trained, expert, random_ = (_splits(result.reports[name]) for name in POLICY_ROWS)
    k_id, k_ood = trained['ID'].successes, trained['OOD'].successes
    scale = (f"The scripted expert (privileged state, the ceiling) succeeded in {expert['ID'].successes}/"
             f"{expert['ID'].episodes} ID and {expert['OOD'].successes}/{expert['OOD'].episodes} OOD episodes; "
             f"random actions (the floor) in {random_['ID'].successes}/{random_['ID'].episodes} and "
             f"{random_['OOD'].successes}/{random_['OOD'].episodes}.")
    losses = result.losses
    tail = losses[-max(1, len(losses) // 10):]
    first, last = losses[0], sum(tail) / len(tail)
    fit = (f'The training loss fell from {first:.3g} to {last:.3g}, so the fine-tune does fit the demos; fitting '
           'them offline is not yet a closed-loop policy.' if last < 0.5 * first else
           f'The training loss went from {first:.3g} to {last:.3g}: it did not fall much.')
    if k_id + k_ood == 0:
        return (f'The fine-tuned policy succeeded in none of its {trained["ID"].episodes} ID and '
                f'{trained["OOD"].episodes} OOD episodes. That is expected: it has {result.num_params / 1e6:.2g} M '
                f'parameters, starts from random weights (nothing is downloaded) and trained for {cfg.steps} steps '
                f'on {result.demos} demos, far too little to learn to pick and place. This run shows the machinery '
                f'of the loop, not a result. {scale} {fit} More demos, steps and a larger model (`--size small`, or '
                '`--size gpu --device cuda`) give the fine-tune a chance; what MAPS is for is fine-tuning a '
                'pretrained checkpoint (docs/loop.md).')
    return (f'The fine-tuned policy succeeded in {k_id}/{trained["ID"].episodes} ID and '
            f'{k_ood}/{trained["OOD"].episodes} OOD episodes after {cfg.steps} steps on {result.demos} demos from '
            f'random weights. {scale} {fit} With {trained["ID"].episodes} episodes per variant the 95 % Wilson '
            'intervals are wide: read differences smaller than them as noise.')


def write_report(result: DemoResult) -> dict[str, Path]:
    """success.md, success_rate.png, drift.md, drift.png under `result.out`; returns name -> path."""
    from maps_vla.maps.drift import drift_table, plot_drift

    cfg, out = result.config, result.out
    files = {'success table': out / 'success.md', 'success plot': out / 'success_rate.png',
             'drift table': out / 'drift.md', 'drift plot': out / 'drift.png', 'lambda table': out / 'lambda_table.txt'}
    files['success table'].write_text(success_table(result.reports, cfg.ood_variant))
    plot_success(result.reports, files['success plot'],
                 f'{cfg.task}: {cfg.eval_episodes} episodes per variant (95 % Wilson CI)')
    files['drift table'].write_text(drift_table({'MAPS': result.drift}) + '\n')
    plot_drift({'MAPS': result.drift}, files['drift plot'],
               title=f'Drift from the starting weights: MAPS {cfg.schedule}, λ_max={cfg.lambda_max:g}, '
                     f'{cfg.steps} steps')
    return files


def write_summary(result: DemoResult) -> str:
    """Write summary.md (ties the other files together) and return its text."""
    from maps_vla.maps.drift import drift_table

    cfg, out = result.config, result.out
    losses = result.losses
    tail = losses[-max(1, len(losses) // 10):]
    lines = [
        f'# maps-vla demo ({cfg.size}): the loop in the MuJoCo sim', '',
        f'1. **Demos**: {result.demos} scripted-expert episodes of `{cfg.task}` (train variant), '
        f'{result.demo_frames} frames at {cfg.image_size} px ({"mp4" if cfg.video else "PNG"}), '
        f'{result.demos}/{result.expert_attempts} expert attempts succeeded → `data/`.',
        f'2. **Starting policy**: `{cfg.model}` ({result.num_params:,} parameters, {cfg.policy_image_size} px views), '
        'random init, saved as the checkpoint `start_policy/`.',
        f'3. **MAPS fine-tune**: {cfg.steps} steps, batch {cfg.batch_size}, lr {cfg.lr:g}, λ_max {cfg.lambda_max:g}, '
        f'{cfg.schedule} schedule, on {cfg.device} → `train/policy/`. Loss {losses[0]:.4f} at the first step, '
        f'{sum(tail) / len(tail):.4f} over the last 10 % of steps.',
        f'4. **Evaluation**: {cfg.eval_episodes} episodes on `train` (ID) and `{cfg.ood_variant}` (OOD) per policy '
        '→ `eval/<policy>/` (per-variant tables, CSVs, videos).', '',
        '## Success', '', success_table(result.reports, cfg.ood_variant), verdict(result), '',
        '![success rate](success_rate.png)', '',
        'Rollout of the fine-tuned policy: [rollout.mp4](rollout.mp4)' if 'rollout video' in result.files else '',
        '', '## MAPS λ per module', '',
        'Under the linear schedule λ grows towards the input, so early modules are pulled harder back to their '
        'starting weights; λ = 0 modules (new heads, biases, the last LLM layer) train freely.', '',
        '```', result.lambda_table, '```', '',
        '## Drift from the starting weights', '', drift_table({'MAPS': result.drift}), '', '![drift](drift.png)', '',
        '## Time', '', '| stage | seconds |', '|---|---|',
        *[f'| {stage} | {s:.1f} |' for stage, s in result.seconds.items()],
        f'| **total** | {sum(result.seconds.values()):.1f} |', '',
        '## The same loop by hand', '', '```',
        f'maps-vla collect --task {cfg.task} --episodes {cfg.episodes} --image-size {cfg.image_size}'
        f'{"" if cfg.video else " --png"} --seed {cfg.seed} --out {out}/data',
        f'maps-vla train data.root={out}/data model.checkpoint={out}/start_policy method.lambda_max={cfg.lambda_max:g} '
        f'method.schedule={cfg.schedule} method.lr={cfg.lr:g} steps={cfg.steps} batch_size={cfg.batch_size} '
        f'out_dir={out}/train',
        f'maps-vla eval --policy {out}/train/policy --task {cfg.task} --variants train,{cfg.ood_variant} '
        f'--episodes {cfg.eval_episodes} --out {out}/eval/by_hand',
        '```', '', 'See docs/loop.md for the loop with teleoperated demos and a real Franka.', '',
    ]
    text = '\n'.join(lines)
    (out / 'summary.md').write_text(text)
    return text
