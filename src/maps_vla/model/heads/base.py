"""The action-head contract and its registry.

A head decides what follows the prompt in the LLM sequence (zeroed placeholders, action tokens or action text),
how the training loss is computed from it, and how a chunk is decoded at inference. It talks to the policy only
through the small `VLABackbone` protocol, so heads stay independent of `modeling_vla`.

Sequence layout (Prismatic): [prompt token 0 (BOS)] [patches of view 1 .. V] [proprio token] [prompt tokens 1..]
[suffix: the head's tokens] [padding]. Every row is right-padded; `suffix_start[b]` is where row b's suffix begins.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from maps_vla.model.vla.configuration_vla import REGRESSION_LOSSES
from maps_vla.registry import Registry

if TYPE_CHECKING:
    from maps_vla.model.vla.configuration_vla import VLAConfig

__all__ = ['ActionHead', 'ACTION_HEADS', 'RobotInputs', 'Sequence', 'VLABackbone', 'IGNORE_INDEX', 'causal_lm_loss',
           'masked_regression_loss']

IGNORE_INDEX = -100


@dataclasses.dataclass
class RobotInputs:
    """A robot batch after preprocessing (built by `VLAPolicy`)."""

    prefix: torch.Tensor  # (B, P, d) projected patch tokens of all views (+ proprio token)
    prompt_ids: torch.Tensor  # (B, Lp) long, right-padded prompt ids (token 0 = BOS/first token)
    prompt_mask: torch.Tensor  # (B, Lp) long, 1 for real prompt tokens
    actions: torch.Tensor | None = None  # (B, K, A) normalized targets (training only)
    action_mask: torch.Tensor | None = None  # (B, K) bool, False for padded chunk steps (training only)


@dataclasses.dataclass
class Sequence:
    """One multimodal LLM input (see module docstring for the layout)."""

    embeds: torch.Tensor  # (B, T, d)
    attention_mask: torch.Tensor  # (B, T) long, 1 = real token
    labels: torch.Tensor | None  # (B, T) long target ids at their own positions, IGNORE_INDEX elsewhere
    suffix_start: torch.Tensor  # (B,) long, index of the first suffix token in each row


class VLABackbone(Protocol):
    """What a head may use of the policy."""

    config: VLAConfig
    tokenizer: PreTrainedTokenizerBase
    language_model: PreTrainedModel

    def build_sequence(self, prefix: torch.Tensor, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                       suffix_ids: torch.Tensor | None = None, suffix_mask: torch.Tensor | None = None,
                       suffix_labels: torch.Tensor | None = None, n_zero_suffix: int = 0) -> Sequence: ...

    def run_llm(self, sequence: Sequence, bidirectional: bool = False) -> torch.Tensor: ...


def causal_lm_loss(language_model: PreTrainedModel, hidden: torch.Tensor,
                   labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-token cross-entropy, computing logits only where a label exists (the vocabulary can be 152k wide).

    Args:
        language_model: the causal LM (its `lm_head` is used).
        hidden: (B, T, d) final hidden states.
        labels: (B, T) target ids at their own positions, IGNORE_INDEX elsewhere.

    Returns:
        (mean loss, logits (N, vocab) of the N predicted positions, their targets (N,)).
    """
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    if not keep.any():
        raise ValueError('The batch has no target tokens (every label is ignored)')
    logits = language_model.lm_head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, targets[keep]), logits, targets[keep]


def masked_regression_loss(predicted: torch.Tensor, inputs: RobotInputs, kind: str = 'l1') -> dict[str, torch.Tensor]:
    """L1 (OFT) or L2 between (B, K, A) predictions and `inputs.actions`, averaged over valid (unpadded) chunk steps.

    L1 pulls each dimension to its conditional median: on a dimension whose targets sit mostly at one value (the
    expert's dx: 39 % exactly 0, 11 % at full speed) a small model stays at that median for thousands of steps,
    where L2 leaves it within a few hundred (issue 13). The L1 error is reported as 'l1' either way.
    """
    if inputs.actions is None:
        raise ValueError('A regression loss needs inputs.actions (a training batch)')
    if kind not in REGRESSION_LOSSES:
        raise ValueError(f'regression loss must be one of {REGRESSION_LOSSES}, got {kind!r}')
    diff = predicted.float() - inputs.actions.float()
    if inputs.action_mask is not None:
        weight = inputs.action_mask.to(diff.dtype)[..., None].expand_as(diff)
    else:
        weight = torch.ones_like(diff)
    count = weight.sum().clamp(min=1)
    l1 = (diff.abs() * weight).sum() / count
    loss = l1 if kind == 'l1' else (diff.square() * weight).sum() / count
    return {'loss': loss, 'l1': l1.detach()}


class ActionHead(nn.Module, abc.ABC):
    """Base class of action heads; `predict_action_chunk` returns normalized actions in [-1, 1] (roughly)."""

    @abc.abstractmethod
    def loss(self, vla: VLABackbone, inputs: RobotInputs) -> dict[str, torch.Tensor]:
        """Training loss; returns at least {'loss': scalar} plus detached metrics."""

    @abc.abstractmethod
    def predict_action_chunk(self, vla: VLABackbone, inputs: RobotInputs) -> torch.Tensor:
        """(B, K, A) normalized actions for the batch."""


ACTION_HEADS: Registry[type[ActionHead]] = Registry('action head')
