"""Camera messages -> RGB uint8, through cv_bridge where the node has one, else through msg_conversion.

cv_bridge is the ROS convention and converts every encoding it knows; the camera node passes a `CvBridge` when
`cv_bridge` imports (ROS installs), and None otherwise. msg_conversion is the fallback and the path used for bags
(replay, bag2episodes), so that offline and live frames decode alike; test/ros/test_cv_bridge.py checks on a ROS
build that both give identical arrays for the colour encodings the policy takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maps_vla.control import msg_conversion as mc

__all__ = ['to_rgb', 'is_compressed']


def is_compressed(msg: Any) -> bool:
    """Whether `msg` is a sensor_msgs/CompressedImage (it has `format`, an Image has `encoding`)."""
    return hasattr(msg, 'format') and not hasattr(msg, 'encoding')


def to_rgb(msg: Any, bridge: Any | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a sensor_msgs/Image or CompressedImage (mono images are replicated to 3 channels).

    Args:
        msg: the message (rclpy or any object with its fields).
        bridge: a cv_bridge.CvBridge, or None for msg_conversion.

    Raises:
        ValueError: an encoding neither path turns into RGB, or undecodable data.
    """
    compressed = is_compressed(msg)
    if bridge is None:
        rgb = mc.compressed_to_numpy(msg) if compressed else mc.image_to_rgb(msg)
    else:
        what = f'format {msg.format!r}' if compressed else f'encoding {msg.encoding!r}'
        try:
            rgb = (bridge.compressed_imgmsg_to_cv2(msg, 'rgb8') if compressed
                   else bridge.imgmsg_to_cv2(msg, 'rgb8'))
        except Exception as exc:  # cv_bridge raises CvBridgeError, TypeError or cv2.error
            raise ValueError(f'cv_bridge cannot convert an image of {what} to rgb8: {exc}') from exc
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    return np.ascontiguousarray(rgb)
