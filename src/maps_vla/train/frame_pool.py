"""Which frames an epoch draws more than once: the first ones, or the ones only the instruction tells apart.

A policy cloned from demos where the target is a choice (which cube, which card) can fit most frames from the
picture alone: once the arm heads for its target, the images show which one it is. Only a few frames need the
words, and they get a small share of the gradient (docs/results/grinningface.md, sessions 10, 11 and 15). The
trainer's `_BatchSampler` draws an epoch as a permutation of the pool built here.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict

import numpy as np

from maps_vla.data.dataset import Dataset

logger = logging.getLogger(__name__)

STATE_KEY = 'observation.state'
ACTION_KEY = 'action'
# An ambiguous frame: its state lies within STATE_TOL standard deviations (every dimension) of its twin's at the same
# frame index, while their action chunks differ by more than ACTION_TOL standard deviations (in some dimension and
# step). In the compact emoji demos one step of the carry moves the state 0.27 std and the action changes by 2.3 std
# where the carry to the farther card goes on (measured on 100 paired scenes).
STATE_TOL = 0.25
ACTION_TOL = 1.0


def early_frames(dataset: Dataset, early: int) -> list[int]:
    """Global indices of each episode's first `early` frames."""
    return [i for episode in dataset.episodes
            for i in range(episode.from_index, min(episode.from_index + early, episode.to_index))]


def _scene_key(dataset: Dataset, episode_index: int) -> bytes:
    """A digest of the episode's first observation (state and every camera): equal only for the same scene."""
    first = dataset.sample(dataset.episodes[episode_index].from_index)
    digest = hashlib.sha1()
    for key in [STATE_KEY, *dataset.image_keys]:
        if key in first:
            digest.update(np.ascontiguousarray(first[key]).tobytes())
    return digest.digest()


def _chunks(actions: np.ndarray, chunk_size: int) -> np.ndarray:
    """(T, chunk_size, d): the action chunk a policy is trained to predict at each frame (the last action repeats)."""
    steps = np.minimum(np.arange(len(actions))[:, None] + np.arange(chunk_size)[None], len(actions) - 1)
    return actions[steps]


def ambiguous_frames(dataset: Dataset, chunk_size: int) -> list[int]:
    """Global indices of the frames whose observation a twin episode shares but whose action chunk it does not.

    Twins are episodes of one scene (the same first observation) with different instructions: `maps-vla collect
    --all-targets` records each scene once per target. A frame is ambiguous when, at the same frame index, a twin's
    state is within STATE_TOL and its action chunk differs by more than ACTION_TOL (both in the dataset's standard
    deviations): only the instruction can tell the two targets apart there.

    Raises:
        ValueError: the dataset lacks an 'observation.state' or 'action' feature.
    """
    missing = [k for k in (STATE_KEY, ACTION_KEY) if k not in dataset.features]
    if missing:
        raise ValueError(f'{str(dataset.root)!r} lacks {missing}: ambiguous frames compare states and actions')
    scenes: dict[bytes, list[int]] = defaultdict(list)
    for e in range(dataset.num_episodes):
        scenes[_scene_key(dataset, e)].append(e)
    stats = dataset.stats
    state_std = np.maximum(np.asarray(stats[STATE_KEY]['std'], np.float64), 1e-6)
    action_std = np.maximum(np.asarray(stats[ACTION_KEY]['std'], np.float64), 1e-6)
    found: set[int] = set()
    for members in scenes.values():
        if len(members) < 2:
            continue
        columns = {e: dataset.numeric_episode(e) for e in members}
        chunks = {e: _chunks(columns[e][ACTION_KEY], chunk_size) for e in members}
        tasks = {e: dataset.episodes[e].tasks for e in members}
        for a in members:
            for b in members:
                if b <= a or tasks[a] == tasks[b]:
                    continue
                n = min(len(chunks[a]), len(chunks[b]))
                same_state = (np.abs(columns[a][STATE_KEY][:n] - columns[b][STATE_KEY][:n]) / state_std).max(1)
                apart = (np.abs(chunks[a][:n] - chunks[b][:n]) / action_std).max((1, 2))
                for t in np.flatnonzero((same_state < STATE_TOL) & (apart > ACTION_TOL)):
                    found.add(dataset.episodes[a].from_index + int(t))
                    found.add(dataset.episodes[b].from_index + int(t))
    return sorted(found)


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
