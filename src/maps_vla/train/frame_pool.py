"""Which frames an epoch draws more than once: the first ones, or the ones only the instruction tells apart.

A policy cloned from demos where the target is a choice (which cube, which card) can fit most frames from the
picture alone: once the arm heads for its target, the images show which one it is. Only a few frames need the
words, and they get a small share of the gradient (docs/results/grinningface.md, sessions 10, 11 and 15). The
trainer's `_BatchSampler` draws an epoch as a permutation of the pool built here.
"""

from __future__ import annotations

import logging

from maps_vla.data.dataset import Dataset
from maps_vla.data.twins import ambiguous_frames

logger = logging.getLogger(__name__)


def early_frames(dataset: Dataset, early: int) -> list[int]:
    """Global indices of each episode's first `early` frames."""
    return [i for episode in dataset.episodes
            for i in range(episode.from_index, min(episode.from_index + early, episode.to_index))]


def frame_pool(dataset: Dataset, chunk_size: int, early: int = 0, early_repeat: int = 1,
               ambiguous_repeat: int = 1) -> list[int] | None:
    """Every frame index once, plus the first `early` frames of each episode `early_repeat` - 1 more times and the
    ambiguous frames `ambiguous_repeat` - 1 more times (a frame in both gets both). None: no repeats."""
    extra: list[int] = []
    if early and early_repeat > 1:
        # each frame's repeats side by side, ambiguous frames' in rounds: the orders the runs in docs/results drew
        extra += [i for i in early_frames(dataset, early) for _ in range(early_repeat - 1)]
    if ambiguous_repeat > 1:
        found = ambiguous_frames(dataset, chunk_size)
        if not found:
            logger.warning('%s: no ambiguous frames (no scene recorded with two instructions: collect --all-targets), '
                           'so ambiguous_frames_repeat changes nothing', dataset.root)
        else:
            logger.info('%s: %d ambiguous frames of %d, drawn %dx: %.0f %% of each epoch', dataset.root, len(found),
                        len(dataset), ambiguous_repeat,
                        100 * len(found) * ambiguous_repeat / (len(dataset) + len(found) * (ambiguous_repeat - 1)))
        extra += found * (ambiguous_repeat - 1)
    return list(range(len(dataset))) + extra if extra else None
