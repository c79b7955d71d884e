"""policy_node: the VLA policy on live images, proprio state and an instruction; publishes time-stamped chunks.

Subscriptions only store the newest data (CameraIngest, ProprioAssembler, PolicyRunner); a timer at `policy_hz`
calls `PolicyRunner.request`, which hands a snapshot to the runner's worker thread and returns at once, so no ROS
callback ever waits for the GPU. Each finished chunk is published from the worker on `action_chunk`
(JointTrajectory, header.stamp = observation time). Requests while an inference runs, while paused, or on stale
data are dropped and counted; the counts go to `~/stats` (JSON) and the log every `stats_period` s.

Services: `~/pause`, `~/resume`, `~/reset` (std_srvs/Trigger). The instruction comes from the `instruction` topic
or the dynamic `instruction` parameter.

Cameras, state layout and action kind come from the checkpoint unless set (`cameras`, `state_layout`,
`action_kind`: see control/node_config.resolve_policy_io); a mismatch stops the node at start with one line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from maps_vla.control import msg_conversion as mc
from maps_vla.control.camera import CameraConfig, CameraIngest
from maps_vla.control.chunk import ActionChunk
from maps_vla.control.node_config import (PolicyNodeConfig, make_node_policy, node_policy_interface,
                                          resolve_cameras, resolve_policy_io)
from maps_vla.control.policy_runner import PolicyRunner, PolicyRunnerConfig
from maps_vla.control.proprio import ProprioAssembler, StateConfig
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import MESSAGE_TYPES, RELIABLE_QOS, SENSOR_QOS, now_sec, run_node, stamp_or_now

__all__ = ['PolicyNode', 'main', 'PARAMS', 'PARAMS_EXCLUDE']

PARAMS = {'': PolicyNodeConfig, 'camera': CameraConfig, 'runner': PolicyRunnerConfig, 'state': StateConfig}
# The cameras and state layout are resolved against the checkpoint (cameras, state_layout); inference is threaded.
# runner.latency simulates a slow policy in replay only
PARAMS_EXCLUDE = ('camera.names', 'state.kind', 'runner.cameras', 'runner.synchronous', 'runner.latency')


class PolicyNode(Node):
    """Images + state + instruction -> PolicyRunner -> action_chunk."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('policy_node', **kwargs)
        self.cfg = NodeParams(self, {'': PARAMS['']}, dynamic=('instruction',), on_change=self._on_params)['']
        interface = node_policy_interface(self.cfg)  # the checkpoint's JSON files: fails before the model loads
        cameras = resolve_cameras(self.cfg, interface)
        params = NodeParams(self, {k: v for k, v in PARAMS.items() if k}, exclude=PARAMS_EXCLUDE, fixed={
            'runner.synchronous': False, 'runner.cameras': cameras, 'camera.names': cameras})
        camera_cfg, runner_cfg = params['camera'], params['runner']
        io = resolve_policy_io(self.cfg, interface, params['state'])
        state_cfg = dataclasses.replace(params['state'], kind=io.state_kind)
        policy = make_node_policy(self.cfg)
        spec = io.action_spec
        self.camera = CameraIngest(camera_cfg)
        self.proprio = ProprioAssembler(state_cfg)
        self.runner = PolicyRunner(policy, runner_cfg, spec, callback=self._publish_chunk)
        self.runner.set_instruction(self.cfg.instruction)
        if self.cfg.start_paused:
            self.runner.pause()
        self._chunks = self.create_publisher(JointTrajectory, 'action_chunk', RELIABLE_QOS)
        self._stats = self.create_publisher(String, '~/stats', RELIABLE_QOS)
        self._dropped = (0, 0, 0)

        sensors = ReentrantCallbackGroup()  # the inputs only store data under the runner's lock
        image_type = CompressedImage if camera_cfg.compressed else Image
        for name in camera_cfg.names:
            self.create_subscription(image_type, camera_cfg.topic(name), functools.partial(self._on_image, name),
                                     SENSOR_QOS, callback_group=sensors)
        self.create_subscription(JointState, 'joint_states', self._on_joint_state, SENSOR_QOS, callback_group=sensors)
        if self.proprio.needs_pose:
            self.create_subscription(PoseStamped, 'measured_pose', self._on_pose, SENSOR_QOS, callback_group=sensors)
        self.create_subscription(String, 'instruction', self._on_instruction, RELIABLE_QOS, callback_group=sensors)
        self.create_timer(1.0 / self.cfg.policy_hz, self._request, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(self.cfg.stats_period, self._report, callback_group=MutuallyExclusiveCallbackGroup())
        services = MutuallyExclusiveCallbackGroup()
        self.create_service(Trigger, '~/pause', self._pause, callback_group=services)
        self.create_service(Trigger, '~/resume', self._resume, callback_group=services)
        self.create_service(Trigger, '~/reset', self._reset, callback_group=services)
        self.get_logger().info(f'policy {self.cfg.checkpoint!r} ({spec.kind}, {spec.dim} dims at {spec.control_hz:g} '
                               f'Hz), cameras {list(camera_cfg.names)}, state {state_cfg.kind.value}, requests at '
                               f'{self.cfg.policy_hz:g} Hz{" (paused)" if self.runner.paused else ""}')

    # ------------------------------------------------------------------------------------------------- inputs
    def _on_image(self, name: str, msg: Image | CompressedImage) -> None:
        try:
            rgb = mc.compressed_to_numpy(msg) if isinstance(msg, CompressedImage) else mc.image_to_rgb(msg)
            frame = self.camera.on_image(name, rgb, stamp_or_now(self, msg))
        except (ValueError, TypeError) as exc:
            self.get_logger().warning(f'camera {name}: dropped a frame: {exc}', throttle_duration_sec=5.0)
            return
        self.runner.on_image(name, frame.image, frame.stamp)

    def _update_state(self) -> None:
        state = self.proprio.state()
        if state is not None:
            self.runner.on_state(*state)

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            js = mc.joint_state_to_numpy(msg)
        except ValueError as exc:
            self.get_logger().warning(f'joint_states: {exc}', throttle_duration_sec=5.0)
            return
        if js.position is not None and self.proprio.on_joint_state(js.names, js.position, stamp_or_now(self, msg)):
            self._update_state()

    def _on_pose(self, msg: PoseStamped) -> None:
        pose = mc.pose_to_numpy(msg)
        try:
            self.proprio.on_pose(pose.position, pose.quaternion, stamp_or_now(self, msg))
        except ValueError as exc:
            self.get_logger().warning(f'measured_pose: {exc}', throttle_duration_sec=5.0)
            return
        self._update_state()

    def _on_instruction(self, msg: String) -> None:
        text = mc.string_to_str(msg)
        if text != self.runner.instruction:
            self.get_logger().info(f'instruction: {text!r}')
        self.runner.set_instruction(text)

    def _on_params(self, prefix: str, cfg: PolicyNodeConfig) -> None:
        if prefix == '':
            self.runner.set_instruction(cfg.instruction)

    # ------------------------------------------------------------------------------------------------ outputs
    def _request(self) -> None:
        self.runner.request(now_sec(self))

    def _publish_chunk(self, chunk: ActionChunk) -> None:  # on the runner's worker thread
        self._chunks.publish(mc.chunk_to_trajectory(MESSAGE_TYPES, chunk))

    def _report(self) -> None:
        stats = self.runner.stats()
        self._stats.publish(String(data=json.dumps(dataclasses.asdict(stats))))
        dropped = (stats.stale, stats.dropped_busy, stats.errors)
        if dropped != self._dropped:  # log only when requests were dropped since the last report
            self._dropped = dropped
            self.get_logger().info(f'{stats.completed} chunks; stale requests {stats.stale_reasons}; busy drops '
                                   f'{stats.dropped_busy}; errors {stats.errors}; inference p50 '
                                   f'{stats.inference_p50:.3f}s')

    def _pause(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.runner.pause()
        response.success, response.message = True, 'paused'
        return response

    def _resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.runner.resume()
        response.success, response.message = True, 'resumed'
        return response

    def _reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.runner.reset()  # waits for an inference in flight; the service group is not the timers'
        response.success, response.message = True, 'policy reset'
        return response

    def destroy_node(self) -> None:
        self.runner.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(PolicyNode, args, threads=4)
