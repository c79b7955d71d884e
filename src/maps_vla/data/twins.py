"""Twin episodes: one scene recorded once per instruction (`maps-vla collect --all-targets`), and the frames where
only the instruction tells them apart.

Where twins still share an observation but not an action chunk, a policy can fit the demo only by reading the words.
The trainer draws those frames more often (`maps_vla.train.frame_pool`) and the counterfactual measures reading
there (`maps_vla.eval.counterfactual`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from maps_vla.data.dataset import Dataset

__all__ = ['scene_twins', 'ambiguous_frames', 'STATE_TOL', 'ACTION_TOL']

STATE_KEY = 'observation.state'
ACTION_KEY = 'action'
# An ambiguous frame: its state lies within STATE_TOL standard deviations (every dimension) of its twin's at the same
# frame index, while their action chunks differ by more than ACTION_TOL standard deviations (in some dimension and
# step). In the compact emoji demos one step of the carry moves the state 0.27 std and the action changes by 2.3 std
# where the carry to the farther card goes on (measured on 100 paired scenes).
STATE_TOL = 0.25
ACTION_TOL = 1.0


def _scene_key(dataset: Dataset, episode_index: int) -> bytes:
    """A digest of the episode's first observation (state and every camera): equal only for the same scene."""
    first = dataset.sample(dataset.episodes[episode_index].from_index)
    digest = hashlib.sha1()
    for key in [STATE_KEY, *dataset.image_keys]:
        if key in first:
            digest.update(np.ascontiguousarray(first[key]).tobytes())
    return digest.digest()


def scene_twins(dataset: Dataset) -> list[list[int]]:
    """The episodes of each scene (the same first observation) recorded with more than one instruction, in episode
    order; scenes recorded once, or only with one instruction, are left out."""
    scenes: dict[bytes, list[int]] = defaultdict(list)
    for e in range(dataset.num_episodes):
        scenes[_scene_key(dataset, e)].append(e)  # dicts keep insertion order: groups come in episode order
    return [members for members in scenes.values()
            if len({dataset.episodes[e].tasks for e in members}) > 1]


def _chunks(actions: np.ndarray, chunk_size: int) -> np.ndarray:
    """(T, chunk_size, d): the action chunk a policy is trained to predict at each frame (the last action repeats)."""
    steps = np.minimum(np.arange(len(actions))[:, None] + np.arange(chunk_size)[None], len(actions) - 1)
    return actions[steps]


def ambiguous_frames(dataset: Dataset, chunk_size: int) -> list[int]:
    """Global indices of the frames whose observation a twin episode shares but whose action chunk it does not.

    A frame is ambiguous when, at the same frame index, a twin with another instruction has a state within STATE_TOL
    and an action chunk more than ACTION_TOL apart (both in the dataset's standard deviations): only the instruction
    can tell the two targets apart there.

    Raises:
        ValueError: the dataset lacks an 'observation.state' or 'action' feature.
    """
    missing = [k for k in (STATE_KEY, ACTION_KEY) if k not in dataset.features]
    if missing:
        raise ValueError(f'{str(dataset.root)!r} lacks {missing}: ambiguous frames compare states and actions')
    stats = dataset.stats
    state_std = np.maximum(np.asarray(stats[STATE_KEY]['std'], np.float64), 1e-6)
    action_std = np.maximum(np.asarray(stats[ACTION_KEY]['std'], np.float64), 1e-6)
    found: set[int] = set()
    for members in scene_twins(dataset):
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
