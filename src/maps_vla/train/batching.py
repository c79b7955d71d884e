"""From dataset samples to the policy's training batch: collate, augment, normalize.

Collation is pure stacking (it may run in DataLoader workers); augmentation runs in the training process with
the trainer's own generator, so it is reproducible and its state is saved with each checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from maps_vla.data.dataset import Dataset
from maps_vla.model.vla.processor_vla import NormStats, VLAProcessor
from maps_vla.policy import OBS_IMAGE_PREFIX, OBS_STATE, TASK
from maps_vla.train.augment import AugmentConfig, augment_images

__all__ = ['collate_robot', 'robot_batch', 'norm_stats_from_dataset', 'dataset_cameras']

_ACTION, _ACTION_MASK = 'action', 'action_mask'


def dataset_cameras(dataset: Dataset) -> tuple[str, ...]:
    """Camera names of a dataset in feature order ('observation.images.wrist' -> 'wrist')."""
    return tuple(key[len(OBS_IMAGE_PREFIX):] for key in dataset.image_keys)


def norm_stats_from_dataset(dataset: Dataset, *, gripper_index: int | None = None,
                            use_state: bool = True) -> NormStats:
    """q01/q99 action (and state) statistics of a dataset; the gripper dimension is left unnormalized (OpenVLA)."""
    stats = dataset.stats
    if _ACTION not in stats:
        raise ValueError(f'{str(dataset.root)!r} has no statistics for {_ACTION!r}; was the dataset finalized?')
    q01, q99 = (np.asarray(stats[_ACTION][q], dtype=np.float64).ravel() for q in ('q01', 'q99'))
    mask = [i != gripper_index for i in range(len(q01))]
    state_q01: tuple[float, ...] = ()
    state_q99: tuple[float, ...] = ()
    if use_state:
        if OBS_STATE not in stats:
            raise ValueError(f'{str(dataset.root)!r} has no {OBS_STATE!r} statistics but the policy uses proprio')
        state_q01 = tuple(np.asarray(stats[OBS_STATE]['q01'], dtype=np.float64).ravel())
        state_q99 = tuple(np.asarray(stats[OBS_STATE]['q99'], dtype=np.float64).ravel())
    return NormStats(tuple(q01), tuple(q99), tuple(mask), state_q01, state_q99)


def collate_robot(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack TorchDataset samples: tensors along a new batch dim, strings into lists."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else list(values)
    return out


def robot_batch(batch: dict[str, Any], processor: VLAProcessor, cameras: tuple[str, ...], augment: AugmentConfig,
                generator: torch.Generator | None) -> dict[str, Any]:
    """A collated batch -> the policy's batch: images (B, V, 3, H, W) in [0, 1] (augmented), task strings,
    normalized state (B, S), normalized actions (B, K, A) and the action padding mask (B, K)."""
    missing = [OBS_IMAGE_PREFIX + c for c in cameras if OBS_IMAGE_PREFIX + c not in batch]
    if missing:
        raise KeyError(f'Batch lacks camera keys {missing}; it has {sorted(batch)}')
    views = torch.stack([batch[OBS_IMAGE_PREFIX + c] for c in cameras], dim=1)  # (B, V, 3, H, W)
    b, v = views.shape[:2]
    views = augment_images(views.flatten(0, 1), augment, generator).unflatten(0, (b, v))
    out: dict[str, Any] = {
        'images': views,
        TASK: list(batch[TASK]),
        'actions': processor.normalize_actions(batch[_ACTION].float()),
        'action_mask': batch[_ACTION_MASK].bool(),
    }
    if processor.config.proprio_dim:
        state = processor.normalize_state(batch[OBS_STATE].float())
        if augment.enabled and augment.state_dropout > 0:
            dropped = torch.rand(b, generator=generator) < augment.state_dropout
            state = state.masked_fill(dropped[:, None], 0.0)
        out['state'] = state
    return out
