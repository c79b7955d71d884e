"""OpenVLA discrete action tokens: 256 uniform bins over [-1, 1] mapped onto the last vocabulary ids.

Encoding (OpenVLA `ActionTokenizer`): clip to [-1, 1], `np.digitize` against `linspace(-1, 1, n_bins)` giving
i in [1, n_bins], token = vocab_end - i. Decoding: bin centre number clip(vocab_end - token - 1, 0, n_bins - 2) of the
n_bins - 1 centres. `vocab_end` is 32000 for OpenVLA's Llama (the base vocabulary, ids 31744..31999 overwritten),
len(tokenizer) for MiniVLA's <|extra_i|> tokens. Training: cross-entropy over the full vocabulary on the K·A action
tokens and `</s>` (steps padded past an episode's end, and the `</s>` after them, are not targets); inference: greedy
decoding of K·A tokens restricted to the action ids.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from maps_vla.model.heads.base import ACTION_HEADS, IGNORE_INDEX, ActionHead, RobotInputs, VLABackbone, causal_lm_loss
from maps_vla.model.heads.decoding import greedy_decode
from maps_vla.model.vla.configuration_vla import VLAConfig

__all__ = ['BinActionTokenizer', 'DiscreteBinHead']


class BinActionTokenizer:
    """Maps normalized actions to token ids and back.

    Args:
        vocab_end: one past the last action id; action ids are [vocab_end - n_bins, vocab_end).
        n_bins: number of bin edges (OpenVLA: 256).
    """

    def __init__(self, vocab_end: int, n_bins: int = 256) -> None:
        if vocab_end < n_bins:
            raise ValueError(f'vocab_end {vocab_end} leaves no room for {n_bins} action ids')
        self.vocab_end, self.n_bins = vocab_end, n_bins
        self.bins = torch.from_numpy(np.linspace(-1, 1, n_bins))  # numpy's edges exactly (torch's differ by ulps)
        self.centers = (self.bins[:-1] + self.bins[1:]) / 2

    @property
    def token_ids(self) -> torch.Tensor:
        """(n_bins,) the action token ids, ascending."""
        return torch.arange(self.vocab_end - self.n_bins, self.vocab_end)

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        """Normalized actions (...) -> token ids (...) long."""
        clipped = actions.detach().to(torch.float64).clamp(-1, 1)
        index = torch.bucketize(clipped, self.bins.to(clipped.device), right=True)  # == np.digitize
        return self.vocab_end - index

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (...) -> normalized actions (...) float32 (bin centres)."""
        index = (self.vocab_end - tokens - 1).clamp(0, self.n_bins - 2)
        return self.centers.to(tokens.device)[index].float()


@ACTION_HEADS.register('discrete_bins')
class DiscreteBinHead(ActionHead):
    """Autoregressive action tokens through the LLM's own `lm_head` (no parameters of its own)."""

    def __init__(self, config: VLAConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        vocab_end = config.head.action_vocab_end or len(tokenizer)
        if vocab_end > config.llm.vocab_size:
            raise ValueError(f'ActionHeadConfig.action_vocab_end {vocab_end} exceeds LLMConfig.vocab_size '
                             f'{config.llm.vocab_size}')
        self.tokens = BinActionTokenizer(vocab_end, config.head.n_bins)
        self.chunk, self.dim = config.chunk_size, config.action_dim
        self.eos_id = tokenizer.eos_token_id

    def loss(self, vla: VLABackbone, inputs: RobotInputs) -> dict[str, torch.Tensor]:
        if inputs.actions is None:
            raise ValueError('DiscreteBinHead.loss needs inputs.actions')
        batch = inputs.actions.shape[0]
        tokens = self.tokens.encode(inputs.actions).reshape(batch, -1)
        eos = torch.full((batch, 1), self.eos_id, dtype=torch.long, device=tokens.device)
        suffix = torch.cat([tokens, eos], 1)
        labels = suffix.clone()
        if inputs.action_mask is not None:  # padded steps (and the </s> after them) are not targets
            step_valid = inputs.action_mask.bool()[..., None].expand(-1, -1, self.dim).reshape(batch, -1)
            labels[:, :-1] = labels[:, :-1].masked_fill(~step_valid, IGNORE_INDEX)
            labels[:, -1] = labels[:, -1].masked_fill(~step_valid.all(1), IGNORE_INDEX)
        sequence = vla.build_sequence(inputs.prefix, inputs.prompt_ids, inputs.prompt_mask, suffix,
                                      torch.ones_like(suffix), labels)
        hidden = vla.run_llm(sequence)
        ce, logits, targets = causal_lm_loss(vla.language_model, hidden, sequence.labels)
        is_action = targets != self.eos_id
        predicted = logits.argmax(-1)
        accuracy = (predicted == targets)[is_action].float().mean()
        l1 = (self.tokens.decode(predicted[is_action]) - self.tokens.decode(targets[is_action])).abs().mean()
        return {'loss': ce, 'ce': ce.detach(), 'accuracy': accuracy.detach(), 'l1': l1.detach()}

    def predict_action_chunk(self, vla: VLABackbone, inputs: RobotInputs) -> torch.Tensor:
        sequence = vla.build_sequence(inputs.prefix, inputs.prompt_ids, inputs.prompt_mask)
        ids = greedy_decode(vla.language_model, sequence.embeds, sequence.attention_mask,
                            self.chunk * self.dim, allowed_ids=self.tokens.token_ids)
        return self.tokens.decode(ids).reshape(-1, self.chunk, self.dim)
