"""Record expert demonstrations from an env into a `DatasetWriter` (what `maps-vla collect` will run)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from maps_vla.data import layout as _layout
from maps_vla.data.dataset import ACTION
from maps_vla.data.writer import DatasetWriter

__all__ = ['Expert', 'CollectResult', 'collect_episodes', 'SEEDS_PATH', 'last_seed']

logger = logging.getLogger(__name__)

SEEDS_PATH = 'meta/collect_seeds.json'  # {"last_seed": s}: the last env seed a collection run used up


def last_seed(root: str | Path) -> int | None:
    """The last seed `collect_episodes` used up in the dataset at `root` (None if it recorded none)."""
    path = Path(root) / SEEDS_PATH
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text())['last_seed'])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f'{str(path)!r} must hold {{"last_seed": <int>}}: {err}') from None


def _record_seed(writer: DatasetWriter, seed: int) -> None:
    _layout.write_json_atomic(writer.root / SEEDS_PATH, {'last_seed': int(seed)})


class Expert(Protocol):
    """A scripted or teleop expert: one action (action_dim,) per observation."""

    def reset(self) -> None: ...

    def get_action(self, obs: dict[str, Any]) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class CollectResult:
    """What happened to one attempted episode."""

    seed: int  # env.reset seed
    success: bool  # info['success'] at the last step
    steps: int  # frames recorded
    episode_index: int | None  # index in the dataset, None when discarded
    target: int | None = None  # the candidate the instruction named (all_targets), None: drawn with the scene


def _attempts(env: Any, seeds: Iterable[int], all_targets: bool) -> Iterator[tuple[int, int | None]]:
    """(seed, target) pairs: each seed with target None, or once per candidate of the env's task."""
    for seed in seeds:
        if all_targets:
            yield from ((seed, t) for t in range(env.task.num_targets))
        else:
            yield seed, None


def collect_episodes(env: Any, expert: Expert, writer: DatasetWriter, n: int, seeds: Iterable[int], *,
                     max_steps: int = 300, keep_failures: bool = False,
                     stop_on_success: bool = True, progress: bool = True, action_noise: float = 0.0,
                     all_targets: bool = False, regrasp_fraction: float = 0.0,
                     on_saved: Callable[[int], None] | None = None) -> list[CollectResult]:
    """Roll out `expert` in `env` seed after seed until `n` episodes are saved.

    Each frame holds the observation before the step and the action taken from it; the task is
    `env.instruction`. An episode ends when the env terminates or truncates, at `max_steps`, or (with
    `stop_on_success`) at the first step whose info['success'] is true.

    Args:
        env: follows the maps_vla.sim env API (reset(seed), step(action), instruction).
        expert: has reset() and get_action(obs).
        writer: open dataset writer whose features match the env's observations plus 'action'.
        n: episodes to save.
        seeds: seeds to try, in order; failures use up a seed without saving unless `keep_failures`.
        max_steps: cap on frames per episode.
        keep_failures: save unsuccessful episodes too.
        stop_on_success: end an episode as soon as it succeeds.
        progress: show a tqdm bar.
        action_noise: standard deviation of Gaussian noise added to the executed translation (the first 3 action
            components, in action units: metres per step for 'ee_delta') while the clean expert action is recorded
            (DART, Laskey et al. 2017). Demos then visit states off the expert's path with corrective labels, the
            states a cloned policy drifts into; 0 records the expert's own path. Seeded by the episode seed.
        all_targets: record each seed once per candidate the instruction can name (`env.task.num_targets`: the
            emoji cards, the `choice` cubes): the same picture with each instruction, so only the words tell the
            target apart and a policy cannot fit the demos by remembering scenes. Each counts towards `n`.
        regrasp_fraction: share of episodes whose first grasp the scripted expert closes 4-5 cm beside the object
            on purpose (`PickPlaceExpert.miss_next_grasp`): it lifts an empty gripper, opens and grasps again, the
            recovery a cloned policy needs after a missed grasp. Drawn per seed; 0 records no misses.
        on_saved: called with the episode index after each saved episode.

    Each used-up seed is recorded in `SEEDS_PATH` of the dataset before its episode is committed (so a resumed run
    that starts after `last_seed` never records a seed twice; a crash in between skips one seed).

    Returns:
        One CollectResult per attempted seed; fewer than `n` saved ones (with a warning) if `seeds` ran out.

    Raises:
        ValueError: n < 1 or max_steps < 1, or the observations lack a feature of the dataset.
    """
    if n < 1 or max_steps < 1:
        raise ValueError(f'n and max_steps must be >= 1, got n={n}, max_steps={max_steps}')
    if not action_noise >= 0:
        raise ValueError(f'action_noise must be >= 0, got {action_noise}')
    if not 0.0 <= regrasp_fraction <= 1.0:
        raise ValueError(f'regrasp_fraction must be in [0, 1], got {regrasp_fraction}')
    if regrasp_fraction and not hasattr(expert, 'miss_next_grasp'):
        raise ValueError(f'regrasp_fraction needs a scripted expert that can miss a grasp; got {type(expert).__name__}')
    keys = [k for k in writer.frame_keys if k != ACTION]
    results: list[CollectResult] = []
    saved = 0
    with tqdm(total=n, desc='collect', unit='episode', disable=not progress) as bar:
        for seed, target in _attempts(env, seeds, all_targets):
            expert.reset()
            obs = env.reset(seed) if target is None else env.reset(seed, target=target)
            missing = [k for k in keys if k not in obs]
            if missing:
                raise ValueError(f'the env observation lacks the dataset feature(s) {missing}; it has {sorted(obs)}')
            success, steps = False, 0
            if regrasp_fraction:
                draw = np.random.default_rng([seed, 1])  # apart from the noise stream, which stays as without it
                if draw.random() < regrasp_fraction:
                    expert.miss_next_grasp(draw.choice([-1.0, 1.0]) * draw.uniform(0.04, 0.05))
            rng = np.random.default_rng(seed)
            try:
                for steps in range(1, max_steps + 1):
                    action = np.asarray(expert.get_action(obs), dtype=np.float32)
                    writer.add_frame({**{k: obs[k] for k in keys}, ACTION: action}, task=env.instruction)
                    executed = action
                    if action_noise:
                        executed = action.copy()
                        executed[:3] += rng.normal(0.0, action_noise, 3).astype(np.float32)
                    obs, _, terminated, truncated, info = env.step(executed)
                    success = bool(info.get('success', False))
                    if terminated or truncated or (stop_on_success and success):
                        break
            except BaseException:
                writer.discard_episode()
                raise
            if success or keep_failures:
                _record_seed(writer, seed)
                index = writer.save_episode()
                saved += 1
                bar.update(1)
                if on_saved is not None:
                    on_saved(index)
            else:
                writer.discard_episode()
                _record_seed(writer, seed)
                index = None
            results.append(CollectResult(int(seed), success, steps, index, target))
            logger.debug('seed %d target %s: success=%s steps=%d saved as %s', seed, target, success, steps, index)
            if saved == n:
                break
    if saved < n:
        logger.warning('collected only %d of %d episodes: the %d seeds ran out', saved, n, len(results))
    return results
