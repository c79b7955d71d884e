"""Scenes of the emoji task turned into data: VL pre-training examples, robot demos, probe scenes, grounding frames
and the paired scenes of the instruction counterfactual.

Every scene is a reset of the sim's `emoji` task (cards from one split: the 16 train emojis or the 8 held-out
ones), so pre-training images, robot demos and evaluation share one renderer and one camera. Seeds of the
different uses live in disjoint ranges, so no evaluation scene is ever trained on.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from maps_vla.experiments.grinningface.configuration import GrinningFaceConfig
from maps_vla.sim import make_env, make_expert
from maps_vla.sim.emoji import EMOJI_HELDOUT, EMOJI_TRAIN, emoji_name
from maps_vla.sim.expert import Phase
from maps_vla.sim.tasks.emoji_cards import INSTRUCTION, SLOT_NAMES, Card
from maps_vla.train.cotrain import write_vl_folder

__all__ = ['SPLITS', 'Scene', 'GroundingFrame', 'where_question', 'what_question', 'vocabulary_texts',
           'write_vl_dataset', 'record_demos', 'probe_scenes', 'grounding_frames', 'instruction_pairs', 'SEED_BASE']

logger = logging.getLogger(__name__)

SPLITS = {'train': EMOJI_TRAIN, 'ood_emoji': EMOJI_HELDOUT}  # emoji task variant -> its emojis
ALL_NAMES = tuple(emoji_name(e) for e in EMOJI_TRAIN + EMOJI_HELDOUT)
# first env seed of each use; demos start at 0 and use far fewer than 1e6 seeds
SEED_BASE = {'vl': 1_000_000, 'probe': 2_000_000, 'grounding': 3_000_000, 'rollout': 4_000_000, 'pairs': 5_000_000}
_IMAGE = 'observation.images.third_person'


@dataclasses.dataclass(frozen=True)
class Scene:
    """One rendered scene: the third-person image and its cards."""

    image: np.ndarray  # uint8 (H, W, 3) RGB
    cards: tuple[Card, ...]


@dataclasses.dataclass(frozen=True)
class GroundingFrame:
    """An expert carry frame: the cube is lifted and the next motion must head for the named card."""

    obs: dict[str, Any]  # the env observation (cameras, state, task)
    tcp_xy: np.ndarray  # (2,) TCP position in the base frame, m
    card_xy: np.ndarray  # (num_cards, 2) card centres, m
    target: int  # index of the named card


def where_question(card: Card) -> tuple[str, str]:
    """('where is the <name>?', slot name) — the referring-expression grounding the robot task needs."""
    return f'where is the {emoji_name(card.emoji)}?', SLOT_NAMES[card.slot]


def what_question(card: Card) -> tuple[str, str]:
    """('what is on the <slot> card?', emoji name) — recognition of the emoji itself."""
    return f'what is on the {SLOT_NAMES[card.slot]} card?', emoji_name(card.emoji)


def vocabulary_texts(cfg: GrinningFaceConfig) -> list[str]:
    """Every text the experiment's model reads or answers: questions, answers and instructions about all 24
    emojis, in the model's prompt templates (the word tokenizer's vocabulary)."""
    texts = []
    for emoji in EMOJI_TRAIN + EMOJI_HELDOUT:
        texts.append(cfg.model.prompt_template.format(instruction=INSTRUCTION.format(name=emoji_name(emoji))))
        for slot in range(len(SLOT_NAMES)):
            for question, answer in (where_question(Card(emoji, slot, (0.0, 0.0))),
                                     what_question(Card(emoji, slot, (0.0, 0.0)))):
                texts += [cfg.model.vl_prompt_template.format(question=question), answer]
    return texts


def _scenes(cfg: GrinningFaceConfig, split: str, seeds: range, desc: str) -> list[Scene]:
    env = make_env(cfg.env_config(split))
    try:
        scenes = []
        for seed in tqdm(seeds, desc=desc, unit='scene', disable=not cfg.progress):
            obs = env.reset(seed)
            scenes.append(Scene(np.asarray(obs[_IMAGE]).copy(), tuple(env.task.cards(env.physics))))
        return scenes
    finally:
        env.close()


def write_vl_dataset(root: str | Path, cfg: GrinningFaceConfig) -> Path:
    """Write a co-training folder (`vl.jsonl` + PNGs, see `maps_vla.train.cotrain`) covering all 24 emojis.

    `cfg.vl_scenes` scenes per emoji split; each scene gives one where- and one what-question per card. The folder
    is built beside `root` and renamed into place, so an interrupted run leaves no half-written dataset behind. An
    existing folder is kept.

    Returns:
        The folder.
    """
    def scenes():
        for split in SPLITS:
            base = SEED_BASE['vl'] + (0 if split == 'train' else 500_000)
            for i, scene in enumerate(_scenes(cfg, split, range(base, base + cfg.vl_scenes), f'VL scenes ({split})')):
                yield (f'{split}_{i:06d}', scene.image,
                       [qa for card in scene.cards for qa in (where_question(card), what_question(card))])

    return write_vl_folder(root, scenes())


def record_demos(cfg: GrinningFaceConfig, split: str, root: Path, n: int, seeds: range, all_targets: bool,
                 regrasp_fraction: float = 0.0) -> Path:
    """`n` scripted-expert episodes of the emoji task on `split`'s emojis, as a dataset of the prior's cameras, state
    and action at `root` (kept when it exists; written in a staging folder and published whole)."""
    from maps_vla.data.collect import collect_episodes
    from maps_vla.data.layout import publish_folder, staging_folder
    from maps_vla.data.writer import DatasetWriter

    if (root / 'meta' / 'info.json').is_file():
        return root
    staging = staging_folder(root)
    keep = {f'observation.images.{c}' for c in cfg.model.cameras} | {'observation.state', 'action'}
    with make_env(cfg.env_config(split)) as env:
        features = {k: v for k, v in env.features.items() if k in keep}
        with DatasetWriter.create(staging, fps=int(env.control_hz), features=features, video=False) as writer:
            collect_episodes(env, make_expert(env), writer, n, seeds, max_steps=cfg.demo_max_steps,
                             all_targets=all_targets, regrasp_fraction=regrasp_fraction, progress=cfg.progress)
    return publish_folder(staging, root)


def instruction_pairs(cfg: GrinningFaceConfig, root: Path) -> dict[str, Path]:
    """Per split, `cfg.alignment_pairs` unseen scenes recorded once per card (`root/<split>`): the counterfactual's
    pairs, the same picture with each emoji named (maps_vla.eval.counterfactual)."""
    return {split: record_demos(cfg, split, root / split, cfg.alignment_pairs * cfg.num_cards,
                                range(SEED_BASE['pairs'] + k * 500_000, SEED_BASE['pairs'] + (k + 1) * 500_000),
                                all_targets=True)
            for k, split in enumerate(SPLITS)}


def probe_scenes(cfg: GrinningFaceConfig) -> dict[str, list[Scene]]:
    """`cfg.probe_scenes` unseen scenes per split for the retention probes."""
    starts = {split: SEED_BASE['probe'] + k * 500_000 for k, split in enumerate(SPLITS)}
    return {split: _scenes(cfg, split, range(start, start + cfg.probe_scenes), f'probe scenes ({split})')
            for split, start in starts.items()}


def grounding_frames(cfg: GrinningFaceConfig) -> dict[str, list[GroundingFrame]]:
    """Per split, the first `cfg.grounding_frames` carry frames of `cfg.grounding_episodes` scripted-expert
    episodes (at most `cfg.demo_max_steps` steps) on unseen seeds.

    In a carry frame the cube is already grasped and lifted, so where the policy's next chunk heads tells which
    card it chose; everything before is the same for every target.
    """
    out: dict[str, list[GroundingFrame]] = {}
    for k, split in enumerate(SPLITS):
        env = make_env(cfg.env_config(split))
        expert = make_expert(env)
        frames: list[GroundingFrame] = []
        base = SEED_BASE['grounding'] + k * 500_000
        try:
            for seed in tqdm(range(base, base + cfg.grounding_episodes), desc=f'grounding frames ({split})',
                             unit='episode', disable=not cfg.progress):
                obs = env.reset(seed)
                expert.reset()
                kept = 0
                for _ in range(cfg.demo_max_steps):
                    action = expert.get_action(obs)
                    if expert.phase is Phase.CARRY:
                        cards = env.task.cards(env.physics)
                        frames.append(GroundingFrame(
                            {k2: (v.copy() if isinstance(v, np.ndarray) else v) for k2, v in obs.items()},
                            np.asarray(env.physics.tcp_pos[:2], dtype=np.float64).copy(),
                            np.array([c.position for c in cards]), env.task.target_index))
                        kept += 1
                        if kept == cfg.grounding_frames:
                            break
                    obs, _, terminated, truncated, _ = env.step(action)
                    if terminated or truncated:
                        break
                if kept < cfg.grounding_frames:
                    logger.warning('grounding seed %d (%s): the expert gave only %d carry frames', seed, split, kept)
        finally:
            env.close()
        out[split] = frames
    return out
