"""`run_demo`: the whole loop in the sim, end to end, with nothing downloaded.

1. collect scripted-expert demos of the task's train variant into a LeRobot dataset;
2. build the starting policy (random init: no pretrained weights exist offline) and save it as a checkpoint,
   the way an imported MiniVLA would be, then print its MAPS λ table;
3. fine-tune it with MAPS through the same `train` as `maps-vla train`;
4. evaluate it on the train (ID) and one held-out (OOD) variant beside the scripted expert and a random policy;
5. write the report folder (see `maps_vla.demo.report`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from maps_vla.demo.configuration_demo import DemoConfig

__all__ = ['DemoResult', 'run_demo', 'POLICY_ROWS']

logger = logging.getLogger(__name__)

_MARKER = '.maps_vla_demo'  # marks a folder as demo output, so a rerun may replace it
_OWNED = ('data', 'start_policy', 'train', 'eval', 'summary.md', 'success.md', 'success_rate.png',
          'lambda_table.txt', 'drift.md', 'drift.png', 'rollout.mp4')
_EVAL_SEED = 10_000  # evaluation seeds start here, far from the demo seeds
POLICY_ROWS = ('MAPS fine-tuned', 'scripted expert', 'random')  # rows of the success table, in order


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
    losses: list[float]  # training loss per step
    reports: dict[str, Any]  # POLICY_ROWS name -> EvalReport
    drift: list[Any]  # DriftRow per module: fine-tuned vs starting weights
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


def _start_policy(cfg: DemoConfig, dataset):
    """The policy to fine-tune, shaped to the dataset; 'small' widens and deepens the tiny preset."""
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
        RuntimeError: cfg.device is CUDA but no CUDA device is available, or the expert saved too few demos.
    """
    from safetensors.torch import load_file

    from maps_vla.data.collect import collect_episodes
    from maps_vla.data.dataset import Dataset
    from maps_vla.data.writer import DatasetWriter
    from maps_vla.demo import report as _report
    from maps_vla.eval import BoundExpertPolicy, RandomPolicy, evaluate
    from maps_vla.maps.drift import drift_report
    from maps_vla.maps.factory import FinetuneMethodConfig
    from maps_vla.maps.param_groups import lambda_table
    from maps_vla.model.vla.modeling_vla import VLAPolicy
    from maps_vla.sim import EnvConfig, make_env, make_expert
    from maps_vla.train.configuration_train import DataConfig, ModelSourceConfig, TrainConfig
    from maps_vla.train.device import cpu_or_cuda
    from maps_vla.train.trainer import train

    say = announce or (lambda text: logger.info('%s', text))
    out = Path(cfg.out)
    _prepare_out(out)
    seconds: dict[str, float] = {}
    size = (cfg.image_size, cfg.image_size)
    with cpu_or_cuda(cfg.device, cfg.threads):
        # 1. demos
        start = time.perf_counter()
        say(f'[1/5] collecting {cfg.episodes} scripted-expert demos ({cfg.task}/train, {cfg.image_size} px, '
            f'{"mp4" if cfg.video else "PNG"})')
        with make_env(EnvConfig(task=cfg.task, image_size=size)) as env:
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
        say(f'[2/5] starting policy: {cfg.model} ({cfg.policy_image_size} px views), random init, saved as a '
            'checkpoint')
        policy = _start_policy(cfg, dataset)
        policy.save_pretrained(out / 'start_policy')
        num_params = sum(p.numel() for p in policy.parameters())
        table = lambda_table(policy, cfg.lambda_max, cfg.schedule)
        (out / 'lambda_table.txt').write_text(table + '\n')
        say(f'MAPS λ per module (schedule={cfg.schedule}, λ_max={cfg.lambda_max:g}):\n{table}')
        del policy
        seconds['start policy'] = time.perf_counter() - start

        # 3. MAPS fine-tune
        start = time.perf_counter()
        say(f'[3/5] MAPS fine-tuning: {cfg.steps} steps, batch {cfg.batch_size}, lr {cfg.lr:g} on {cfg.device}')
        train_cfg = TrainConfig(
            model=ModelSourceConfig(checkpoint=str(out / 'start_policy')), data=DataConfig(root=str(out / 'data')),
            method=FinetuneMethodConfig(method='maps', lambda_max=cfg.lambda_max, schedule=cfg.schedule, lr=cfg.lr),
            out_dir=str(out / 'train'), steps=cfg.steps, batch_size=cfg.batch_size,
            mixed_precision=cfg.mixed_precision, seed=cfg.seed, save_every=cfg.steps, keep_checkpoints=1,
            log_every=max(1, cfg.steps // 100), drift_every=max(1, cfg.steps // 10), resume=False, progress=progress)
        trained = train(train_cfg)
        seconds['train'] = time.perf_counter() - start

        # 4. evaluation: the fine-tuned policy between the expert (ceiling) and random actions (floor)
        start = time.perf_counter()
        say(f'[4/5] evaluating on train (ID) and {cfg.ood_variant} (OOD), {cfg.eval_episodes} episodes each, '
            f'for {", ".join(POLICY_ROWS)}')
        final = VLAPolicy.from_pretrained(trained.policy_dir, device=cfg.device)
        expert = BoundExpertPolicy(make_env, make_expert)
        candidates = {
            POLICY_ROWS[0]: (final, make_env, 1),
            POLICY_ROWS[1]: (expert, expert.make_env, 1),
            POLICY_ROWS[2]: (RandomPolicy(final.action_spec, seed=cfg.seed), make_env, 0),
        }
        variants = {name: EnvConfig(task=cfg.task, variant=name, image_size=size)
                    for name in ('train', cfg.ood_variant)}
        seeds = list(range(_EVAL_SEED + cfg.seed, _EVAL_SEED + cfg.seed + cfg.eval_episodes))
        reports, files = {}, {}
        for name, (candidate, env_factory, videos) in candidates.items():
            if progress:
                say(f'      {name}')
            report = evaluate(env_factory, candidate, variants, seeds, max_steps=cfg.eval_max_steps,
                              ood=[cfg.ood_variant], videos_per_variant=videos, title=f'{cfg.task}: {name}',
                              progress=progress)
            reports[name] = report
            saved = report.save(out / 'eval' / _report.slug(name))
            if name == POLICY_ROWS[0]:
                video = next((p for k, p in saved.items() if k.startswith('video:train')), None)
                if video is not None:
                    files['rollout video'] = Path(shutil.copyfile(video, out / 'rollout.mp4'))
        seconds['eval'] = time.perf_counter() - start

        # 5. drift from the starting weights, and the report
        start = time.perf_counter()
        say('[5/5] writing the report')
        drift = drift_report(final, load_file(str(out / 'start_policy' / 'model.safetensors')))
    result = DemoResult(config=cfg, out=out, demos=dataset.num_episodes, demo_frames=len(dataset),
                        expert_attempts=len(results), num_params=num_params, lambda_table=table,
                        losses=trained.losses, reports=reports, drift=drift, seconds=seconds, files=files)
    result.files.update(_report.write_report(result))
    seconds['report'] = time.perf_counter() - start
    result.summary = _report.write_summary(result)
    result.files['summary'] = out / 'summary.md'
    return result
