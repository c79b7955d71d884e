"""OpenVLA-OFT continuous head: parallel decoding of a K-step chunk and an MLPResNet L1 regressor.

The suffix is K·A placeholder tokens whose input embeddings are multiplied by 0 (they differ only in their RoPE
position) followed by `</s>`. One LLM pass, by default with bidirectional attention (OFT's patched Llama lets every
query see every non-padding key), gives the final hidden states; the readout is shifted one token left as in OFT
(the last prompt token through the second-to-last placeholder), regrouped per step to (B, K, A·d) and mapped to
(B, K, A) by `MLPResNet`. Loss: L1 to the normalized actions, averaged over valid (unpadded) steps.

Key names match OFT's `action_head--*.pt` (without its `module.` prefix): `model.layer_norm1`, `model.fc1`,
`model.mlp_resnet_blocks.{i}.ffn.{0: LayerNorm, 1: Linear}`, `model.layer_norm2`, `model.fc2`.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from maps_vla.model.heads.base import ACTION_HEADS, ActionHead, RobotInputs, VLABackbone, masked_regression_loss
from maps_vla.model.vla.configuration_vla import VLAConfig

__all__ = ['MLPResNet', 'L1RegressionHead']


class _MLPResNetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ffn = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ffn(x)


class MLPResNet(nn.Module):
    """LayerNorm -> Linear -> ReLU -> num_blocks x [x + ReLU(Linear(LN(x)))] -> LayerNorm -> Linear."""

    def __init__(self, num_blocks: int, input_dim: int, hidden_dim: int, output_dim: int) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(input_dim)
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.mlp_resnet_blocks = nn.ModuleList([_MLPResNetBlock(hidden_dim) for _ in range(num_blocks)])
        self.layer_norm2 = nn.LayerNorm(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.fc1(self.layer_norm1(x)))
        for block in self.mlp_resnet_blocks:
            x = block(x)
        return self.fc2(self.layer_norm2(x))


@ACTION_HEADS.register('l1_regression')
class L1RegressionHead(ActionHead):
    """OFT L1 regression head (input (B, K, A·d), hidden d, output A)."""

    def __init__(self, config: VLAConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        d, self.chunk, self.dim = config.llm.hidden_size, config.chunk_size, config.action_dim
        self.bidirectional = config.head.attention == 'bidirectional'
        self.regression_loss = config.head.regression_loss
        self.eos_id = tokenizer.eos_token_id
        self.placeholder_id = tokenizer.pad_token_id
        self.model = MLPResNet(config.head.mlp_blocks, d * self.dim, d, self.dim)

    def _predict(self, vla: VLABackbone, inputs: RobotInputs) -> torch.Tensor:
        batch, n = inputs.prompt_ids.shape[0], self.chunk * self.dim
        device = inputs.prompt_ids.device
        suffix = torch.full((batch, n + 1), self.placeholder_id, dtype=torch.long, device=device)
        suffix[:, -1] = self.eos_id
        sequence = vla.build_sequence(inputs.prefix, inputs.prompt_ids, inputs.prompt_mask, suffix,
                                      torch.ones_like(suffix), n_zero_suffix=n)
        hidden = vla.run_llm(sequence, bidirectional=self.bidirectional)
        index = sequence.suffix_start[:, None] - 1 + torch.arange(n, device=device)  # shifted one left, as OFT
        readout = hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1]))
        return self.model(readout.reshape(batch, self.chunk, -1).to(self.model.fc1.weight.dtype))

    def loss(self, vla: VLABackbone, inputs: RobotInputs) -> dict[str, torch.Tensor]:
        return masked_regression_loss(self._predict(vla, inputs), inputs, self.regression_loss)

    def predict_action_chunk(self, vla: VLABackbone, inputs: RobotInputs) -> torch.Tensor:
        return self._predict(vla, inputs)
