"""`run_experiment`: the GrinningFace chain, stage by stage, each stage resumable.

1. VL data: scenes with emoji cards from all 24 emojis, where-/what-questions (`scenes.write_vl_dataset`), for
   pre-training the VLM and for the methods that co-train;
2. robot demos: the scripted expert on the train emojis only (LeRobot dataset, the model's cameras + state);
3. the prior: with `prior='pretrain'` a random-init VLM of our architecture at `cfg.model`'s sizes, pre-trained on
   the VL data alone through `maps_vla.train.train` (cotrain_ratio 1); otherwise the shipped prior (pick_place and
   VL about all 24 emojis, `maps-vla pretrain`) or a given policy folder;
4. for every method and seed: fine-tune the prior on the demos (same data, steps and learning rate), then
   measure VL retention (probes), target choice (grounding), the name's alignment (unseen paired scenes:
   `maps_vla.eval.counterfactual`) on train and held-out emojis, closed-loop execution
   and recognition when asked, and drift from the prior; each run's metrics.json is written once it is complete,
   so a rerun skips finished runs and `train` resumes an interrupted one from its last checkpoint;
5. the report (`report.write_report`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from maps_vla.config import load_config, save_config, to_dict
from maps_vla.experiments.grinningface.configuration import GrinningFaceConfig, MethodRun
from maps_vla.experiments.grinningface.scenes import SEED_BASE, SPLITS

__all__ = ['run_experiment', 'run_metrics_path']

logger = logging.getLogger(__name__)

_VOLATILE = ('out', 'progress', 'threads', 'device', 'methods', 'seeds')  # may change between a run and its resume


def run_metrics_path(out: Path, run: MethodRun, seed: int) -> Path:
    return out / 'runs' / run.key / f'seed{seed}' / 'metrics.json'


def _check_out(cfg: GrinningFaceConfig, out: Path) -> GrinningFaceConfig:
    """The folder's experiment: `cfg` with the methods and seeds of the runs asked of `out` before added, saved as
    out/config.yaml. A slice (`seeds=[1]`, a shorter `methods`) trains only itself; the report covers the folder."""
    saved = out / 'config.yaml'
    folder = cfg
    if saved.is_file():
        old = load_config(GrinningFaceConfig, saved)
        new = to_dict(cfg)
        differs = sorted(k for k, v in to_dict(old).items() if k not in _VOLATILE and new.get(k) != v)
        if differs:
            raise ValueError(f'{str(out)!r} holds an experiment with other settings ({", ".join(differs)}); '
                             'choose another out folder or delete it')
        methods = {run.key: run for run in (*old.methods, *cfg.methods)}  # keeps the first order of each key
        folder = dataclasses.replace(cfg, methods=tuple(methods.values()),
                                     seeds=tuple(sorted({*old.seeds, *cfg.seeds})))
    out.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_name(f'{saved.name}.tmp{os.getpid()}')  # private: a slice beside this one writes its own
    save_config(folder, tmp)
    tmp.replace(saved)  # atomic: that slice may read it now
    return folder


def _base_vlm(cfg: GrinningFaceConfig, demos: Path, directory: Path) -> Path:
    """The random-init VLM at cfg.model's sizes and tokenizer, shaped to the demos, saved as a checkpoint."""
    from maps_vla.data.dataset import Dataset
    from maps_vla.experiments.grinningface.scenes import vocabulary_texts
    from maps_vla.model.factory import make_policy
    from maps_vla.model.vla.configuration_vla import resized
    from maps_vla.model.vla.tokenization_vla import build_char_tokenizer, build_word_tokenizer
    from maps_vla.train.configuration_train import ModelSourceConfig
    from maps_vla.train.trainer import build_policy

    if (directory / 'config.json').is_file():
        return directory
    m = cfg.model
    shaped = build_policy(ModelSourceConfig(preset='tiny', image_size=m.image_size), Dataset(demos), 0)
    config = resized(shaped.config, vit_width=m.vit_width, vit_layers=m.vit_layers, vit_heads=m.vit_heads,
                     llm_width=m.llm_width, llm_layers=m.llm_layers, llm_heads=m.llm_heads,
                     llm_kv_heads=m.llm_kv_heads, name='grinningface', prompt_template=m.prompt_template,
                     vl_prompt_template=m.vl_prompt_template)
    tokenizer = build_word_tokenizer(vocabulary_texts(cfg)) if m.tokenizer == 'word' else build_char_tokenizer()
    torch.manual_seed(0)
    make_policy(config, tokenizer=tokenizer, norm_stats=shaped.norm_stats,
                action_spec=shaped.action_spec).save_pretrained(directory)
    return directory


