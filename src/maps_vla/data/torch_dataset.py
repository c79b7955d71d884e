"""`torch.utils.data.Dataset` over `maps_vla.data.Dataset.sample` (the only module of maps_vla.data importing torch)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from maps_vla.data.dataset import Dataset

__all__ = ['TorchDataset']


class TorchDataset(torch.utils.data.Dataset):
    """Training examples as tensors: cameras float32 (3, H, W) in [0, 1], numeric features as tensors of their
    dtype, 'action' (chunk, d), 'action_mask' bool (chunk,), 'task' str (default collate makes it a list).

    Args:
        root: a dataset folder (or an open `Dataset`).
        chunk_size: actions per example.
        transform: optional callable applied to each example dict after conversion (augmentation, tokenizing).
    """

    def __init__(self, root: str | os.PathLike | Dataset, chunk_size: int,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        self.dataset = root if isinstance(root, Dataset) else Dataset(root)
        self.chunk_size = chunk_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.dataset.sample(int(index), self.chunk_size)
        out: dict[str, Any] = {}
        for key, value in sample.items():
            if key in self.dataset.image_keys:
                out[key] = torch.from_numpy(np.ascontiguousarray(value.transpose(2, 0, 1))).float().div_(255.0)
            elif isinstance(value, np.ndarray):
                out[key] = torch.from_numpy(value)
            else:
                out[key] = value
        return self.transform(out) if self.transform is not None else out
