import math

import pytest
import torch

from maps_vla.train.augment import AugmentConfig, augment_images, center_crop


def _images(b=4, h=32, w=32):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(0))


def test_shapes_range_and_reproducibility():
    images = _images()
    cfg = AugmentConfig()
    a = augment_images(images, cfg, torch.Generator().manual_seed(1))
    b = augment_images(images, cfg, torch.Generator().manual_seed(1))
    c = augment_images(images, cfg, torch.Generator().manual_seed(2))
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_disabled_is_identity_and_neutral_ranges_keep_pixels():
    images = _images()
    assert augment_images(images, AugmentConfig(enabled=False)) is images
    neutral = AugmentConfig(crop_area=1.0, brightness=0.0, contrast=(1, 1), saturation=(1, 1), hue=0.0)
    torch.testing.assert_close(augment_images(images, neutral), images, atol=1e-5, rtol=0)


def test_hue_rotation_keeps_grey_and_brightness():
    grey = torch.full((2, 3, 8, 8), 0.4)
    cfg = AugmentConfig(crop_area=1.0, brightness=0.0, contrast=(1, 1), saturation=(1, 1), hue=0.5)
    torch.testing.assert_close(augment_images(grey, cfg, torch.Generator().manual_seed(0)), grey, atol=1e-5, rtol=0)


def test_center_crop_takes_the_middle():
    images = torch.zeros(1, 3, 20, 20)
    images[..., 9:11, 9:11] = 1.0  # a bright centre survives the crop, a bright border does not
    images[..., 0, :] = 1.0
    out = center_crop(images, crop_area=0.81)
    side = round(math.sqrt(0.81) * 20)
    assert side == 18 and out.shape == images.shape
    assert out[..., 0, :].max() < 0.5 and out[..., 10, 10].min() > 0.5


def test_bad_config_and_shape():
    with pytest.raises(ValueError, match='crop_area'):
        AugmentConfig(crop_area=0.0)
    with pytest.raises(ValueError, match='contrast'):
        AugmentConfig(contrast=(1.2, 0.8))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        augment_images(torch.rand(3, 8, 8), AugmentConfig())
