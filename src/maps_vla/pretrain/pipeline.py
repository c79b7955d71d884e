"""`run_pretrain`: the prior's chain, stage by stage, each resumable (a rerun skips finished stages and `train`
resumes from its newest checkpoint).

1. robot demos: the scripted expert on each pick_place variant of `cfg.variants`, one LeRobot dataset;
2. VL data: emoji scenes with where-/what-questions about all 24 emojis (the GrinningFace generator), and
   optionally pick_place scenes with where-/what-questions about their objects (`scene_vl`);
3. the initial policy: `cfg.preset` shaped to the demos, with a word tokenizer over every text the prior reads;
4. training: AdamW (FFT), cosine schedule, gradient clipping, VL co-training at `cfg.cotrain_ratio`;
5. evaluation: closed-loop success per variant (Wilson intervals) and a model card beside the weights.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from maps_vla.config import load_config, save_config, to_dict
from maps_vla.pretrain.configuration_pretrain import PretrainConfig

__all__ = ['run_pretrain', 'vocabulary_texts']

logger = logging.getLogger(__name__)

# may change between a run and its resume (more steps continue the run)
_VOLATILE = ('out', 'progress', 'threads', 'eval_episodes', 'eval_max_steps', 'heldout_variants', 'steps',
             'save_every', 'health_every', 'probe_scenes', 'eval_smoothing')


_INIT_WEIGHTS = 'init_weights.json'  # the sha256 of `init`'s weights, pinned at the first run


def _check_out(cfg: PretrainConfig, out: Path) -> None:
    saved = out / 'config.yaml'
    if saved.is_file():
        old, new = to_dict(load_config(PretrainConfig, saved)), to_dict(cfg)
        differs = sorted(k for k in new if k not in _VOLATILE and old.get(k) != new[k])
        if differs:
            raise ValueError(f'{str(out)!r} holds a pre-training run with other settings ({", ".join(differs)}); '
                             'choose another out folder or delete it')
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, saved)


def _env_config(cfg: PretrainConfig, variant: str):
    from maps_vla.sim import EnvConfig

    return EnvConfig(task='pick_place', variant=variant, image_size=(cfg.image_size, cfg.image_size))


def _collect(cfg: PretrainConfig, root: Path) -> Path:
    from maps_vla.data.collect import collect_episodes
    from maps_vla.data.writer import DatasetWriter
    from maps_vla.sim import make_env, make_expert

    if (root / 'meta' / 'info.json').is_file():
        return root
    staging = root.with_name(root.name + '.tmp')
    shutil.rmtree(staging, ignore_errors=True)
    with make_env(_env_config(cfg, cfg.variants[0])) as env:
        features, fps = env.features, int(env.control_hz)
    with DatasetWriter.create(staging, fps=fps, features=features, video=False) as writer:
        for i, variant in enumerate(cfg.variants):
            with make_env(_env_config(cfg, variant)) as env:
                first = cfg.seed + 100_000 * i  # each variant its own seed range
                collect_episodes(env, make_expert(env), writer, cfg.demos_per_variant,
                                 range(first, first + 10 * cfg.demos_per_variant), max_steps=cfg.demo_max_steps,
                                 action_noise=cfg.demo_noise, all_targets=variant in cfg.paired_variants,
                                 regrasp_fraction=cfg.demo_regrasp_fraction, progress=cfg.progress)
    staging.rename(root)
    return root


def _vl_data(cfg: PretrainConfig, root: Path) -> Path | None:
    """The co-training folder: emoji cards (`vl/`), pick_place scenes (`scene_vl/`), or both merged (`cotrain/`)."""
    from maps_vla.experiments.grinningface.scenes import write_vl_dataset
    from maps_vla.pretrain.scene_vl import write_scene_vl
    from maps_vla.train.cotrain import merge_vl_folders

    folders = []
    if cfg.vl_scenes:
        folders.append(write_vl_dataset(root / 'vl', _emoji_config(cfg)))
    if cfg.scene_vl:
        folders.append(write_scene_vl(root / 'scene_vl', cfg.variants, cfg.scene_vl, cfg.image_size,
                                      progress=cfg.progress))
    if len(folders) < 2:
        return folders[0] if folders else None
    return merge_vl_folders(folders, root / 'cotrain')


def vocabulary_texts(prompt_template: str, vl_prompt_template: str, *, scene_vl: bool = False) -> list[str]:
    """Every text the prior reads or answers: pick_place instructions for every colour and shape (held-out ones
    too, so new words are not unknown tokens), the emoji task's instructions, questions and answers, and with
    `scene_vl` the pick_place scene questions (positions), which a prior without them need not know."""
    from maps_vla.experiments.grinningface.configuration import GrinningFaceConfig, ModelSizeConfig
    from maps_vla.experiments.grinningface.scenes import vocabulary_texts as emoji_texts
    from maps_vla.sim.tasks.base import SHAPES
    from maps_vla.sim.tasks.pick_place import HELDOUT_COLORS, TRAIN_COLORS

    texts = [prompt_template.format(instruction=f'put the {color} {shape} on the plate')
             for color in (*TRAIN_COLORS, *HELDOUT_COLORS) for shape in SHAPES]
    emoji = GrinningFaceConfig(model=ModelSizeConfig(prompt_template=prompt_template,
                                                     vl_prompt_template=vl_prompt_template))
    texts += emoji_texts(emoji)
    if scene_vl:
        from maps_vla.pretrain.scene_vl import vocabulary_texts as scene_texts

        texts += scene_texts(vl_prompt_template)
    return texts


def _initial_policy(cfg: PretrainConfig, demos: Path, directory: Path) -> Path:
    from maps_vla.data.dataset import Dataset
    from maps_vla.model.checkpoint import checkpoint_folder, pin_weights
    from maps_vla.model.factory import make_policy
    from maps_vla.model.vla.modeling_vla import VLAPolicy
    from maps_vla.model.vla.tokenization_vla import build_word_tokenizer
    from maps_vla.train.configuration_train import ModelSourceConfig
    from maps_vla.train.trainer import build_policy

    if cfg.init:
        init = checkpoint_folder(cfg.init, 'PretrainConfig.init', 'null (the preset, from random weights)')
        pin_weights(Path(cfg.out) / _INIT_WEIGHTS, init)  # a resumed run continues the weights it started from
    if (directory / 'config.json').is_file():
        return directory
    if cfg.init:  # the same weights under this run's head settings
        start = VLAPolicy.from_pretrained(init)
        config = start.config.replace(head=dataclasses.replace(start.config.head,
                                                               expert_attention=cfg.expert_attention))
        policy = make_policy(config, tokenizer=start.tokenizer, norm_stats=start.processor.norm_stats,
                             action_spec=start.action_spec)
        policy.load_state_dict(start.state_dict())
        policy.save_pretrained(directory)
        return directory
    shaped = build_policy(ModelSourceConfig(preset=cfg.preset, image_size=cfg.model_image_size,
                                            use_state=cfg.use_state), Dataset(demos), cfg.seed)
    config = shaped.config.replace(head=dataclasses.replace(shaped.config.head, regression_loss=cfg.regression_loss,
                                                            expert_attention=cfg.expert_attention))
    tokenizer = build_word_tokenizer(vocabulary_texts(config.prompt_template, config.vl_prompt_template,
                                                      scene_vl=cfg.scene_vl > 0))
    vocab = -(-len(tokenizer) // 64) * 64
    if vocab > config.llm.vocab_size:
        config = config.replace(llm=dataclasses.replace(config.llm, vocab_size=vocab))
    torch.manual_seed(cfg.seed)
    make_policy(config, tokenizer=tokenizer, norm_stats=shaped.norm_stats,
                action_spec=shaped.action_spec).save_pretrained(directory)
    return directory


def _train(cfg: PretrainConfig, initial: Path, demos: Path, vl: Path | None, out: Path) -> Path:
    from maps_vla.maps.factory import FinetuneMethodConfig
    from maps_vla.train.augment import AugmentConfig
    from maps_vla.train.configuration_train import DataConfig, ModelSourceConfig, TrainConfig
    from maps_vla.train.trainer import train

    done = out / 'done.json'  # written after the final export: a rerun does not export the policy again
    if (done.is_file() and json.loads(done.read_text()).get('steps') == cfg.steps
            and (out / 'policy' / 'config.json').is_file()):
        return out / 'policy'
    result = train(TrainConfig(
        # a continued prior keeps the action statistics its head was trained with (same robot and action space)
        model=ModelSourceConfig(checkpoint=str(initial), norm_stats='checkpoint' if cfg.init else 'dataset'),
        data=DataConfig(root=str(demos), cotrain_root=str(vl) if vl else None, cotrain_ratio=cfg.cotrain_ratio,
                        augment=AugmentConfig(crop_area=cfg.crop_area, state_dropout=cfg.state_dropout),
                        early_frames=cfg.early_frames, early_frames_repeat=cfg.early_frames_repeat),
        method=FinetuneMethodConfig(method='fft', lr=cfg.lr), out_dir=str(out), steps=cfg.steps,
        batch_size=cfg.batch_size, lr_schedule='cosine', warmup_steps=max(1, cfg.steps // 20),
        grad_clip=cfg.grad_clip, save_every=cfg.save_every, keep_checkpoints=1, log_every=max(1, cfg.steps // 200),
        drift_every=0, health_every=cfg.health_every, progress=cfg.progress, seed=cfg.seed))
    done.write_text(json.dumps({'steps': result.steps}))
    return result.policy_dir


def _evaluate(cfg: PretrainConfig, policy: Any, out: Path) -> dict[str, Any]:
    from maps_vla.eval import evaluate
    from maps_vla.sim import make_env

    variants = {v: _env_config(cfg, v) for v in (*cfg.variants, *cfg.heldout_variants)}
    seeds = list(range(10_000, 10_000 + cfg.eval_episodes))  # away from every demo seed
    report = evaluate(make_env, policy, variants, seeds, max_steps=cfg.eval_max_steps, ood=cfg.heldout_variants,
                      smoothing=cfg.eval_smoothing, videos_per_variant=1, title='The prior, closed loop',
                      progress=cfg.progress)
    report.save(out)
    return {'summaries': [dataclasses.asdict(s) | {'split': s.split.value} for s in report.summaries()],
            'markdown': report.to_markdown()}


def _emoji_config(cfg: PretrainConfig) -> Any:
    """The emoji scenes of the VL co-training data and of the probe, as the GrinningFace experiment renders them."""
    from maps_vla.experiments.grinningface.configuration import GrinningFaceConfig

    compact = cfg.vl_emoji_layout == 'compact'
    # GrinningFaceConfig wants >= 1 of each; a stage that is off (0) never asks for its scenes
    return GrinningFaceConfig(render_size=cfg.image_size, camera=cfg.vl_camera, vl_scenes=max(cfg.vl_scenes, 1),
                              probe_scenes=max(cfg.probe_scenes, 1), num_cards=2 if compact else 4,
                              emoji_layout=cfg.vl_emoji_layout, progress=cfg.progress)


def _vl_probe(cfg: PretrainConfig, policy: Any) -> dict[str, float]:
    """Multiple-choice accuracy of the VLM's own answers on unseen emoji scenes: 'where/<split>' (which slot holds
    the named card; chance 1/num_cards) and 'what/<split>' (which of the 24 emojis a slot holds; chance 1/24)."""
    from maps_vla.experiments.grinningface.probes import vl_probe
    from maps_vla.experiments.grinningface.scenes import probe_scenes

    return {f'{question}/{split}': accuracy for split, split_scenes in probe_scenes(_emoji_config(cfg)).items()
            for question, accuracy in vl_probe(policy, split_scenes).items()}


def _probe_section(cfg: PretrainConfig, probe: dict[str, float] | None) -> list[str]:
    from maps_vla.experiments.grinningface.scenes import ALL_NAMES

    if not probe:
        return ['## VL probe', '', 'not run (probe_scenes=0)', '']
    chance = f'where {1 / _emoji_config(cfg).num_cards:.0%}, what {1 / len(ALL_NAMES):.1%}'
    rows = [f'| {key} | {value:.1%} |' for key, value in probe.items()]
    return [f'## VL probe ({cfg.probe_scenes} unseen emoji scenes per split; chance: {chance})', '',
            '\n'.join(['| question / emoji split | accuracy |', '|---|---|', *rows]), '']


def _model_card(cfg: PretrainConfig, policy_dir: Path, policy: Any, metrics: dict[str, Any], minutes: float) -> Path:
    params = sum(p.numel() for p in policy.parameters())
    c = policy.config
    card = policy_dir / 'MODEL_CARD.md'
    card.write_text('\n'.join([
        '# maps_vla prior (pick_place + emoji VL co-training, CPU-sized)', '',
        f'- Built by: `maps-vla pretrain --config <this run\'s config.yaml>` (config below), {minutes:.0f} min of '
        'wall time for this invocation on the machine that ran it.',
        *([f'- Continued from: `{cfg.init}` (model.safetensors sha256 '
           f'{json.loads((Path(cfg.out) / _INIT_WEIGHTS).read_text())["sha256"]}), its weights, tokenizer and '
           'action statistics kept.'] if cfg.init else []),
        f'- Architecture: preset `{cfg.preset}`, {params / 1e6:.2f} M parameters; views {c.cameras} at '
        f'{c.vision.image_size} px (patch {c.vision.patch_size}), ViTs {c.vision.dino.hidden_size} wide x '
        f'{c.vision.dino.num_layers}, {c.llm.arch} {c.llm.hidden_size} x {c.llm.num_layers}, head `{c.head.type}`; '
        'word tokenizer over the prior\'s texts.',
        f'- Robot data: scripted-expert pick_place demos, {cfg.demos_per_variant} per variant of {list(cfg.variants)} '
        f'(seed ranges start at {cfg.seed} + 100000·i), {cfg.image_size} px cameras'
        + (f', executed with DART noise σ = {cfg.demo_noise} m/step' if cfg.demo_noise else '')
        + (f', {cfg.demo_regrasp_fraction:.0%} of them missing their first grasp on purpose and recovering'
           if cfg.demo_regrasp_fraction else '')
        + (f'; {list(cfg.paired_variants)} recorded once per target (same picture, each instruction)'
           if cfg.paired_variants else '')
        + (f'; each demo\'s first {cfg.early_frames} frames drawn {cfg.early_frames_repeat}x per epoch'
           if cfg.early_frames and cfg.early_frames_repeat > 1 else '')
        + '; no emoji-task demos.',
        f'- VL co-training: {cfg.vl_scenes} emoji scenes per split (all 24 emojis, {cfg.vl_emoji_layout} layout)'
        + (f', {cfg.scene_vl} pick_place scenes per variant (object positions)' if cfg.scene_vl else '')
        + f', ratio {cfg.cotrain_ratio}.',
        f'- Training: {cfg.steps} steps, batch {cfg.batch_size}, AdamW lr {cfg.lr} cosine, clip {cfg.grad_clip}, '
        f'crop area {cfg.crop_area}, seed {cfg.seed}.', '',
        '## Closed-loop success (evaluation seeds 10000+)', '',
        ('Each chunk runs open-loop (all its actions), then the policy is asked again.' if cfg.eval_smoothing is None
         else f'The policy is asked every step; the runtime smoother\'s `{cfg.eval_smoothing}` blends the chunks '
              f'covering each step (`maps-vla eval --smoothing {cfg.eval_smoothing}`).'), '',
        metrics['markdown'], '',
        *_probe_section(cfg, metrics.get('vl_probe')),
        '## Config', '', '```yaml', (Path(cfg.out) / 'config.yaml').read_text().rstrip(), '```', '']))
    return card


def run_pretrain(cfg: PretrainConfig, *, announce: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Run (or resume) the chain into `cfg.out`.

    Returns:
        {'policy': the trained policy folder (with MODEL_CARD.md), 'metrics': metrics.json}.

    Raises:
        ValueError: `cfg.out` holds a run with other settings.
    """
    say = announce or (lambda text: logger.info('%s', text))
    out = Path(cfg.out)
    _check_out(cfg, out)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    say(f'[1/5] robot demos: {cfg.demos_per_variant} per variant of {", ".join(cfg.variants)}')
    demos = _collect(cfg, out / 'demos')
    say(f'[2/5] vision-language data: {cfg.vl_scenes} emoji scenes per split, {cfg.scene_vl} pick_place scenes '
        'per variant')
    vl = _vl_data(cfg, out)
    say(f'[3/5] initial policy: {cfg.init or "preset " + cfg.preset}')
    initial = _initial_policy(cfg, demos, out / 'initial')
    say(f'[4/5] training: {cfg.steps} steps')
    policy_dir = _train(cfg, initial, demos, vl, out / 'train')
    say(f'[5/5] closed-loop evaluation: {cfg.eval_episodes} episodes per variant')
    from maps_vla.model.vla.modeling_vla import VLAPolicy

    policy = VLAPolicy.from_pretrained(policy_dir).eval()  # loaded once for the evaluation and the model card
    metrics = _evaluate(cfg, policy, out / 'eval') if cfg.eval_episodes else {'summaries': [], 'markdown': ''}
    if cfg.probe_scenes:
        say(f'VL probe: {cfg.probe_scenes} unseen emoji scenes per split')
        metrics['vl_probe'] = _vl_probe(cfg, policy)
    path = out / 'metrics.json'
    path.write_text(json.dumps({k: v for k, v in metrics.items() if k != 'markdown'}, indent=1))
    _model_card(cfg, policy_dir, policy, metrics, (time.perf_counter() - start) / 60)
    return {'policy': policy_dir, 'metrics': path}
