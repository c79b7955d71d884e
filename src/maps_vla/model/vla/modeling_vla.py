"""`VLAPolicy`: a MiniVLA / OpenVLA-OFT style vision-language-action policy built from transformers parts.

Modules, registered in this order under these names (a contract with the MAPS param-group code):
    vision_backbone.featurizer          Dinov2WithRegistersModel        (+ frozen_featurizer with the dual encoder)
    vision_backbone.fused_featurizer    SiglipVisionModel               (+ frozen_fused_featurizer)
    projector.fc1/fc2/fc3               3-layer GELU MLP (Prismatic "fused-gelu-mlp")
    language_model                      Qwen2ForCausalLM or LlamaForCausalLM
    action_head                         from ACTION_HEADS (parameters only for 'l1_regression')
    proprio_projector.fc1/fc2           Linear-GELU-Linear, one token after the patches (absent if proprio_dim == 0)

Training batches (`forward`) are dicts of:
    images        (B, V, 3, H, W) uint8 or float in [0, 1] (or (B, V, 6, S, S) already preprocessed)
    task          list of B instruction strings, or input_ids/attention_mask (B, L) of the full prompt
    state         (B, S) proprio, already normalized to [-1, 1] (like actions); needed when proprio_dim > 0
    actions       (B, K, A) normalized to [-1, 1]
    action_mask   (B, K) bool, False for chunk steps padded past the end of an episode (optional)
A vision-language co-training batch (2509.11417) instead has `question` and `answer` (lists of B strings) and
`images`; its loss is cross-entropy on the answer tokens only, through the same vision stack and LLM.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, Qwen2Config, \
    Qwen2ForCausalLM

from maps_vla.model.heads.base import ACTION_HEADS, IGNORE_INDEX, RobotInputs, Sequence, causal_lm_loss
from maps_vla.model.vla.configuration_vla import LLMConfig, VLAConfig
from maps_vla.model.vla.processor_vla import NormStats, VLAProcessor
from maps_vla.model.vla.tokenization_vla import load_tokenizer
from maps_vla.model.vla.vision_vla import FusedVisionBackbone
from maps_vla.policy import ACTIONS, EE_DELTA_ACTION, OBS_IMAGE_PREFIX, OBS_STATE, TASK, ActionSpec, BasePolicy

__all__ = ['VLAPolicy', 'Projector', 'ProprioProjector']

logger = logging.getLogger(__name__)


class Projector(nn.Module):
    """fc1 (vision -> 4·fused vision width) -> GELU -> fc2 (-> d) -> GELU -> fc3 (d -> d)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act_fn1 = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.act_fn2 = nn.GELU()
        self.fc3 = nn.Linear(out_dim, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act_fn2(self.fc2(self.act_fn1(self.fc1(features)))))


class ProprioProjector(nn.Module):
    """OFT proprio projector: fc1 (S -> d) -> GELU -> fc2 (d -> d)."""

    def __init__(self, proprio_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(proprio_dim, out_dim)
        self.act_fn1 = nn.GELU()
        self.fc2 = nn.Linear(out_dim, out_dim)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act_fn1(self.fc1(state)))


def _build_llm(cfg: LLMConfig, pad_token_id: int | None) -> PreTrainedModel:
    kwargs = dict(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                  num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
                  num_key_value_heads=cfg.num_kv_heads, rms_norm_eps=cfg.rms_norm_eps, rope_theta=cfg.rope_theta,
                  max_position_embeddings=cfg.max_position_embeddings, tie_word_embeddings=cfg.tie_word_embeddings,
                  pad_token_id=cfg.pad_token_id if cfg.pad_token_id is not None else pad_token_id,
                  attn_implementation=cfg.attn_implementation)
    if cfg.arch == 'qwen2':
        return Qwen2ForCausalLM(Qwen2Config(**kwargs))
    return LlamaForCausalLM(LlamaConfig(**kwargs))


