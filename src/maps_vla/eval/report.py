"""Success tables for an evaluation: per-variant and ID/OOD success rates with Wilson intervals, as markdown,
CSV, a bar plot with confidence bars, and mp4s of the recorded rollouts."""

from __future__ import annotations

import csv
import dataclasses
import enum
import logging
import os
import re
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from maps_vla.data.video import VideoConfig, VideoEncoder
from maps_vla.eval.rollout import EpisodeResult
from maps_vla.eval.wilson import wilson_interval

__all__ = ['Split', 'Summary', 'VariantResult', 'EvalReport']

logger = logging.getLogger(__name__)

_SPLIT_COLOURS = {'id': '#4C72B0', 'ood': '#DD8452'}


class Split(enum.Enum):
    """Whether a task variant was seen in training (in-distribution) or not."""

    ID = 'id'
    OOD = 'ood'


@dataclasses.dataclass(frozen=True)
class Summary:
    """Success count and rate of a group of episodes with its Wilson interval."""

    name: str  # variant name, or 'ID (all)' / 'OOD (all)'
    split: Split
    episodes: int
    successes: int
    rate: float  # successes / episodes
    low: float  # Wilson interval lower bound
    high: float  # Wilson interval upper bound

    @classmethod
    def of(cls, name: str, split: Split, episodes: list[EpisodeResult], confidence: float) -> Summary:
        k, n = sum(e.success for e in episodes), len(episodes)
        low, high = wilson_interval(k, n, confidence)
        return cls(name, split, n, k, k / n if n else 0.0, low, high)


@dataclasses.dataclass
class VariantResult:
    """All episodes of one task variant."""

    name: str  # key of the variants dict
    split: Split
    episodes: list[EpisodeResult]


@dataclasses.dataclass
class EvalReport:
    """The result of `evaluate`; `save(out_dir)` writes every artefact."""

    variants: list[VariantResult]
    fps: float  # env control rate, used for the videos
    confidence: float = 0.95  # Wilson interval coverage
    title: str = 'Evaluation'  # heading of the markdown and the plot

    def summaries(self) -> list[Summary]:
        """One row per variant, then the pooled ID and OOD rows (for splits that have variants)."""
        rows = [Summary.of(v.name, v.split, v.episodes, self.confidence) for v in self.variants]
        for split in Split:
            episodes = [e for v in self.variants if v.split is split for e in v.episodes]
            if episodes:
                rows.append(Summary.of(f'{split.name} (all)', split, episodes, self.confidence))
        return rows

    def aggregate(self, split: Split) -> Summary | None:
        """The pooled row of `split`, None when no variant has it."""
        return next((s for s in self.summaries() if s.name == f'{split.name} (all)'), None)

    def to_markdown(self) -> str:
        pct = int(round(self.confidence * 100))
        lines = [f'# {self.title}', '', f'| variant | split | success | rate | {pct} % CI (Wilson) |',
                 '|---|---|---|---|---|']
        for s in self.summaries():
            name = f'**{s.name}**' if s.name.endswith('(all)') else s.name
            lines.append(f'| {name} | {s.split.value} | {s.successes}/{s.episodes} | {s.rate:.1%} | '
                         f'[{s.low:.1%}, {s.high:.1%}] |')
        return '\n'.join(lines) + '\n'

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write report.md, summary.csv, episodes.csv, success_rate.png and videos/*.mp4.

        Returns:
            artefact name -> path ('video:<file>' for each video).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {'markdown': out / 'report.md', 'summary_csv': out / 'summary.csv',
                 'episodes_csv': out / 'episodes.csv', 'plot': out / 'success_rate.png'}
        paths['markdown'].write_text(self.to_markdown())
        with open(paths['summary_csv'], 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['variant', 'split', 'episodes', 'successes', 'rate', 'ci_low', 'ci_high'])
            for s in self.summaries():
                writer.writerow([s.name, s.split.value, s.episodes, s.successes, f'{s.rate:.6f}', f'{s.low:.6f}',
                                 f'{s.high:.6f}'])
        # the task's facts of each episode's last step (which card or object it ended on), blank where absent
        facts = sorted({k for v in self.variants for e in v.episodes for k in e.info} - {'success'})
        with open(paths['episodes_csv'], 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['variant', 'split', 'seed', 'outcome', 'steps', 'reward', 'inferences',
                             'infer_ms_mean', 'instruction', *facts])
            for v in self.variants:
                for e in v.episodes:
                    writer.writerow([v.name, v.split.value, e.seed, e.outcome.value, e.steps, f'{e.reward:.6g}',
                                     e.inferences, f'{1000 * e.infer_seconds / max(e.inferences, 1):.3f}',
                                     e.instruction, *(e.info.get(k, '') for k in facts)])
        self._plot(paths['plot'])
        for v in self.variants:
            for e in v.episodes:
                if e.frames is not None:
                    name = f'{_slug(v.name)}_seed{e.seed}_{e.outcome.value}.mp4'
                    paths[f'video:{name}'] = self._write_video(out / 'videos' / name, e)
        logger.info('wrote evaluation report to %s', out)
        return paths

    def _plot(self, path: Path) -> None:
        rows = self.summaries()
        fig = Figure(figsize=(max(4.0, 0.9 * len(rows) + 1.5), 3.6), layout='constrained')
        ax = fig.add_subplot()
        x = range(len(rows))
        rates = [s.rate for s in rows]
        errors = [[s.rate - s.low for s in rows], [s.high - s.rate for s in rows]]
        ax.bar(x, rates, yerr=errors, capsize=4, color=[_SPLIT_COLOURS[s.split.value] for s in rows],
               edgecolor=['black' if s.name.endswith('(all)') else 'none' for s in rows])
        for i, s in enumerate(rows):
            ax.text(i, s.high + 0.02, f'{s.successes}/{s.episodes}', ha='center', va='bottom', fontsize=8)
        ax.set_xticks(list(x), [s.name for s in rows], rotation=30, ha='right')
        ax.set_ylim(0, 1.15)
        ax.legend(handles=[Patch(color=c, label=split.upper()) for split, c in _SPLIT_COLOURS.items()
                           if any(s.split.value == split for s in rows)], loc='upper left', bbox_to_anchor=(1.0, 1.0),
                  fontsize=8)
        ax.set_ylabel('success rate')
        ax.set_title(f'{self.title} ({int(round(self.confidence * 100))} % Wilson CI)')
        fig.savefig(path, dpi=120)

    def _write_video(self, path: Path, episode: EpisodeResult) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        _, height, width, _ = episode.frames.shape
        config = VideoConfig(pix_fmt='yuv444p' if height % 2 or width % 2 else 'yuv420p', crf=23)
        encoder = VideoEncoder(path, max(1, int(round(self.fps))), height, width, config)
        try:
            for frame in episode.frames:
                encoder.add(frame)
        finally:
            encoder.close()
        return path


def _slug(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'variant'
