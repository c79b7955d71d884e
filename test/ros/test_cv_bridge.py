"""cv_bridge and maps_vla's conversion give identical RGB arrays (runs only where cv_bridge is installed)."""

from __future__ import annotations

import numpy as np
import pytest

cv_bridge = pytest.importorskip('cv_bridge')

from maps_vla.control import msg_conversion as mc  # noqa: E402
from maps_vla.control.image_decode import to_rgb  # noqa: E402
from maps_vla.ros.runtime import MESSAGE_TYPES  # noqa: E402

pytestmark = pytest.mark.ros
RGB = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
RGBA = np.concatenate([RGB, np.full((48, 64, 1), 200, np.uint8)], axis=2)
IMAGES = {'rgb8': RGB, 'bgr8': RGB[:, :, ::-1].copy(), 'rgba8': RGBA, 'bgra8': RGBA[:, :, [2, 1, 0, 3]].copy(),
          'mono8': RGB[:, :, 0].copy()}


@pytest.mark.parametrize('encoding', sorted(IMAGES))
def test_cv_bridge_and_msg_conversion_agree_on_images(encoding):
    msg = mc.numpy_to_image(MESSAGE_TYPES, IMAGES[encoding], encoding)
    assert np.array_equal(to_rgb(msg, cv_bridge.CvBridge()), to_rgb(msg))


@pytest.mark.parametrize('fmt', ['png', 'jpeg'])
def test_cv_bridge_and_msg_conversion_agree_on_compressed_images(fmt):
    msg = mc.numpy_to_compressed(MESSAGE_TYPES, RGB, fmt)
    assert np.array_equal(to_rgb(msg, cv_bridge.CvBridge()), to_rgb(msg))  # the same libjpeg/libpng decode