def _ids_rows(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids, mask


class VLAPolicy(nn.Module, BasePolicy):
    """Vision-language-action policy (see the module docstring for modules and batch keys).

    Args:
        config: the architecture.
        tokenizer: the LLM tokenizer; None loads `config.tokenizer` ('char' or a local folder).
        norm_stats: q01/q99 action (and state) statistics; None: identity (outputs stay in [-1, 1]).
        action_spec: what the action dimensions mean; saved with the checkpoint.
    """

    def __init__(self, config: VLAConfig, tokenizer: PreTrainedTokenizerBase | None = None,
                 norm_stats: NormStats | None = None, action_spec: ActionSpec | None = None) -> None:
        super().__init__()
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer)
        if len(tokenizer) > config.llm.vocab_size:
            raise ValueError(f'Tokenizer has {len(tokenizer)} tokens but LLMConfig.vocab_size is '
                             f'{config.llm.vocab_size}')
        if norm_stats is None:
            logger.warning('No normalization stats given: actions are returned in normalized [-1, 1] units')
        self.config = config
        self.tokenizer = tokenizer
        self.processor = VLAProcessor(config, tokenizer, norm_stats)
        self.action_spec = action_spec or EE_DELTA_ACTION
        if self.action_spec.dim != config.action_dim:
            raise ValueError(f'ActionSpec has {self.action_spec.dim} dimensions, VLAConfig.action_dim is '
                             f'{config.action_dim}')
        d = config.llm.hidden_size
        self.vision_backbone = FusedVisionBackbone(config.vision)
        self.projector = Projector(config.vision.feature_dim, 4 * config.vision.fused_dim, d)
        self.language_model = _build_llm(config.llm, tokenizer.pad_token_id)
        self.action_head = ACTION_HEADS.get(config.head.type)(config, tokenizer)
        self.register_module('proprio_projector',
                             ProprioProjector(config.proprio_dim, d) if config.proprio_dim else None)

    @property
    def device(self) -> torch.device:
        return self.projector.fc1.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.projector.fc1.weight.dtype

    @property
    def norm_stats(self) -> NormStats:
        return self.processor.norm_stats

    def gradient_checkpointing_enable(self) -> None:
        """Recompute activations of every ViT block and LLM layer in the backward pass."""
        kwargs = {'gradient_checkpointing_kwargs': {'use_reentrant': False}}
        for module in (self.vision_backbone.featurizer, self.vision_backbone.fused_featurizer, self.language_model):
            module.gradient_checkpointing_enable(**kwargs)

    # --- building blocks (also used by the heads) --------------------------------------------------------------
    def encode_observation(self, pixel_values: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """Visual (+ proprio) prefix tokens.

        Args:
            pixel_values: (B, V, 6, S, S) preprocessed views.
            state: (B, S) normalized proprio, or None (no proprio token, e.g. co-training batches).

        Returns:
            (B, V·patches [+ 1], d): view 1's patches, view 2's patches, then the proprio token.
        """
        batch, views = pixel_values.shape[:2]
        features = self.vision_backbone(pixel_values.flatten(0, 1).to(self.device, self.dtype))
        tokens = self.projector(features).reshape(batch, -1, self.config.llm.hidden_size)
        if state is not None and self.proprio_projector is not None:
            state = state.to(self.device, self.proprio_projector.fc1.weight.dtype)
            tokens = torch.cat([tokens, self.proprio_projector(state)[:, None].to(tokens.dtype)], 1)
        return tokens

    def build_sequence(self, prefix: torch.Tensor, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                       suffix_ids: torch.Tensor | None = None, suffix_mask: torch.Tensor | None = None,
                       suffix_labels: torch.Tensor | None = None, n_zero_suffix: int = 0) -> Sequence:
        """Assemble [tok0] [prefix] [prompt 1..] [suffix] [pad] per row with tensor ops only (CUDA-graph safe).

        Args:
            prefix: (B, P, d) from `encode_observation`.
            prompt_ids, prompt_mask: (B, Lp) right-padded prompt; every row must have token 0.
            suffix_ids, suffix_mask: (B, Ls) right-padded head tokens placed right after each row's prompt.
            suffix_labels: (B, Ls) targets for the suffix (IGNORE_INDEX to skip), None: no labels.
            n_zero_suffix: the first n suffix tokens get zero input embeddings (OFT action placeholders).

        Returns:
            The right-padded `Sequence`.
        """
        device = prefix.device
        batch, prompt_len = prompt_ids.shape
        if suffix_ids is None:
            suffix_ids = prompt_ids.new_zeros((batch, 0))
            suffix_mask = prompt_mask.new_zeros((batch, 0))
        ids = torch.cat([prompt_ids, suffix_ids], 1).to(device)
        valid = torch.cat([prompt_mask, suffix_mask], 1).to(device).bool()
        labels = torch.full_like(ids, IGNORE_INDEX)
        if suffix_labels is not None:
            labels[:, prompt_len:] = suffix_labels.to(device)
        zero = torch.zeros_like(valid)
        zero[:, prompt_len:prompt_len + n_zero_suffix] = True
        order = torch.sort((~valid).to(torch.int32), dim=1, stable=True).indices  # real tokens first, in order
        ids, valid, labels, zero = (t.gather(1, order) for t in (ids, valid, labels, zero))
        embeds = self.language_model.get_input_embeddings()(ids)
        if n_zero_suffix:
            embeds = embeds * (~zero)[..., None].to(embeds.dtype)
        prefix = prefix.to(embeds.dtype)
        ones = valid.new_ones(prefix.shape[:2])
        embeds = torch.cat([embeds[:, :1], prefix, embeds[:, 1:]], 1)
        mask = torch.cat([valid[:, :1], ones, valid[:, 1:]], 1).long()
        full_labels = None
        if suffix_labels is not None:
            full_labels = torch.cat([labels[:, :1], torch.full_like(ones, IGNORE_INDEX, dtype=torch.long),
                                     labels[:, 1:]], 1)
        suffix_start = prefix.shape[1] + prompt_mask.to(device).long().sum(1)
        return Sequence(embeds, mask, full_labels, suffix_start)

    def run_llm(self, sequence: Sequence, bidirectional: bool = False) -> torch.Tensor:
        """Final (normed) hidden states (B, T, d); bidirectional: every query sees every non-padding key (OFT)."""
        mask: torch.Tensor = sequence.attention_mask
        if bidirectional:
            batch, length = mask.shape
            dtype = sequence.embeds.dtype
            keys = mask.bool()[:, None, None, :]
            additive = torch.zeros(keys.shape, dtype=dtype, device=mask.device)
            mask = additive.masked_fill(~keys, torch.finfo(dtype).min).expand(batch, 1, length, length)
        out = self.language_model.model(inputs_embeds=sequence.embeds, attention_mask=mask, use_cache=False)
        return out.last_hidden_state

    # --- batches -----------------------------------------------------------------------------------------------
    def _prompts(self, batch: dict[str, Any], template_key: str = 'task') -> tuple[torch.Tensor, torch.Tensor]:
        if 'input_ids' in batch:
            ids = torch.as_tensor(batch['input_ids'], dtype=torch.long)
            mask = torch.as_tensor(batch.get('attention_mask', torch.ones_like(ids)), dtype=torch.long)
            return ids, mask
        if template_key not in batch:
            raise KeyError(f"Batch needs {template_key!r} (list of strings) or 'input_ids'; got keys {sorted(batch)}")
        texts = batch[template_key]
        texts = [texts] if isinstance(texts, str) else list(texts)
        if template_key == 'task':
            texts = [self.processor.build_prompt(t) for t in texts]
        else:
            texts = [self.config.vl_prompt_template.format(question=t) for t in texts]
        return self.processor.tokenize(texts)

    def prepare_robot_inputs(self, batch: dict[str, Any], with_targets: bool = True) -> RobotInputs:
        """Preprocess a robot batch (see module docstring) into `RobotInputs` on the model's device."""
        pixel_values = self.processor.preprocess_images(torch.as_tensor(batch['images']))
        if pixel_values.ndim != 5:
            raise ValueError(f"batch['images'] must be (B, V, C, H, W), got {tuple(pixel_values.shape)}")
        if pixel_values.shape[1] != self.config.num_views:
            raise ValueError(f'Expected {self.config.num_views} views {self.config.cameras}, got '
                             f'{pixel_values.shape[1]}')
        state = None
        if self.proprio_projector is not None:
            if batch.get('state') is None:
                raise KeyError(f"Batch needs 'state' (B, {self.config.proprio_dim}) because proprio_dim > 0")
            state = torch.as_tensor(batch['state'], dtype=torch.float32)
        ids, mask = self._prompts(batch)
        if not bool(mask[:, 0].all()):
            raise ValueError('Every prompt must start with a real token (right padding expected)')
        inputs = RobotInputs(self.encode_observation(pixel_values, state), ids.to(self.device), mask.to(self.device))
        if with_targets:
            if 'actions' not in batch:
                raise KeyError("A training batch needs 'actions' (B, K, A), normalized")
            actions = torch.as_tensor(batch['actions'], dtype=torch.float32).to(self.device)
            expected = (self.config.chunk_size, self.config.action_dim)
            if actions.shape[1:] != expected:
                raise ValueError(f"batch['actions'] must be (B, {expected[0]}, {expected[1]}), got "
                                 f'{tuple(actions.shape)}')
            inputs.actions = actions
            if batch.get('action_mask') is not None:
                inputs.action_mask = torch.as_tensor(batch['action_mask']).bool().to(self.device)
        return inputs

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Training loss dict ({'loss': scalar, metrics...}) of a robot or co-training (`answer` key) batch."""
        if 'answer' in batch:
            return self.vl_loss(batch)
        return self.action_head.loss(self, self.prepare_robot_inputs(batch))

    def _vl_sequence(self, batch: dict[str, Any]) -> Sequence:
        """images (B, [V,] 3, H, W) + question strings + answer strings -> the labelled sequence (answer + EOS)."""
        pixel_values = self.processor.preprocess_images(torch.as_tensor(batch['images']))
        if pixel_values.ndim == 4:  # one view per sample
            pixel_values = pixel_values[:, None]
        prefix = self.encode_observation(pixel_values)
        ids, mask = self._prompts(batch, 'question')
        answers = [batch['answer']] if isinstance(batch['answer'], str) else list(batch['answer'])
        eos = self.tokenizer.eos_token_id
        rows = [self.tokenizer(' ' + a, add_special_tokens=False).input_ids + [eos] for a in answers]
        suffix, suffix_mask = _ids_rows(rows, self.tokenizer.pad_token_id)
        labels = suffix.masked_fill(suffix_mask == 0, IGNORE_INDEX)
        return self.build_sequence(prefix, ids.to(self.device), mask.to(self.device), suffix, suffix_mask, labels)

    def vl_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Vision-language co-training: images + question -> answer, cross-entropy on answer tokens only."""
        sequence = self._vl_sequence(batch)
        ce, _, _ = causal_lm_loss(self.language_model, self.run_llm(sequence), sequence.labels)
        return {'loss': ce, 'vl_ce': ce.detach()}

    @torch.no_grad()
    def answer_logprobs(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B,) log-probability of each row's answer (all its tokens and EOS) given its image and question.

        Ranking candidate answers by it turns the VLM into a multiple-choice classifier (retention probes).
        """
        sequence = self._vl_sequence(batch)
        hidden = self.run_llm(sequence)[:, :-1]
        targets = sequence.labels[:, 1:]
        keep = targets != IGNORE_INDEX
        logits = self.language_model.lm_head(hidden[keep]).float()
        token_logp = torch.log_softmax(logits, -1).gather(1, targets[keep][:, None])[:, 0]
        rows = keep.nonzero()[:, 0]
        return torch.zeros(keep.shape[0], device=token_logp.device).index_add_(0, rows, token_logp)

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Any], normalized: bool = False) -> torch.Tensor:
        """(B, K, A) actions for a batch (images, task or input_ids, normalized state); un-normalized by default."""
        actions = self.action_head.predict_action_chunk(self, self.prepare_robot_inputs(batch, with_targets=False))
        return actions.float() if normalized else self.processor.unnormalize_actions(actions.float())

    def infer(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        """One observation (policy.py keys, numpy) -> {'actions': float32 (K, A)} in the units of the ActionSpec."""
        keys = [OBS_IMAGE_PREFIX + camera for camera in self.config.cameras]
        missing = [k for k in keys + [TASK] if k not in obs]
        if missing:
            raise KeyError(f'Observation lacks {missing}; it has {sorted(obs)}')
        views = np.stack([np.asarray(obs[k]) for k in keys])  # (V, H, W, 3)
        if views.ndim != 4 or views.shape[-1] != 3:
            raise ValueError(f'Camera images must be (H, W, 3) RGB, got {views.shape[1:]}')
        batch: dict[str, Any] = {'images': views.transpose(0, 3, 1, 2)[None], 'task': [obs[TASK]]}
        if self.proprio_projector is not None:
            if OBS_STATE not in obs:
                raise KeyError(f'Observation lacks {OBS_STATE!r} (proprio_dim={self.config.proprio_dim})')
            state = torch.as_tensor(np.asarray(obs[OBS_STATE], dtype=np.float32))
            batch['state'] = self.processor.normalize_state(state)[None]
        with torch.inference_mode():
            actions = self.predict_action_chunk(batch)
        return {ACTIONS: actions[0].cpu().numpy().astype(np.float32)}

    def reset(self) -> None:
        """Stateless between calls (no history, no cached chunk)."""

    # --- checkpoints -------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write config.json, model.safetensors, normalization.json, action_spec.json and tokenizer files."""
        from maps_vla.model.checkpoint import save_pretrained
        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = 'cpu',
                        dtype: torch.dtype | None = None) -> VLAPolicy:
        """Load a folder written by `save_pretrained` (dtype None keeps the stored dtype)."""
        from maps_vla.model.checkpoint import load_pretrained
        return load_pretrained(directory, device=device, dtype=dtype)
