"""Overfit-then-replay: can a training setting memorise a handful of demos and replay them from their own seeds?

The cheapest end-to-end test of a setting (camera size, model, learning rate, steps, chunk execution): collect a
few scripted demos (or take recorded ones with the env seeds they came from), train on them, then roll the policy
out in the sim from exactly those seeds. The expert's own actions replay those episodes exactly, so a setting
that cannot reach a high replay rate here (≥ 90 % is the gate) will not generalise either; a low one points at
the pipeline or the architecture rather than at the amount of data. `maps-vla overfit` runs it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from maps_vla.control.smoothing import check_smoothing
from maps_vla.eval.report import EvalReport
from maps_vla.eval.wilson import wilson_interval

if TYPE_CHECKING:
    from maps_vla.train.configuration_train import TrainConfig
    from maps_vla.train.trainer import TrainResult

__all__ = ['OverfitConfig', 'OverfitResult', 'run_overfit']

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OverfitConfig:
    """What to memorise and how to judge the replay."""

    task: str = 'pick_place'  # sim task of the demos and the replay
    variant: str = 'train'  # task variant of the demos and the replay
    episodes: int = 5  # demos to collect (ignored with `data`)
    seed: int = 0  # first collection seed; a failed expert attempt uses up a seed
    image_size: int = 64  # camera side (px) of the collected demos
    data: str | None = None  # recorded demos to use instead of collecting (needs `seeds`)
    seeds: tuple[int, ...] = ()  # with `data`: the env seeds the demos were recorded from, in any order
    max_steps: int = 200  # env steps per episode at most, collection and replay alike
    execute_steps: int | None = None  # actions run per chunk before re-inferring (None: the whole chunk)
    # None: chunks run open-loop; 'temporal_ensemble' re-infers every step and averages the chunks covering it, as
    # the prior is evaluated (its card), so the gate judges the setting the way it will be run
    smoothing: str | None = None
    threshold: float = 0.9  # replay success rate the setting must reach
    videos: int = 1  # replay videos saved
    out: str = 'outputs/overfit'  # data/, train/, replay/ and overfit.json go here
    device: str = 'cpu'  # torch device of the replayed policy

    def __post_init__(self) -> None:
        object.__setattr__(self, 'seeds', tuple(int(s) for s in self.seeds))
        if self.episodes < 1 or self.max_steps < 1:
            raise ValueError(f'OverfitConfig.episodes and max_steps must be >= 1, got {self.episodes}, '
                             f'{self.max_steps}')
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f'OverfitConfig.threshold must be in [0, 1], got {self.threshold}')
        if self.data and not self.seeds:
            raise ValueError('OverfitConfig.data needs the env seeds its demos were recorded from (seeds / --seeds)')
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f'OverfitConfig.seeds must be distinct, got {self.seeds}')
        if self.execute_steps is not None and self.execute_steps < 1:
            raise ValueError(f'OverfitConfig.execute_steps must be >= 1 or None, got {self.execute_steps}')
        check_smoothing(self.smoothing, 'OverfitConfig.smoothing')


@dataclasses.dataclass
class OverfitResult:
    """The replay of the training seeds."""

    seeds: list[int]  # the training demos' env seeds, replayed
    successes: int  # replays that succeeded
    interval: tuple[float, float]  # Wilson 95 % interval of the replay rate
    threshold: float  # the gate
    train: TrainResult  # the training run
    report: EvalReport  # the replay rollouts

    @property
    def rate(self) -> float:
        return self.successes / len(self.seeds)

    @property
    def passed(self) -> bool:
        return self.rate >= self.threshold

    def summary(self) -> str:
        low, high = self.interval
        return (f'overfit-then-replay: {self.successes}/{len(self.seeds)} training seeds replayed ({self.rate:.0%}, '
                f'Wilson 95 % [{low:.0%}, {high:.0%}]) after {self.train.steps} steps; gate {self.threshold:.0%}: '
                f'{"PASS" if self.passed else "FAIL"}')


def _collect(cfg: OverfitConfig, root: Path, progress: bool) -> list[int]:
    from maps_vla.data.collect import collect_episodes
    from maps_vla.data.writer import DatasetWriter
    from maps_vla.sim import EnvConfig, make_env, make_expert

    side = (cfg.image_size, cfg.image_size)
    with make_env(EnvConfig(task=cfg.task, variant=cfg.variant, image_size=side)) as env:
        with DatasetWriter.create(root, fps=int(env.control_hz), features=env.features, video=False) as writer:
            results = collect_episodes(env, make_expert(env), writer, cfg.episodes,
                                       range(cfg.seed, cfg.seed + 10 * cfg.episodes), max_steps=cfg.max_steps,
                                       progress=progress)
    seeds = [r.seed for r in results if r.episode_index is not None]
    if len(seeds) < cfg.episodes:
        raise RuntimeError(f'the scripted expert saved only {len(seeds)} of {cfg.episodes} demos of '
                           f'{cfg.task}/{cfg.variant} (seeds {cfg.seed}..{cfg.seed + 10 * cfg.episodes - 1}); '
                           'raise max_steps or pick other seeds')
    return seeds


def run_overfit(cfg: OverfitConfig, train_cfg: TrainConfig, progress: bool = True) -> OverfitResult:
    """Collect (or take) the demos, train on them with `train_cfg`, replay their seeds; writes `cfg.out`.

    `train_cfg`'s data root and output folder are replaced (`<out>/data` or `cfg.data`, `<out>/train`), and the
    run starts fresh (resume off).

    Raises:
        FileExistsError: `<out>/data` exists (pass it as `data` with its seeds, or choose a new `out`).
        RuntimeError: the expert failed to record enough demos.
        ValueError / FileNotFoundError: from the trainer (bad config or data).
    """
    from maps_vla.data.dataset import Dataset
    from maps_vla.eval.evaluate import evaluate
    from maps_vla.eval.policies import camera_side
    from maps_vla.model.vla.modeling_vla import VLAPolicy
    from maps_vla.sim import EnvConfig, make_env
    from maps_vla.train.trainer import train

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.data:
        root, seeds = Path(cfg.data), list(cfg.seeds)
        episodes = Dataset(root).num_episodes
        if episodes != len(seeds):
            logger.warning('%s holds %d episodes but %d seeds were given: the replay covers the seeds given',
                           root, episodes, len(seeds))
    else:
        root = out / 'data'
        if root.exists():
            raise FileExistsError(f'{str(root)!r} exists: pass it as --data with the seeds it was recorded from '
                                  f'(see {str(out / "overfit.json")!r}), or choose another --out')
        seeds = _collect(cfg, root, progress)
    logger.info('training on %d demos of %s/%s (seeds %s)', len(seeds), cfg.task, cfg.variant, seeds)
    train_cfg = dataclasses.replace(train_cfg, data=dataclasses.replace(train_cfg.data, root=str(root)),
                                    out_dir=str(out / 'train'), resume=False)
    trained = train(train_cfg)

    policy = VLAPolicy.from_pretrained(trained.policy_dir, device=cfg.device)
    side = camera_side(policy)
    variants = {cfg.variant: EnvConfig(task=cfg.task, variant=cfg.variant, image_size=(side, side))}
    report = evaluate(make_env, policy, variants, seeds, max_steps=cfg.max_steps, execute_steps=cfg.execute_steps,
                      smoothing=cfg.smoothing, videos_per_variant=cfg.videos,
                      title=f'overfit-then-replay: {cfg.task}/{cfg.variant}', progress=progress)
    report.save(out / 'replay')
    successes = sum(e.success for e in report.variants[0].episodes)
    result = OverfitResult(seeds, successes, wilson_interval(successes, len(seeds)), cfg.threshold, trained, report)
    health = trained.health
    (out / 'overfit.json').write_text(json.dumps({
        'task': cfg.task, 'variant': cfg.variant, 'data': str(root), 'seeds': seeds, 'successes': successes,
        'episodes': len(seeds), 'rate': result.rate, 'wilson_95': list(result.interval),
        'smoothing': cfg.smoothing, 'threshold': cfg.threshold, 'passed': result.passed, 'train_steps': trained.steps,
        'final_loss': trained.losses[-1] if trained.losses else None, 'camera_side': side,
        'health': dataclasses.asdict(health) if health is not None else None}, indent=2) + '\n')
    return result
