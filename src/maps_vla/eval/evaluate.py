"""Evaluate a policy over task variants (ID and OOD) and seeds (what `maps-vla eval` will run)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from tqdm import tqdm

from maps_vla.eval.report import EvalReport, Split, VariantResult
from maps_vla.eval.rollout import rollout
from maps_vla.policy import BasePolicy
from maps_vla.registry import unknown_name_error

__all__ = ['evaluate']

logger = logging.getLogger(__name__)


def evaluate(env_factory: Callable[[Any], Any], policy: BasePolicy, variants: Mapping[str, Any],
             seeds: Sequence[int], *, max_steps: int, ood: Collection[str] = (), execute_steps: int | None = None,
             smoothing: str | None = None, videos_per_variant: int = 1, video_key: str | None = None,
             confidence: float = 0.95, title: str = 'Evaluation', progress: bool = True) -> EvalReport:
    """Roll out `policy` once per (variant, seed); one env per variant, closed afterwards.

    Args:
        env_factory: builds an env from a variant's config, e.g. `maps_vla.sim.make_env`.
        policy: the policy under test (reset before each episode).
        variants: variant name -> env config.
        seeds: env seeds, the same for every variant.
        max_steps: cap on env steps per episode.
        ood: names of the out-of-distribution variants; the others are in-distribution.
        execute_steps: actions executed per chunk before re-inferring (None: whole chunk; 1 with `smoothing`).
        smoothing: None (chunks run open-loop) or the runtime smoother's method blending overlapping chunks, e.g.
            'temporal_ensemble' (see `rollout`).
        videos_per_variant: record the first this-many seeds of each variant as video.
        video_key: camera to record (see `rollout`).
        confidence: coverage of the Wilson intervals.
        title: report heading.
        progress: show a tqdm bar.

    Returns:
        EvalReport.

    Raises:
        ValueError: no variants or seeds, or an `ood` name that is not a variant.
    """
    if not variants:
        raise ValueError('evaluate needs at least one variant')
    if not seeds:
        raise ValueError('evaluate needs at least one seed')
    for name in ood:
        if name not in variants:
            raise unknown_name_error('OOD variant', name, list(variants))
    results, fps = [], None
    with tqdm(total=len(variants) * len(seeds), desc='eval', unit='episode', disable=not progress) as bar:
        for name, cfg in variants.items():
            split = Split.OOD if name in ood else Split.ID
            env = env_factory(cfg)
            try:
                fps = fps or float(env.control_hz)
                episodes = []
                for i, seed in enumerate(seeds):
                    episodes.append(rollout(env, policy, seed, max_steps, execute_steps=execute_steps,
                                            smoothing=smoothing, record_video=i < videos_per_variant,
                                            video_key=video_key))
                    bar.update(1)
                    bar.set_postfix(variant=name, success=f'{sum(e.success for e in episodes)}/{len(episodes)}')
            finally:
                env.close()
            results.append(VariantResult(name, split, episodes))
            logger.info('%s (%s): %d/%d successes', name, split.value, sum(e.success for e in episodes),
                        len(episodes))
    return EvalReport(results, fps=fps, confidence=confidence, title=title)
