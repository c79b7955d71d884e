"""Greedy autoregressive decoding from multimodal prefix embeddings, with a KV cache.

Our sequences are right-padded (Prismatic layout); generation needs every row to end at the same position, so the
rows are first rotated to left padding and given position ids that skip the padding (the same positions each row
had unpadded).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, PreTrainedModel

__all__ = ['greedy_decode']


def _left_align(embeds: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    length = embeds.shape[1]
    shift = length - mask.sum(1)  # (B,) padding tokens at the end of each row
    source = (torch.arange(length, device=mask.device)[None] - shift[:, None]) % length
    return embeds.gather(1, source[..., None].expand_as(embeds)), mask.gather(1, source)


@torch.no_grad()
def greedy_decode(language_model: PreTrainedModel, embeds: torch.Tensor, attention_mask: torch.Tensor,
                  max_new_tokens: int, eos_token_id: int | None = None,
                  allowed_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy decoding with causal attention.

    Args:
        language_model: a transformers causal LM (`.model` backbone + `.lm_head`).
        embeds: (B, T, d) right-padded input embeddings.
        attention_mask: (B, T) 1 for real tokens.
        max_new_tokens: tokens to generate (fewer if every row emitted `eos_token_id`).
        eos_token_id: stop token; after it a row keeps emitting it. None: always generate `max_new_tokens`.
        allowed_ids: (V',) ids the argmax is restricted to; None: the whole vocabulary.

    Returns:
        (B, n) long generated ids, n <= max_new_tokens.
    """
    embeds, mask = _left_align(embeds, attention_mask.long())
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    cache = DynamicCache(config=language_model.config)
    embed_tokens = language_model.get_input_embeddings()
    restrict = None
    if allowed_ids is not None:
        restrict = torch.full((language_model.lm_head.out_features,), float('-inf'), device=embeds.device)
        restrict[allowed_ids.to(embeds.device)] = 0.0
    finished = torch.zeros(embeds.shape[0], dtype=torch.bool, device=embeds.device)
    generated = []
    for _ in range(max_new_tokens):
        hidden = language_model.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                      past_key_values=cache, use_cache=True).last_hidden_state[:, -1]
        logits = language_model.lm_head(hidden).float()
        if restrict is not None:
            logits = logits + restrict
        token = logits.argmax(-1)
        if eos_token_id is not None:
            token = torch.where(finished, torch.full_like(token, eos_token_id), token)
            finished |= token == eos_token_id
        generated.append(token)
        if eos_token_id is not None and bool(finished.all()):
            break
        embeds = embed_tokens(token)[:, None]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        positions = positions[:, -1:] + 1
    return torch.stack(generated, 1)
