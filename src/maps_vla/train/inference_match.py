"""What an exported policy records so that it sees at inference what it saw in training: frame size and crop.

Training frames come from the dataset at its capture side (e.g. 64 px); with augmentation each one is a random
square crop of `AugmentConfig.crop_area` of the area, resized back, before the processor resizes it to the ViT
side. At inference the camera frames must have the same side (`maps-vla eval` renders at
`VisionConfig.capture_size`) and the processor takes a centred crop of the same area (`center_crop_scale`,
OpenVLA's test-time counterpart of the random crop). While training, that centred crop must stay off when the
augmentation crops, else every frame would be cropped twice; so the training config and the exported one differ
only in `center_crop_scale`. Vision-language co-training images are never augmented, so a run of VL steps only
(`cotrain_ratio` 1.0, VLM pre-training) records no crop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator

from maps_vla.data.dataset import Dataset
from maps_vla.model.vla.configuration_vla import VLAConfig
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.train.augment import AugmentConfig
from maps_vla.train.configuration_train import DataConfig

__all__ = ['capture_side', 'robot_augment', 'training_config', 'deployed_config', 'set_config', 'deployed']

logger = logging.getLogger(__name__)


def capture_side(dataset: Dataset) -> int | None:
    """The side (px) of the dataset's camera frames; None when they are not all square and of one size."""
    shapes = {tuple(int(s) for s in dataset.features[key]['shape'][:2]) for key in dataset.image_keys}
    if len(shapes) == 1:
        height, width = shapes.pop()
        if height == width:
            return height
    logger.warning('camera frames of %s are not all square and of one size (%s): the policy records no capture '
                   'size, so `maps-vla eval` renders at the policy size unless given --image-size',
                   dataset.root, sorted(shapes))
    return None


def robot_augment(data: DataConfig) -> AugmentConfig:
    """The augmentation the robot images of a run get: none when every step is a VL co-training step."""
    return data.augment if data.cotrain_ratio < 1.0 else dataclasses.replace(data.augment, enabled=False)


def _crops(augment: AugmentConfig) -> bool:
    return augment.enabled and augment.crop_area < 1.0


def training_config(config: VLAConfig, augment: AugmentConfig, capture_size: int | None) -> VLAConfig:
    """The config to train with: `capture_size` recorded (None keeps the old value) and, when the augmentation
    crops, no centred crop in the processor (the random crop takes its place)."""
    changes = {'capture_size': capture_size if capture_size is not None else config.vision.capture_size}
    if _crops(augment):
        changes['center_crop_scale'] = 1.0
    return config.replace(vision=dataclasses.replace(config.vision, **changes))


def deployed_config(config: VLAConfig, augment: AugmentConfig) -> VLAConfig:
    """The config to export: a centred crop of the augmentation's crop area when it cropped, else unchanged."""
    if not _crops(augment):
        return config
    return config.replace(vision=dataclasses.replace(config.vision, center_crop_scale=augment.crop_area))


def set_config(policy: VLAPolicy, config: VLAConfig) -> None:
    """Give `policy` (and its processor) `config`; only processor fields may differ from the current one."""
    policy.config = config
    policy.processor.config = config


@contextlib.contextmanager
def deployed(policy: VLAPolicy, augment: AugmentConfig) -> Iterator[VLAPolicy]:
    """Within the block `policy` carries its deployed config (for export); the training config comes back after."""
    current = policy.config
    set_config(policy, deployed_config(current, augment))
    try:
        yield policy
    finally:
        set_config(policy, current)
