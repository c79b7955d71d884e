"""`run_demo`: the whole loop in the sim, end to end, with nothing downloaded.

1. collect scripted-expert demos of a task variant the start policy never saw (`finetune_variant`, e.g. new shapes);
2. take the starting policy (by default the pretrained prior shipped in the package, what MAPS is meant for; a
   checkpoint folder; or random weights, for contrast), copy it as the checkpoint `start_policy/` and print its
   MAPS λ table;
3. fine-tune it with MAPS and plain AdamW (same data, steps, learning rate, seed) through `maps-vla train`'s code;
4. evaluate every fine-tuned policy and the start policy on the new variant (ID), the start policy's own variant
   (retention) and a variant held out from everything (OOD), beside the scripted expert and random actions;
   steps 3 and 4 run their jobs in `cfg.workers` processes (one per core: each job is single-threaded);
5. write the report folder (see `maps_vla.demo.report`).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from maps_vla.demo.configuration_demo import DemoConfig

__all__ = ['DemoResult', 'run_demo', 'METHOD_ROWS', 'START_ROW', 'BASELINE_ROWS']

logger = logging.getLogger(__name__)

_MARKER = '.maps_vla_demo'  # marks a folder as demo output, so a rerun may replace it
_OWNED = ('data', 'start_policy', 'train', 'eval', 'summary.md', 'success.md', 'success_rate.png',
          'lambda_table.txt', 'drift.md', 'drift.png', 'rollout.mp4')
_EVAL_SEED = 10_000  # evaluation seeds start here, far from the demo seeds
METHOD_ROWS = {'maps': 'MAPS fine-tuned', 'fft': 'AdamW fine-tuned (FFT)', 'spd': 'uniform SPD fine-tuned'}
START_ROW = 'start policy (no fine-tuning)'
BASELINE_ROWS = ('scripted expert', 'random')  # the ceiling and the floor


@dataclasses.dataclass
class DemoResult:
    """Everything the demo measured and wrote."""

    config: DemoConfig
    out: Path  # the report folder
    demos: int  # episodes saved
    demo_frames: int  # frames in them
    expert_attempts: int  # seeds the expert needed for them
    num_params: int  # parameters of the policy
    lambda_table: str  # MAPS λ per module, printed before training
    losses: dict[str, list[float]]  # fine-tuned row name -> training loss per step
    reports: dict[str, Any]  # success-table row name -> EvalReport
    drift: dict[str, list[Any]]  # fine-tuned row name -> DriftRow per module (vs the starting weights)
    seconds: dict[str, float]  # stage -> wall time
    files: dict[str, Path] = dataclasses.field(default_factory=dict)  # report artefact -> path
    summary: str = ''  # summary.md text


def _prepare_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / _MARKER).exists():
            raise FileExistsError(f'{str(out)!r} exists, is not empty and is not a maps-vla demo folder; '
                                  'choose another --out')
        for name in _OWNED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text('written by maps-vla demo; a rerun with this --out replaces its files\n')


def _start_policy_dir(cfg: DemoConfig) -> Path | None:
    """The checkpoint the demo fine-tunes: the shipped prior, a folder, or None for a random-init model."""
    if cfg.start == 'random':
        return None
    if cfg.start == 'prior':
        from maps_vla.pretrain.shipped import shipped_prior
        return shipped_prior()
    from maps_vla.model.checkpoint import checkpoint_folder

    return checkpoint_folder(cfg.start, 'DemoConfig.start', "'prior', 'random'")


def _random_policy(cfg: DemoConfig, dataset):
    """A random-init policy shaped to the dataset; 'small' widens and deepens the tiny preset."""
    from maps_vla.model.factory import make_policy
    from maps_vla.model.vla.configuration_vla import resized
    from maps_vla.train.configuration_train import ModelSourceConfig
    from maps_vla.train.trainer import build_policy

    policy = build_policy(ModelSourceConfig(preset='tiny', image_size=cfg.policy_image_size), dataset, cfg.seed)
    if cfg.model == 'small':
        torch.manual_seed(cfg.seed)
        small = resized(policy.config, vit_width=192, vit_layers=6, vit_heads=3, llm_width=256, llm_layers=4,
                        llm_heads=4, llm_kv_heads=2, name='demo-small')
        policy = make_policy(small, norm_stats=policy.norm_stats, action_spec=policy.action_spec)
    return policy


def _train_job(train_cfg: Any, device: str, threads: int | None) -> Any:
    from maps_vla.train.device import cpu_or_cuda
    from maps_vla.train.trainer import train

    with cpu_or_cuda(device, threads):
        return train(train_cfg)


def _eval_job(kind: str, source: Any, variants: dict[str, Any], seeds: list[int], device: str, threads: int | None,
              **kwargs: Any) -> Any:
    """Evaluate one row: kind 'policy' (source: a checkpoint folder), 'expert' or 'random' (source: its ActionSpec
    and seed). Everything is built here, so the job runs the same in this process or in a worker."""
    from maps_vla.eval import BoundExpertPolicy, RandomPolicy, evaluate
    from maps_vla.model.vla.modeling_vla import VLAPolicy
    from maps_vla.sim import make_env, make_expert
    from maps_vla.train.device import cpu_or_cuda

    with cpu_or_cuda(device, threads):
        if kind == 'policy':
            candidate, env_factory = VLAPolicy.from_pretrained(source, device=device), make_env
        elif kind == 'expert':
            candidate = BoundExpertPolicy(make_env, make_expert)
            env_factory = candidate.make_env
        else:
            candidate, env_factory = RandomPolicy(source[0], seed=source[1]), make_env
        return evaluate(env_factory, candidate, variants, seeds, **kwargs)


def _run_jobs(pool: ProcessPoolExecutor | None, jobs: Sequence[tuple[Callable[..., Any], tuple, dict]],
              done: Callable[[int], None]) -> list[Any]:
    """Each job's result, in order: in the pool's processes, or one after another here when there is no pool."""
    if pool is None:
        results = []
        for i, (fn, args, kwargs) in enumerate(jobs):
            results.append(fn(*args, **kwargs))
            done(i)
        return results
    futures: list[Future] = [pool.submit(fn, *args, **kwargs) for fn, args, kwargs in jobs]
    for i, future in enumerate(futures):
        future.result()  # re-raises a worker's error here
        done(i)
    return [future.result() for future in futures]


def _camera_size(cfg: DemoConfig, start: Path | None) -> int:
    """The demos' and eval envs' camera side: the configured one, else the one the start policy trained on."""
    if cfg.image_size is not None:
        return cfg.image_size
    if start is None:
        return 64
    from maps_vla.eval import camera_side
    from maps_vla.model.checkpoint import read_config

    return camera_side(read_config(start))  # the config alone: the weights load once, in step 2


def run_demo(cfg: DemoConfig, *, announce: Callable[[str], None] | None = None,
             progress: bool = True) -> DemoResult:
    """Run the loop and write the report folder `cfg.out`.

    Args:
        cfg: sizes, paths and hyperparameters.
        announce: called with a header before each stage and with the λ table (the CLI prints them).
        progress: tqdm bars for collection, training and evaluation.

    Returns:
        DemoResult (its `summary` is the text of summary.md).

    Raises:
        FileExistsError: `cfg.out` holds files that a demo did not write.
        FileNotFoundError: the start checkpoint (or the shipped prior) is missing.
        RuntimeError: cfg.device is CUDA but no CUDA device is available, or the expert saved too few demos.
    """
    from safetensors.torch import load_file

    from maps_vla.data.collect import collect_episodes
    from maps_vla.data.dataset import Dataset
    from maps_vla.data.writer import DatasetWriter
    from maps_vla.demo import report as _report
    from maps_vla.maps.drift import drift_report
    from maps_vla.maps.factory import FinetuneMethodConfig
    from maps_vla.maps.param_groups import lambda_table
    from maps_vla.model.vla.modeling_vla import VLAPolicy
    from maps_vla.sim import EnvConfig, make_env, make_expert
    from maps_vla.train.augment import AugmentConfig
    from maps_vla.train.configuration_train import DataConfig, ModelSourceConfig, TrainConfig
    from maps_vla.train.device import cpu_or_cuda

    say = announce or (lambda text: logger.info('%s', text))
    start_dir = _start_policy_dir(cfg)
    out = Path(cfg.out)
    _prepare_out(out)
    seconds: dict[str, float] = {}
    side = _camera_size(cfg, start_dir)
    size = (side, side)
    with cpu_or_cuda(cfg.device, cfg.threads):
        # 1. demos of the new variant
        start = time.perf_counter()
        say(f'[1/5] collecting {cfg.episodes} scripted-expert demos ({cfg.task}/{cfg.finetune_variant}, {side} px, '
            f'{"mp4" if cfg.video else "PNG"})')
        with make_env(EnvConfig(task=cfg.task, variant=cfg.finetune_variant, image_size=size)) as env:
            with DatasetWriter.create(out / 'data', fps=int(env.control_hz), features=env.features,
                                      video=cfg.video) as writer:
                results = collect_episodes(env, make_expert(env), writer, cfg.episodes,
                                           range(cfg.seed, cfg.seed + 10 * cfg.episodes),
                                           max_steps=cfg.collect_max_steps, progress=progress)
        dataset = Dataset(out / 'data')
        if dataset.num_episodes < cfg.episodes:
            raise RuntimeError(f'the scripted expert saved only {dataset.num_episodes} of {cfg.episodes} demos')
        seconds['collect'] = time.perf_counter() - start

        # 2. starting checkpoint and its λ table
        start = time.perf_counter()
        if start_dir is None:
            say(f'[2/5] starting policy: {cfg.model} ({cfg.policy_image_size} px views), random init')
            policy = _random_policy(cfg, dataset)
            policy.save_pretrained(out / 'start_policy')
        else:
            say(f'[2/5] starting policy: {"the shipped prior" if cfg.start == "prior" else start_dir}')
            shutil.copytree(start_dir, out / 'start_policy')
            policy = VLAPolicy.from_pretrained(out / 'start_policy')
        num_params = sum(p.numel() for p in policy.parameters())
        table = lambda_table(policy, cfg.lambda_max, cfg.schedule)
        (out / 'lambda_table.txt').write_text(table + '\n')
        say(f'MAPS λ per module (schedule={cfg.schedule}, λ_max={cfg.lambda_max:g}):\n{table}')
        del policy
        seconds['start policy'] = time.perf_counter() - start

        # 3. fine-tune with each method on the same data, steps, learning rate and seed (one job per method)
        start = time.perf_counter()
        # spawn, not fork: the parent holds a rendering context and torch's thread pools
        pool = (ProcessPoolExecutor(cfg.workers, mp_context=multiprocessing.get_context('spawn'))
                if cfg.workers > 1 else None)
        try:
            jobs = []
            for method in cfg.methods:
                say(f'[3/5] {METHOD_ROWS[method]}: {cfg.steps} steps, batch {cfg.batch_size}, lr {cfg.lr:g} on '
                    f'{cfg.device}')
                train_cfg = TrainConfig(
                    model=ModelSourceConfig(checkpoint=str(out / 'start_policy'), norm_stats=cfg.norm_stats),
                    data=DataConfig(root=str(out / 'data'), augment=AugmentConfig(crop_area=cfg.crop_area)),
                    method=FinetuneMethodConfig(method=method, lambda_max=cfg.lambda_max, schedule=cfg.schedule,
                                                lr=cfg.lr),
                    out_dir=str(out / 'train' / method), steps=cfg.steps, batch_size=cfg.batch_size,
                    mixed_precision=cfg.mixed_precision, seed=cfg.seed, save_every=cfg.steps, keep_checkpoints=1,
                    log_every=max(1, cfg.steps // 100), drift_every=max(1, cfg.steps // 10), resume=False,
                    progress=progress and pool is None)  # bars of parallel jobs would overwrite each other
                jobs.append((_train_job, (train_cfg, cfg.device, cfg.threads), {}))
            runs = _run_jobs(pool, jobs, lambda i: say(f'      {METHOD_ROWS[cfg.methods[i]]}: done') if pool
                             else None)
            trained = {METHOD_ROWS[method]: run for method, run in zip(cfg.methods, runs)}
            seconds['train'] = time.perf_counter() - start

            # 4. evaluation: the fine-tuned policies, the start policy, the expert (ceiling) and random actions (floor)
            start = time.perf_counter()
            names = [*trained, START_ROW, *BASELINE_ROWS]
            variants = {cfg.finetune_variant: EnvConfig(task=cfg.task, variant=cfg.finetune_variant, image_size=size)}
            for name in (cfg.retention_variant, cfg.ood_variant):
                if name:
                    variants[name] = EnvConfig(task=cfg.task, variant=name, image_size=size)
            say(f'[4/5] evaluating on {", ".join(variants)}, {cfg.eval_episodes} episodes each, for '
                f'{", ".join(names)}')
            policies = {name: VLAPolicy.from_pretrained(result.policy_dir, device=cfg.device)
                        for name, result in trained.items()}
            policies[START_ROW] = VLAPolicy.from_pretrained(out / 'start_policy', device=cfg.device)
            sources = {name: ('policy', result.policy_dir) for name, result in trained.items()}
            sources[START_ROW] = ('policy', out / 'start_policy')
            sources[BASELINE_ROWS[0]] = ('expert', None)
            sources[BASELINE_ROWS[1]] = ('random', (policies[START_ROW].action_spec, cfg.seed))
            seeds = list(range(_EVAL_SEED + cfg.seed, _EVAL_SEED + cfg.seed + cfg.eval_episodes))
            jobs = [(_eval_job, (kind, source, variants, seeds, cfg.device, cfg.threads),
                     dict(max_steps=cfg.eval_max_steps, ood=[v for v in variants if v != cfg.finetune_variant],
                          smoothing=cfg.eval_smoothing, title=f'{cfg.task}: {name}', progress=progress and pool is None,
                          videos_per_variant=1 if name == METHOD_ROWS[cfg.methods[0]] else 0))
                    for name, (kind, source) in sources.items()]
            evaluated = _run_jobs(pool, jobs, lambda i: progress and say(f'      {list(sources)[i]}'))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        reports, files = dict(zip(sources, evaluated)), {}
        for name, report in reports.items():
            saved = report.save(out / 'eval' / _report.slug(name))
            video = next((p for k, p in saved.items() if k.startswith(f'video:{cfg.finetune_variant}')), None)
            if video is not None:
                files['rollout video'] = Path(shutil.copyfile(video, out / 'rollout.mp4'))
        seconds['eval'] = time.perf_counter() - start

        # 5. drift from the starting weights, and the report
        start = time.perf_counter()
        say('[5/5] writing the report')
        reference = load_file(str(out / 'start_policy' / 'model.safetensors'))
        drift = {name: drift_report(policies[name], reference) for name in trained}
    result = DemoResult(config=cfg, out=out, demos=dataset.num_episodes, demo_frames=len(dataset),
                        expert_attempts=len(results), num_params=num_params, lambda_table=table,
                        losses={name: r.losses for name, r in trained.items()}, reports=reports, drift=drift,
                        seconds=seconds, files=files)
    result.files.update(_report.write_report(result))
    seconds['report'] = time.perf_counter() - start
    result.summary = _report.write_summary(result)
    result.files['summary'] = out / 'summary.md'
    return result
