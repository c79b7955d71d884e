"""Does a policy read its instruction? Counterfactual gaps on paired demos (`maps-vla collect --all-targets`).

A paired dataset records each scene once per target: twin episodes whose first observations are identical and whose
instructions differ (`maps_vla.data.twins`). Where the twins still share an observation, whatever separates their
action chunks is the words. Per pair, over the measured frames (the first, or the ambiguous ones:
`maps_vla.data.twins.ambiguous_frames`):

    ratio     = mean |policy(obs, A) - policy(obs, B)| / mean |demo A chunk - demo B chunk|
    alignment = <policy(obs, A) - policy(obs, B), demo A - demo B> / |demo A - demo B|^2

in the dataset's action units. The ratio says how much the words move the policy (no sign): 1 as much as the expert.
The alignment says whether they move it the expert's way: 1 as the expert, 0 elsewhere or not at all, negative the
other way. `error_to_demo` (mean |policy(obs, A) - demo A|) tells a policy that moves at random apart.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from maps_vla.data.dataset import Dataset
from maps_vla.data.twins import ambiguous_frames, scene_twins
from maps_vla.policy import ACTIONS

__all__ = ['find_pairs', 'pair_frames', 'counterfactual', 'summarize', 'SUMMARY_KEYS']

SUMMARY_KEYS = ('ratio', 'alignment', 'policy_gap', 'expert_gap', 'error_to_demo')


def find_pairs(dataset: Dataset, limit: int) -> list[tuple[int, int]]:
    """Up to `limit` pairs of twin episodes (`maps_vla.data.twins.scene_twins`): per scene, its episodes two by two
    in episode order, each pair with different instructions."""
    pairs: list[tuple[int, int]] = []
    for members in scene_twins(dataset):
        waiting: list[int] = []
        for e in members:
            mate = next((w for w in waiting if dataset.episodes[w].tasks != dataset.episodes[e].tasks), None)
            if mate is None:
                waiting.append(e)
            else:
                waiting.remove(mate)
                pairs.append((mate, e))
    return pairs[:limit]


def pair_frames(dataset: Dataset, pairs: list[tuple[int, int]], frame: int | str, chunk: int) -> list[list[int]]:
    """The frames (within the episode) measured for each pair: `frame` itself, or with 'ambiguous' the first
    episode's frames where the pair's states agree and their action chunks part."""
    if frame != 'ambiguous':
        return [[int(frame)] for _ in pairs]
    found = set(ambiguous_frames(dataset, chunk))
    return [[i - dataset.episodes[a].from_index for i in range(dataset.episodes[a].from_index,
                                                               dataset.episodes[a].to_index) if i in found]
            for a, _ in pairs]


def counterfactual(policy: Any, dataset: Dataset, pairs: list[tuple[int, int]], frames: list[list[int]],
                   chunk: int) -> list[dict[str, Any]]:
    """One row per pair with measured frames: its gaps averaged over those frames (see the module docstring).

    `policy` has `infer(obs) -> {'actions': (>= chunk, d)}`; it sees the first episode's observation (cameras, state)
    with each instruction.
    """
    rows = []
    for (ep_a, ep_b), measured in zip(pairs, frames):
        gaps = []
        for frame in measured:
            a = dataset.sample(dataset.episodes[ep_a].from_index + frame, chunk)
            b = dataset.sample(dataset.episodes[ep_b].from_index + frame, chunk)
            obs = {k: v for k, v in a.items() if k.startswith('observation.')}  # the policy's keys: cameras, state
            as_a = policy.infer({**obs, 'task': a['task']})[ACTIONS][:chunk]
            as_b = policy.infer({**obs, 'task': b['task']})[ACTIONS][:chunk]
            expert = a['action'] - b['action']
            gaps.append((np.abs(as_a - as_b).mean(), np.abs(expert).mean(), np.abs(as_a - a['action']).mean(),
                         float(np.sum((as_a - as_b) * expert)), float(np.sum(expert * expert))))
        if not gaps:
            continue
        policy_gap, expert_gap, error, along, norm = (float(v) for v in np.mean(gaps, axis=0))
        rows.append({'episodes': (ep_a, ep_b), 'frames': measured, 'policy_gap': policy_gap,
                     'expert_gap': expert_gap, 'ratio': policy_gap / max(expert_gap, 1e-9), 'error_to_demo': error,
                     'alignment': along / max(norm, 1e-12)})
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The median of each of SUMMARY_KEYS over the pairs.

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError('no pairs to summarize (no frames measured)')
    return {key: float(statistics.median(r[key] for r in rows)) for key in SUMMARY_KEYS}
