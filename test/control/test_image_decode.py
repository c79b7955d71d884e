"""control.image_decode: the camera node's decoding, with cv_bridge when given one and msg_conversion otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from maps_vla.control import msg_conversion as mc
from maps_vla.control.image_decode import is_compressed, to_rgb

RGB = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)


class FakeBridge:
    """Records the calls a CvBridge gets; fails like cv_bridge on an unknown encoding."""

    def __init__(self):
        self.calls = []

    def imgmsg_to_cv2(self, msg, desired_encoding):
        self.calls.append(('image', desired_encoding))
        if msg.encoding == '32FC1':
            raise TypeError('cannot convert 32FC1 to rgb8')
        return mc.image_to_rgb(msg)

    def compressed_imgmsg_to_cv2(self, msg, desired_encoding):
        self.calls.append(('compressed', desired_encoding))
        return mc.compressed_to_numpy(msg)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'mono8'])
def test_fallback_decodes_like_msg_conversion(typestore, encoding):
    image = {'rgb8': RGB, 'bgr8': RGB[:, :, ::-1].copy(), 'mono8': RGB[:, :, 0].copy()}[encoding]
    msg = mc.numpy_to_image(typestore, image, encoding)
    expected = np.repeat(RGB[:, :, :1], 3, axis=2) if encoding == 'mono8' else RGB
    assert np.array_equal(to_rgb(msg), expected) and not is_compressed(msg)


def test_the_bridge_is_asked_for_rgb8_and_its_errors_become_value_errors(typestore):
    bridge = FakeBridge()
    assert np.array_equal(to_rgb(mc.numpy_to_image(typestore, RGB, 'rgb8'), bridge), RGB)
    png = mc.numpy_to_compressed(typestore, RGB, 'png')
    assert is_compressed(png) and np.array_equal(to_rgb(png, bridge), RGB)
    assert bridge.calls == [('image', 'rgb8'), ('compressed', 'rgb8')]
    depth = mc.numpy_to_image(typestore, np.zeros((2, 2), np.float32), '32FC1')
    with pytest.raises(ValueError, match="cv_bridge cannot convert an image of encoding '32FC1'"):
        to_rgb(depth, bridge)
    with pytest.raises(ValueError, match='not a colour image'):
        to_rgb(depth)
