"""String action tokenizer of arXiv 2509.11417: actions written as numbers the LLM already knows.

Each normalized value is rounded to `decimals` digits and written as text ('-0.25'); the A values of a step are
separated by spaces and steps by ';', e.g. ' 0.12 -0.50 1.00;0.10 -0.48 1.00'. The LLM's own tokenizer turns that
into ids (digits, '.', '-'), trained with cross-entropy on the text and `</s>`; inference decodes greedily and parses.
Chunks padded at the end of an episode are written only up to their last valid step.

Parsing is forgiving, because a generated string can be malformed: numbers are found with a regex (junk ignored),
'|' and newlines also separate steps, a single run-on step with a multiple of A numbers is split into steps, extra
values or steps are dropped, a short step takes its missing values from the step before (0 for the first), missing
steps repeat the last step, and values are clipped to [-1, 1]. Every such fix is counted.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from maps_vla.model.heads.base import ACTION_HEADS, IGNORE_INDEX, ActionHead, RobotInputs, VLABackbone, causal_lm_loss
from maps_vla.model.heads.decoding import greedy_decode
from maps_vla.model.vla.configuration_vla import VLAConfig

__all__ = ['StringActionTokenizer', 'StringActionHead']

_NUMBER = re.compile(r'[-+]?(?:\d+(?:\.\d*)?|\.\d+)')
_STEP_SEPARATORS = re.compile(r'[;|\n]')


class StringActionTokenizer:
    """Actions (n, A) <-> text.

    Args:
        chunk_size: K, steps a decoded chunk must have.
        action_dim: A, values per step.
        decimals: digits after the decimal point.
    """

    def __init__(self, chunk_size: int, action_dim: int, decimals: int = 2) -> None:
        if chunk_size <= 0 or action_dim <= 0 or decimals < 0:
            raise ValueError(f'Invalid StringActionTokenizer({chunk_size}, {action_dim}, {decimals})')
        self.chunk, self.dim, self.decimals = chunk_size, action_dim, decimals

    def _value(self, v: float) -> str:
        text = f'{min(max(float(v), -1.0), 1.0):.{self.decimals}f}'
        return text[1:] if text.startswith('-') and float(text) == 0 else text  # no '-0.00'

    def encode(self, actions: np.ndarray | torch.Tensor) -> str:
        """(n, A) normalized actions, 1 <= n <= K -> 'v v v;v v v'."""
        array = actions.detach().cpu().numpy() if isinstance(actions, torch.Tensor) else np.asarray(actions)
        if array.ndim != 2 or array.shape[1] != self.dim or not 1 <= array.shape[0] <= self.chunk:
            raise ValueError(f'Expected actions of shape (1..{self.chunk}, {self.dim}), got {array.shape}')
        return ';'.join(' '.join(self._value(v) for v in step) for step in array)

    def decode(self, text: str) -> tuple[np.ndarray, int]:
        """Text -> ((K, A) float32 in [-1, 1], number of repairs made); never raises on malformed text."""
        repairs = 0
        steps = []
        for segment in _STEP_SEPARATORS.split(text):
            numbers = [float(n) for n in _NUMBER.findall(segment)]
            if numbers:
                steps.append(numbers)
            elif segment.strip():
                repairs += 1  # a step of junk
        if len(steps) == 1 and len(steps[0]) >= 2 * self.dim and len(steps[0]) % self.dim == 0:
            flat = steps[0]
            steps = [flat[i:i + self.dim] for i in range(0, len(flat), self.dim)]
            repairs += 1  # step separators were lost
        if len(steps) > self.chunk:
            repairs += len(steps) - self.chunk
            steps = steps[:self.chunk]
        out = np.zeros((self.chunk, self.dim), dtype=np.float64)
        previous = np.zeros(self.dim)
        for i in range(self.chunk):
            if i >= len(steps):
                out[i] = previous
                repairs += 1
                continue
            values = steps[i]
            if len(values) != self.dim:
                repairs += 1
            row = previous.copy()
            row[:min(len(values), self.dim)] = values[:self.dim]
            out[i] = previous = row
        clipped = np.clip(out, -1, 1)
        repairs += int(np.count_nonzero(clipped != out))
        return clipped.astype(np.float32), repairs


@ACTION_HEADS.register('string')
class StringActionHead(ActionHead):
    """Actions as text through the LLM's own `lm_head` (no parameters of its own)."""

    def __init__(self, config: VLAConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        self.strings = StringActionTokenizer(config.chunk_size, config.action_dim, config.head.decimals)
        self.tokenizer = tokenizer
        self.max_new_tokens = config.head.max_new_tokens or (
            (config.head.decimals + 4) * config.chunk_size * config.action_dim + 8)

    def text_ids(self, actions: torch.Tensor) -> list[int]:
        """Target ids for one (n, A) chunk: ' ' + text, then eos."""
        ids = self.tokenizer(' ' + self.strings.encode(actions), add_special_tokens=False).input_ids
        return ids + [self.tokenizer.eos_token_id]

    def loss(self, vla: VLABackbone, inputs: RobotInputs) -> dict[str, torch.Tensor]:
        if inputs.actions is None:
            raise ValueError('StringActionHead.loss needs inputs.actions')
        actions = inputs.actions.detach().float().cpu()
        mask = (torch.ones(actions.shape[:2], dtype=torch.bool) if inputs.action_mask is None
                else inputs.action_mask.bool().cpu())
        rows = []
        for sample, valid in zip(actions, mask):
            n_valid = int(valid.long().cumprod(0).sum())  # leading valid steps
            if n_valid == 0:
                raise ValueError('A sample has no valid action step (action_mask[b, 0] is False)')
            rows.append(self.text_ids(sample[:n_valid]))
        length = max(len(r) for r in rows)
        device = inputs.prompt_ids.device
        suffix = torch.full((len(rows), length), self.tokenizer.pad_token_id, dtype=torch.long)
        suffix_mask = torch.zeros_like(suffix)
        for i, row in enumerate(rows):
            suffix[i, :len(row)] = torch.tensor(row)
            suffix_mask[i, :len(row)] = 1
        suffix, suffix_mask = suffix.to(device), suffix_mask.to(device)
        labels = suffix.masked_fill(suffix_mask == 0, IGNORE_INDEX)
        sequence = vla.build_sequence(inputs.prefix, inputs.prompt_ids, inputs.prompt_mask, suffix, suffix_mask,
                                      labels)
        ce, _, _ = causal_lm_loss(vla.language_model, vla.run_llm(sequence), sequence.labels)
        return {'loss': ce, 'ce': ce.detach()}

    def predict_action_chunk(self, vla: VLABackbone, inputs: RobotInputs) -> torch.Tensor:
        sequence = vla.build_sequence(inputs.prefix, inputs.prompt_ids, inputs.prompt_mask)
        ids = greedy_decode(vla.language_model, sequence.embeds, sequence.attention_mask, self.max_new_tokens,
                            eos_token_id=self.tokenizer.eos_token_id)
        texts = self.tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True)
        chunks = [self.strings.decode(text)[0] for text in texts]
        return torch.from_numpy(np.stack(chunks)).to(inputs.prefix.device)
