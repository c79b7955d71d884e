"""What a fine-tuned policy still knows: VL retention probes and the target choice of its action chunks.

- `vl_probe`: the VLM's own answers, scored as multiple choice by answer log-probability: *where* (name -> which
  of the scene's slots; chance 1/num_cards) and *what* (slot -> which of all 24 emoji names; chance 1/24).
- `grounding_accuracy`: on expert carry frames (cube lifted), the card the policy's chunk heads for: the card
  whose direction from the TCP has the largest cosine with the chunk's summed xy motion (chance 1/num_cards).
  It isolates the one decision that the held-out emojis change; the rest of the task is the same for all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from maps_vla.experiments.grinningface.scenes import ALL_NAMES, GroundingFrame, Scene, what_question, where_question
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.policy import ACTIONS
from maps_vla.sim.tasks.emoji_cards import SLOT_NAMES

__all__ = ['vl_probe', 'grounding_accuracy', 'choose_card']


def _score(policy: VLAPolicy, rows: list[tuple[int, str, str]], images: torch.Tensor, batch_size: int) -> np.ndarray:
    scores = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        batch = {'images': images[[r[0] for r in chunk]], 'question': [r[1] for r in chunk],
                 'answer': [r[2] for r in chunk]}
        scores.append(policy.answer_logprobs(batch).float().cpu().numpy())
    return np.concatenate(scores)


def _multiple_choice(policy: VLAPolicy, images: torch.Tensor, items: list[tuple[int, str, Sequence[str], str]],
                     batch_size: int) -> float:
    rows = [(i, q, c) for i, q, choices, _ in items for c in choices]
    scores = _score(policy, rows, images, batch_size)
    correct, offset = 0, 0
    for _, _, choices, answer in items:
        best = choices[int(np.argmax(scores[offset:offset + len(choices)]))]
        correct += best == answer
        offset += len(choices)
    return correct / len(items)


@torch.no_grad()
def vl_probe(policy: VLAPolicy, scenes: Sequence[Scene], batch_size: int = 96) -> dict[str, float]:
    """{'where': accuracy, 'what': accuracy} over every card of every scene (see the module docstring)."""
    if not scenes:
        raise ValueError('vl_probe needs at least one scene')
    was_training = policy.training
    policy.eval()
    images = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float().div_(255.0)
    where, what = [], []
    for i, scene in enumerate(scenes):
        slots = [SLOT_NAMES[c.slot] for c in scene.cards]
        for card in scene.cards:
            question, answer = where_question(card)
            where.append((i, question, slots, answer))
            question, answer = what_question(card)
            what.append((i, question, ALL_NAMES, answer))
    result = {'where': _multiple_choice(policy, images, where, batch_size),
              'what': _multiple_choice(policy, images, what, batch_size)}
    policy.train(was_training)
    return result


def choose_card(chunk_xy: np.ndarray, tcp_xy: np.ndarray, card_xy: np.ndarray) -> int:
    """Index of the card whose direction from `tcp_xy` best matches the summed motion `chunk_xy` (K, 2)."""
    motion = np.asarray(chunk_xy, dtype=np.float64).sum(0)
    to_cards = np.asarray(card_xy, dtype=np.float64) - np.asarray(tcp_xy, dtype=np.float64)
    cosine = to_cards @ motion / (np.linalg.norm(to_cards, axis=1) * np.linalg.norm(motion) + 1e-12)
    return int(np.argmax(cosine))


@torch.no_grad()
def grounding_accuracy(policy: VLAPolicy, frames: Sequence[GroundingFrame]) -> float:
    """Fraction of carry frames whose predicted chunk heads for the named card."""
    if not frames:
        raise ValueError('grounding_accuracy needs at least one frame')
    was_training = policy.training
    policy.eval()
    hits = 0
    for frame in frames:
        actions = policy.infer(frame.obs)[ACTIONS]
        hits += choose_card(actions[:, :2], frame.tcp_xy, frame.card_xy) == frame.target
    policy.train(was_training)
    return hits / len(frames)
