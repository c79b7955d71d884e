"""Action-expert head: K learned action queries attend to the VLM's token features through a small transformer.

OFT's L1 head reads K·A zero-embedded placeholders out of the LLM. At 7 B parameters and 32 layers that works; at a
CPU prior's size (2-4 layers, width 64-128) the placeholders start identical and one or two content-dependent hops
are not enough to find a 1 cm cube among ~100 tokens (issue 13's diagnosis: loss flat at 0.08, 0/20 success, while
a head reading the patch tokens directly reached 0.007). Current VLAs read actions out with an *action expert*
instead (π0, SmolVLA, GR00T): a small transformer over action queries that attends to the VLM's features.

Here the expert's context is, per row, every valid token of the LLM's final hidden states (patches, proprio and the
instruction after the LLM mixed them: the instruction reaches the actions) plus, with `expert_context:
llm_and_prefix` (the default), the projected patch and proprio tokens before the LLM (direct access to the visual
features; `llm` leaves them out, so no instruction-blind path goes around the LLM). With the LLM causal over
[patches, instruction] (`expert_attention: causal`, the default) no patch state depends on the words, and a small
prior learned to read the patches alone and ignore its instruction; 'bidirectional' lets the patch states see the
words, as π0's prefix does. Each expert layer: self-attention among the K queries, cross-attention to the context,
GELU MLP, all pre-norm and residual. A LayerNorm and a Linear map each query to one A-dim action; loss L1 to the normalized
actions over valid steps, as the OFT head.

MAPS treats the head as a new module (λ = 0, `maps.stacks.DEFAULT_NEW_MODULES`), like OFT's head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from maps_vla.model.heads.base import ACTION_HEADS, ActionHead, RobotInputs, VLABackbone, masked_regression_loss
from maps_vla.model.vla.configuration_vla import VLAConfig

__all__ = ['ActionExpertHead']


class _Attention(nn.Module):
    """Multi-head attention from queries (B, Q, w) to keys/values (B, T, w) with a key padding mask."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.o_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        batch, n, width = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, t.shape[1], self.heads, width // self.heads).transpose(1, 2)

        mask = None if key_valid is None else key_valid[:, None, None, :]
        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(context)),
                                             split(self.v_proj(context)), attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(batch, n, width))


class _ExpertLayer(nn.Module):
    """Pre-norm: x += SelfAttn(LN x); x += CrossAttn(LN x, context); x += MLP(LN x)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.self_attn = _Attention(width, heads)
        self.cross_attn = _Attention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_valid: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.self_attn(h, h)
        x = x + self.cross_attn(self.norm2(x), context, context_valid)
        return x + self.mlp(self.norm3(x))


@ACTION_HEADS.register('action_expert')
class ActionExpertHead(ActionHead):
    """K learned queries -> `expert_layers` x [self-attn, cross-attn to the VLM features, MLP] -> (B, K, A)."""

    def __init__(self, config: VLAConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        head = config.head
        d, width = config.llm.hidden_size, head.expert_width
        self.chunk, self.dim = config.chunk_size, config.action_dim
        self.regression_loss = head.regression_loss
        self.bidirectional = head.expert_attention == 'bidirectional'
        self.with_prefix = head.expert_context == 'llm_and_prefix'
        self.queries = nn.Parameter(torch.randn(config.chunk_size, width) * 0.02)
        self.context_norm = nn.LayerNorm(d)
        self.context_proj = nn.Linear(d, width)
        # which context a token came from (LLM output or the raw prefix), added after the projection
        self.source_embedding = nn.Parameter(torch.zeros(2, width))
        self.layers = nn.ModuleList([_ExpertLayer(width, head.expert_heads) for _ in range(head.expert_layers)])
        self.out_norm = nn.LayerNorm(width)
        self.out_proj = nn.Linear(width, config.action_dim)

    def _predict(self, vla: VLABackbone, inputs: RobotInputs) -> torch.Tensor:
        sequence = vla.build_sequence(inputs.prefix, inputs.prompt_ids, inputs.prompt_mask)
        hidden = vla.run_llm(sequence, bidirectional=self.bidirectional)  # (B, T, d)
        context, valid = hidden, sequence.attention_mask.bool()
        source = self.source_embedding[0].expand(hidden.shape[1], -1)
        if self.with_prefix:
            prefix = inputs.prefix.to(hidden.dtype)
            context = torch.cat([hidden, prefix], 1)
            valid = torch.cat([valid, prefix.new_ones(prefix.shape[:2], dtype=torch.bool)], 1)
            source = torch.cat([source, self.source_embedding[1].expand(prefix.shape[1], -1)], 0)
        dtype = self.context_proj.weight.dtype
        context = self.context_proj(self.context_norm(context.to(dtype))) + source
        x = self.queries.expand(context.shape[0], -1, -1)
        for layer in self.layers:
            x = layer(x, context, valid)
        return self.out_proj(self.out_norm(x))

    def loss(self, vla: VLABackbone, inputs: RobotInputs) -> dict[str, torch.Tensor]:
        return masked_regression_loss(self._predict(vla, inputs), inputs, self.regression_loss)

    def predict_action_chunk(self, vla: VLABackbone, inputs: RobotInputs) -> torch.Tensor:
        return self._predict(vla, inputs)
