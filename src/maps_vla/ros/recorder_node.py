"""recorder_node: LeRobot episodes from live topics (EpisodeRecorder sampled at the dataset fps by a timer).

Subscribes `camera/<name>/image_raw` (Image), `joint_states`, `measured_pose` (for the ee_pose state), `action`
(one-point JointTrajectory: the command in force, from a teleop device or the smoother) and `instruction`.
Services `~/start`, `~/stop`, `~/discard` (std_srvs/Trigger); each accepted one is also published on
`episode_events` (String start/stop/discard), so a bag recorded alongside can be cut into the same episodes by
`maps-vla bag2episodes`. The dataset is finalized (exact stats) when the node shuts down.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from maps_vla.control import msg_conversion as mc
from maps_vla.control.node_config import camera_output_topic
from maps_vla.control.proprio import StateConfig
from maps_vla.control.recorder import EpisodeRecorder, RecorderConfig
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import RELIABLE_QOS, SENSOR_QOS, now_sec, run_node, stamp_or_now

__all__ = ['RecorderNode', 'main', 'PARAMS']

PARAMS = {'': RecorderConfig, 'state': StateConfig}


class RecorderNode(Node):
    """Live topics -> EpisodeRecorder -> dataset; single-threaded, so ticks and services never overlap."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('recorder_node', **kwargs)
        params = NodeParams(self, PARAMS)
        self.cfg = params['']
        self.recorder = EpisodeRecorder(self.cfg, params['state'])
        for name in self.cfg.cameras:
            self.create_subscription(Image, camera_output_topic(name), functools.partial(self._on_image, name),
                                     SENSOR_QOS)
        self.create_subscription(JointState, 'joint_states', self._on_joint_state, SENSOR_QOS)
        if self.recorder.proprio.needs_pose:
            self.create_subscription(PoseStamped, 'measured_pose', self._on_pose, SENSOR_QOS)
        self.create_subscription(JointTrajectory, 'action', self._on_action, RELIABLE_QOS)
        self.create_subscription(String, 'instruction', self._on_instruction, RELIABLE_QOS)
        self._events = self.create_publisher(String, 'episode_events', RELIABLE_QOS)
        self.create_service(Trigger, '~/start', self._start)
        self.create_service(Trigger, '~/stop', self._stop)
        self.create_service(Trigger, '~/discard', self._discard)
        self.create_timer(1.0 / self.cfg.fps, self._tick)
        self.get_logger().info(f'recording into {self.cfg.root} at {self.cfg.fps} fps; call ~/start to begin')

    def _warn(self, what: str, exc: Exception) -> None:
        self.get_logger().warning(f'{what}: {exc}', throttle_duration_sec=5.0)

    def _on_image(self, name: str, msg: Image) -> None:
        try:
            self.recorder.on_image(name, mc.image_to_rgb(msg), stamp_or_now(self, msg))
        except (ValueError, TypeError) as exc:
            self._warn(f'camera {name}', exc)

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            js = mc.joint_state_to_numpy(msg)
        except ValueError as exc:
            self._warn('joint_states', exc)
            return
        if js.position is not None:
            self.recorder.on_joint_state(js.names, js.position, stamp_or_now(self, msg))

    def _on_pose(self, msg: PoseStamped) -> None:
        pose = mc.pose_to_numpy(msg)
        try:
            self.recorder.on_pose(pose.position, pose.quaternion, stamp_or_now(self, msg))
        except ValueError as exc:
            self._warn('measured_pose', exc)

    def _on_action(self, msg: JointTrajectory) -> None:
        if msg.points:
            try:
                self.recorder.on_action(list(msg.points[0].positions), stamp_or_now(self, msg))
            except ValueError as exc:
                self._warn('action', exc)

    def _on_instruction(self, msg: String) -> None:
        self.recorder.set_instruction(mc.string_to_str(msg))

    def _tick(self) -> None:
        self.recorder.tick(now_sec(self))

    def _event(self, response: Trigger.Response, event: str, action: Callable[[], str]) -> Trigger.Response:
        try:
            message = action()
        except (RuntimeError, ValueError) as exc:
            response.success, response.message = False, str(exc)
            return response
        self._events.publish(String(data=event))
        response.success, response.message = True, message
        return response

    def _start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        def start() -> str:
            self.recorder.start()
            return 'recording'
        return self._event(response, 'start', start)

    def _stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        def stop() -> str:
            frames, index = self.recorder.frames, self.recorder.stop()
            return f'saved episode {index} ({frames} frames)' if index is not None else f'discarded ({frames} frames)'
        return self._event(response, 'stop', stop)

    def _discard(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        def discard() -> str:
            self.recorder.discard()
            return 'discarded'
        return self._event(response, 'discard', discard)

    def destroy_node(self) -> None:
        self.recorder.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(RecorderNode, args)