def _given_prior(cfg: GrinningFaceConfig) -> Path:
    """The prior folder of `cfg.prior` ('shipped' or a path), checked against the cameras the experiment renders."""
    from maps_vla.eval import camera_side
    from maps_vla.model.checkpoint import checkpoint_folder, read_config

    if cfg.prior == 'shipped':
        from maps_vla.pretrain.shipped import shipped_prior
        directory = shipped_prior()
    else:
        directory = checkpoint_folder(cfg.prior, 'GrinningFaceConfig.prior', "'pretrain', 'shipped'")
    config = read_config(directory)
    wrong = [f'{key} {mine!r} (the prior: {theirs!r})' for key, mine, theirs in (
        ('model.cameras', tuple(cfg.model.cameras), tuple(config.cameras)),
        ('render_size', cfg.render_size, camera_side(config)))
        if mine != theirs]
    if wrong:
        raise ValueError(f'GrinningFaceConfig does not fit the prior {str(directory)!r}: {"; ".join(wrong)}')
    return directory


def _train_config(cfg: GrinningFaceConfig, **fields: Any):
    from maps_vla.train.configuration_train import TrainConfig

    steps = fields['steps']
    return TrainConfig(mixed_precision=cfg.mixed_precision, save_every=max(1, steps // 4), keep_checkpoints=1,
                       log_every=max(1, steps // 100), drift_every=0, progress=cfg.progress, **fields)


def _pretrain(cfg: GrinningFaceConfig, base: Path, demos: Path, vl: Path, out: Path) -> Path:
    from maps_vla.maps.factory import FinetuneMethodConfig
    from maps_vla.train.configuration_train import DataConfig, ModelSourceConfig
    from maps_vla.train.trainer import train

    if (out / 'policy' / 'config.json').is_file() and not (out / 'checkpoints').exists():
        return out / 'policy'
    result = train(_train_config(
        cfg, model=ModelSourceConfig(checkpoint=str(base)),
        data=DataConfig(root=str(demos), cotrain_root=str(vl), cotrain_ratio=1.0),
        method=FinetuneMethodConfig(method='fft', lr=cfg.pretrain_lr), out_dir=str(out), steps=cfg.pretrain_steps,
        batch_size=cfg.pretrain_batch_size, lr_schedule='cosine', warmup_steps=max(1, cfg.pretrain_steps // 20),
        grad_clip=1.0, seed=0))
    shutil.rmtree(out / 'checkpoints', ignore_errors=True)  # the optimizer state is not needed any more
    return result.policy_dir


def word_alignment(policy, root: Path) -> float | None:
    """Median alignment over the paired scenes at `root`, at their ambiguous frames: how far naming the other card
    moves the policy's chunk the way it moved the expert's (1) or not at all (0; maps_vla.eval.counterfactual).
    None (with a warning) when no pair has such frames."""
    from maps_vla.data.dataset import Dataset
    from maps_vla.eval.counterfactual import counterfactual, find_pairs, pair_frames, summarize

    dataset = Dataset(root)
    pairs = find_pairs(dataset, dataset.num_episodes)
    chunk = policy.config.chunk_size
    rows = counterfactual(policy, dataset, pairs, pair_frames(dataset, pairs, 'ambiguous', chunk), chunk)
    if not rows:
        logger.warning('%s: no pair of scenes with frames only the name tells apart; no alignment measured', root)
        return None
    return summarize(rows)['alignment']


def _evaluate(cfg: GrinningFaceConfig, policy, eval_sets: dict[str, Any], prior_state: dict[str, torch.Tensor],
              ) -> dict[str, Any]:
    from maps_vla.experiments.grinningface.probes import grounding_accuracy, vl_probe
    from maps_vla.maps.drift import drift_report

    metrics: dict[str, Any] = {}
    for split in SPLITS:
        probe = vl_probe(policy, eval_sets['probe'][split])
        metrics[f'probe_where/{split}'] = probe['where']
        metrics[f'probe_what/{split}'] = probe['what']
        metrics[f'grounding/{split}'] = grounding_accuracy(policy, eval_sets['grounding'][split])
        alignment = word_alignment(policy, eval_sets['pairs'][split]) if eval_sets.get('pairs') else None
        if alignment is not None:
            metrics[f'alignment/{split}'] = alignment
    if cfg.rollout_episodes:
        from maps_vla.eval import evaluate
        from maps_vla.sim import make_env

        variants = {s: cfg.env_config(s) for s in SPLITS}
        seeds = list(range(SEED_BASE['rollout'], SEED_BASE['rollout'] + cfg.rollout_episodes))
        report = evaluate(make_env, policy, variants, seeds, max_steps=cfg.rollout_max_steps, ood=['ood_emoji'],
                          smoothing=cfg.rollout_smoothing, videos_per_variant=0, progress=cfg.progress)
        for variant in report.variants:
            # placed: the cube rests on any card (execution); success: on the named one; by_card[named][placed + 1]:
            # episodes per named card (card order, from the robot's right) and where the cube ended (-1: no card)
            by_card = [[0] * (cfg.num_cards + 1) for _ in range(cfg.num_cards)]
            for e in variant.episodes:
                by_card[e.info['named_card']][e.info['placed_card'] + 1] += 1
            metrics[f'rollout/{variant.name}'] = {
                'episodes': len(variant.episodes),
                'placed': sum(e.info['placed_card'] >= 0 for e in variant.episodes),
                'success': sum(e.success for e in variant.episodes),
                'by_card': by_card}
    rows = drift_report(policy, prior_state)
    metrics['drift'] = [dataclasses.asdict(r) for r in rows]
    return metrics


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def run_experiment(cfg: GrinningFaceConfig, *, announce: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Run (or resume) the experiment into `cfg.out` and write its report, which covers every method and seed the
    folder was asked for (see `_check_out`).

    Returns:
        The report's files by name (see `report.write_report`).

    Raises:
        ValueError: `cfg.out` holds an experiment with other settings.
        RuntimeError: cfg.device is CUDA but no CUDA device is available.
    """
    from safetensors.torch import load_file

    from maps_vla.experiments.grinningface import report as _report
    from maps_vla.experiments.grinningface.scenes import (grounding_frames, instruction_pairs, probe_scenes,
                                                          record_demos, write_vl_dataset)
    from maps_vla.maps.factory import FinetuneMethodConfig
    from maps_vla.model.checkpoint import pin_weights
    from maps_vla.model.vla.modeling_vla import VLAPolicy
    from maps_vla.train.augment import AugmentConfig
    from maps_vla.train.configuration_train import DataConfig, ModelSourceConfig
    from maps_vla.train.device import cpu_or_cuda
    from maps_vla.train.trainer import train

    say = announce or (lambda text: logger.info('%s', text))
    out = Path(cfg.out)
    given_prior = None if cfg.pretrains else _given_prior(cfg)
    _check_out(cfg, out)
    total = len(cfg.methods) * len(cfg.seeds)
    with cpu_or_cuda(cfg.device, cfg.threads):
        vl = None
        if cfg.pretrains or any(run.cotrain for run in cfg.methods):
            say(f'[1/5] VL data: {cfg.vl_scenes} scenes per emoji split (16 train + 8 held-out emojis)')
            vl = write_vl_dataset(out / 'vl_data', cfg)
        say(f'[2/5] robot demos: {cfg.demos} scripted-expert episodes with the train emojis only')
        demos = record_demos(cfg, 'train', out / 'demos', cfg.demos, range(10 * cfg.demos), cfg.demo_all_targets,
                             cfg.demo_regrasp_fraction)
        if given_prior is None:
            say(f'[3/5] pre-training the VLM on VL data only: {cfg.pretrain_steps} steps')
            base = _base_vlm(cfg, demos, out / 'base_vlm')
            prior_dir = _pretrain(cfg, base, demos, vl, out / 'pretrain')
        else:
            say(f'[3/5] the prior: {given_prior}')
            prior_dir = given_prior
        pin_weights(out / 'prior_weights.json', prior_dir)  # 'shipped' changes when a new prior ships
        prior_state = load_file(str(prior_dir / 'model.safetensors'))
        eval_sets = {'probe': probe_scenes(cfg), 'grounding': grounding_frames(cfg),
                     'pairs': instruction_pairs(cfg, out / 'eval_pairs') if cfg.alignment_pairs else None}
        prior_metrics = out / 'prior_metrics.json'
        if not prior_metrics.is_file():
            prior = VLAPolicy.from_pretrained(prior_dir, device=cfg.device)
            _write_json(prior_metrics, _evaluate(cfg, prior, eval_sets, prior_state))
            del prior
        say(f'[4/5] fine-tuning: {len(cfg.methods)} methods x {len(cfg.seeds)} seeds, {cfg.finetune_steps} steps each')
        done = 0
        # seed-major: an interrupted experiment still has every method at its first seeds
        for seed in cfg.seeds:
            for run in cfg.methods:
                done += 1
                path = run_metrics_path(out, run, seed)
                if path.is_file():
                    continue
                say(f'      run {done}/{total}: {run.label}, seed {seed}')
                started = time.perf_counter()
                run_dir = path.parent
                data_fields = dict(early_frames=cfg.finetune_early_frames,
                                   early_frames_repeat=cfg.finetune_early_frames_repeat,
                                   ambiguous_frames_repeat=cfg.finetune_ambiguous_frames_repeat,
                                   augment=AugmentConfig(crop_area=cfg.finetune_crop_area))
                data = (DataConfig(root=str(demos), cotrain_root=str(vl), cotrain_ratio=cfg.cotrain_ratio,
                                   **data_fields) if run.cotrain else DataConfig(root=str(demos), **data_fields))
                result = train(_train_config(
                    cfg, model=ModelSourceConfig(checkpoint=str(prior_dir), norm_stats=cfg.norm_stats,
                                                 expert_attention=cfg.finetune_expert_attention), data=data,
                    method=FinetuneMethodConfig(method=run.method, lambda_max=run.lambda_max, schedule=run.schedule,
                                                lr=cfg.finetune_lr, lora=run.lora, lora_rank=cfg.lora_rank),
                    out_dir=str(run_dir / 'train'), steps=cfg.finetune_steps, batch_size=cfg.finetune_batch_size,
                    lr_schedule=cfg.finetune_lr_schedule, warmup_steps=cfg.finetune_warmup_steps,
                    grad_clip=cfg.finetune_grad_clip, seed=seed))
                train_seconds = time.perf_counter() - started
                policy = VLAPolicy.from_pretrained(result.policy_dir, device=cfg.device)
                metrics = _evaluate(cfg, policy, eval_sets, prior_state)
                metrics.update(method=run.key, label=run.label, seed=seed, final_loss=result.losses[-1]
                               if result.losses else None, train_seconds=train_seconds,
                               eval_seconds=time.perf_counter() - started - train_seconds)
                _write_json(path, metrics)
                shutil.rmtree(run_dir / 'train' / 'checkpoints', ignore_errors=True)
        say('[5/5] writing the report')
        # merged again: a slice started at the same moment may have saved its union without this one's runs
        return _report.write_report(_check_out(cfg, out), out)
