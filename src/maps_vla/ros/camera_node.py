"""camera_node: frames from OpenCV devices / video files, or a camera driver's topics, as the policy's RGB images.

Publishes `camera/<name>/image_raw` (sensor_msgs/Image rgb8, sensor-data QoS) per camera, resized to the policy
resolution unless `source.preprocess` is false. Frames re-published from a driver keep the driver's header
(stamp and frame_id) exactly; device frames are stamped with the node clock when read. Driver frames are decoded
with cv_bridge where it is installed, else with maps_vla's own conversion (control/image_decode.py).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image

from maps_vla.control import msg_conversion as mc
from maps_vla.control.camera import CameraConfig, VideoCaptureSource, preprocess_frame
from maps_vla.control.image_decode import to_rgb
from maps_vla.control.node_config import CameraInput, CameraSourceConfig, camera_plan
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import MESSAGE_TYPES, SENSOR_QOS, now_sec, run_node

try:  # the ROS convention where installed; control/msg_conversion otherwise (and for bags)
    from cv_bridge import CvBridge
except ImportError:
    CvBridge = None

__all__ = ['CameraNode', 'main', 'PARAMS']

PARAMS = {'': CameraConfig, 'source': CameraSourceConfig}


class CameraNode(Node):
    """One publisher per camera, fed by a device timer or a driver subscription."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('camera_node', **kwargs)
        params = NodeParams(self, PARAMS)
        self.cfg, self.source = params[''], params['source']
        self._outputs = {}
        self._captures: dict[str, VideoCaptureSource] = {}
        self._bridge = CvBridge() if CvBridge is not None else None
        for cam in camera_plan(self.cfg, self.source):
            self._outputs[cam.name] = self.create_publisher(Image, cam.output, SENSOR_QOS)
            if cam.device is not None:
                self._captures[cam.name] = VideoCaptureSource(cam.device)
                self.create_timer(1.0 / self.source.fps, functools.partial(self._poll, cam),
                                  callback_group=MutuallyExclusiveCallbackGroup())
            else:
                msg_type = CompressedImage if self.cfg.compressed else Image
                self.create_subscription(msg_type, cam.topic, functools.partial(self._on_driver_image, cam.name),
                                         SENSOR_QOS)
            self.get_logger().info(f'camera {cam.name}: {cam.device if cam.topic is None else cam.topic} -> '
                                   f'{cam.output} ({"cv_bridge" if self._bridge else "maps_vla conversion"})')

    def _image(self, rgb: np.ndarray) -> np.ndarray:
        if not self.source.preprocess:
            return rgb
        return preprocess_frame(rgb, self.cfg.width, self.cfg.height, self.cfg.center_crop)

    def _poll(self, cam: CameraInput) -> None:
        item = self._captures[cam.name].read()
        if item is None and self.source.loop and isinstance(cam.device, str):
            self._captures[cam.name].close()
            self._captures[cam.name] = VideoCaptureSource(cam.device)
            item = self._captures[cam.name].read()
        if item is None:
            self.get_logger().warning(f'camera {cam.name}: no frame from {cam.device!r}', throttle_duration_sec=5.0)
            return
        # Stamp with the node clock (a video file's own stamps start at 0).
        self._outputs[cam.name].publish(
            mc.numpy_to_image(MESSAGE_TYPES, self._image(item[0]), 'rgb8', now_sec(self), cam.name))

    def _on_driver_image(self, name: str, msg: Image | CompressedImage) -> None:
        try:
            out = mc.numpy_to_image(MESSAGE_TYPES, self._image(to_rgb(msg, self._bridge)), 'rgb8')
        except (ValueError, TypeError) as exc:
            self.get_logger().warning(f'camera {name}: dropped a frame: {exc}', throttle_duration_sec=5.0)
            return
        out.header = msg.header
        self._outputs[name].publish(out)

    def destroy_node(self) -> None:
        for capture in self._captures.values():
            capture.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(CameraNode, args, threads=3)
