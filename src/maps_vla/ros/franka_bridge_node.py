"""franka_bridge_node: smoothed commands -> bounded targets for franka_ros2 (SafetyBridge on a timer).

Inputs: `action` (one-point JointTrajectory from the smoother or teleop_node; an ee_delta command is held for one
action step, see SafetyBridge), `measured_pose` (PoseStamped, remap to
/franka_robot_state_broadcaster/current_pose, best effort) and `joint_states` (remap to /franka/joint_states).
Every `control_hz` tick publishes the SafetyBridge target:
* kind ee_delta: `equilibrium_pose` (PoseStamped) for franka's cartesian_impedance_example_controller
  (remap to /cartesian_impedance_example_controller/equilibrium_pose);
* kind joint_position: `joint_trajectory`, one point `io.trajectory_lead` s ahead with a zero stamp (= start now),
  for a joint_trajectory_controller (remap to /<controller>/joint_trajectory).
Nothing is published before the first measurement (no anchor) and the SafetyBridge bounds every step, so the
output never holds NaN or a jump; without fresh commands (watchdog) or under e-stop the target holds.
`action_chunk` (the policy's chunks) is watched for liveness only: no chunk for `policy_timeout` s after the first
holds the target on a fixed pose with status `policy_lost` (a dead policy; teleop, which sends no chunks, never
trips it). Gripper: franka_msgs Move/Grasp on `franka_gripper/move|grasp`, or control_msgs GripperCommand on
`franka_gripper/gripper_action` (position per finger = width / 2). E-stop: `~/estop` (std_srvs/SetBool, true
engages, false releases). Status: `safety_status` (String) on change and every `io.status_period` s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from control_msgs.action import GripperCommand as GripperCommandAction
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from maps_vla.control import msg_conversion as mc
from maps_vla.control.chunk import ActionChunk
from maps_vla.control.node_config import BridgeIOConfig, GripperInterface
from maps_vla.control.safety import GripperCommand, SafetyBridge, SafetyConfig, SafetyOutput
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import MESSAGE_TYPES, RELIABLE_QOS, SENSOR_QOS, now_sec, run_node, stamp_or_now

try:  # franka_msgs has no Jazzy apt package: it exists where franka_ros2 is built from source
    from franka_msgs.action import Grasp, Move
except ImportError:
    Grasp = Move = None

__all__ = ['FrankaBridgeNode', 'main', 'PARAMS']

PARAMS = {'': SafetyConfig, 'io': BridgeIOConfig}


class FrankaBridgeNode(Node):
    """action -> SafetyBridge -> equilibrium_pose | joint_trajectory (+ gripper goals)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('franka_bridge_node', **kwargs)
        params = NodeParams(self, PARAMS)
        self.cfg, self.io = params[''], params['io']
        self.bridge = SafetyBridge(self.cfg)
        self._ee = self.cfg.kind == 'ee_delta'
        self._tick_dt = 1.0 / self.cfg.control_hz
        if self._ee:
            self._target = self.create_publisher(PoseStamped, 'equilibrium_pose', RELIABLE_QOS)
            self.create_subscription(PoseStamped, 'measured_pose', self._on_pose, SENSOR_QOS)
        else:
            self._target = self.create_publisher(JointTrajectory, 'joint_trajectory', RELIABLE_QOS)
            self.create_subscription(JointState, 'joint_states', self._on_joint_state, SENSOR_QOS)
        self.create_subscription(JointTrajectory, 'action', self._on_action, RELIABLE_QOS)
        self.create_subscription(JointTrajectory, 'action_chunk', self._on_chunk, RELIABLE_QOS)
        self._status = self.create_publisher(String, 'safety_status', RELIABLE_QOS)
        self._last_status: str | None = None
        self._last_status_time = -float('inf')
        self._gripper_clients = self._make_gripper_clients()
        self._pending_gripper: GripperCommand | None = None
        self.create_service(SetBool, '~/estop', self._on_estop)
        self.create_timer(self._tick_dt, self._tick)
        self.get_logger().info(f'{self.cfg.kind} bridge at {self.cfg.control_hz:g} Hz, gripper {self.io.gripper.value}')

    def _make_gripper_clients(self) -> dict[str, ActionClient]:
        if self.cfg.gripper_index is None or self.io.gripper is GripperInterface.NONE:
            return {}
        if self.io.gripper is GripperInterface.GRIPPER_COMMAND:
            return {'command': ActionClient(self, GripperCommandAction, 'franka_gripper/gripper_action')}
        if Move is None:
            raise RuntimeError('io.gripper is franka but franka_msgs is not importable: build franka_ros2 (it has '
                               'no Jazzy apt package) or set io.gripper to gripper_command or none')
        return {'move': ActionClient(self, Move, 'franka_gripper/move'),
                'grasp': ActionClient(self, Grasp, 'franka_gripper/grasp')}

    # ------------------------------------------------------------------------------------------------- inputs
    def _on_action(self, msg: JointTrajectory) -> None:
        if not msg.points:
            return
        try:
            self.bridge.on_command(np.asarray(msg.points[0].positions, dtype=np.float64), stamp_or_now(self, msg))
        except ValueError as exc:
            self.get_logger().error(f'action rejected: {exc}', throttle_duration_sec=5.0)

    def _on_chunk(self, msg: JointTrajectory) -> None:
        self.bridge.on_chunk(now_sec(self))  # the receive time: the policy is alive

    def _on_pose(self, msg: PoseStamped) -> None:
        pose = mc.pose_to_numpy(msg)
        self.bridge.on_measured_pose(pose.position, pose.quaternion, stamp_or_now(self, msg))

    def _on_joint_state(self, msg: JointState) -> None:
        if not set(self.bridge.joint_names) <= set(msg.name):
            return  # e.g. the gripper's joint states on a shared topic
        try:
            js = mc.joint_state_to_numpy(msg, self.bridge.joint_names)
        except ValueError as exc:
            self.get_logger().warning(f'joint_states: {exc}', throttle_duration_sec=5.0)
            return
        if js.position is not None:
            self.bridge.on_joint_state(js.position, stamp_or_now(self, msg))

    def _on_estop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if request.data:
            self.bridge.engage_estop('e-stop service')
        else:
            self.bridge.release_estop()
        response.success, response.message = True, 'e-stop engaged' if request.data else 'e-stop released'
        return response

    # ------------------------------------------------------------------------------------------------- output
    def _tick(self) -> None:
        now = now_sec(self)
        out = self.bridge.tick(now)
        self._publish_target(out)
        if out.gripper is not None:
            self._pending_gripper = out.gripper
        if self._pending_gripper is not None and self._send_gripper(self._pending_gripper):
            self._pending_gripper = None
        status = f'{out.status.value}: {out.reason}' if out.reason else out.status.value
        if out.status.value != self._last_status or now - self._last_status_time >= self.io.status_period:
            self._status.publish(String(data=status))
            self._last_status, self._last_status_time = out.status.value, now

    def _publish_target(self, out: SafetyOutput) -> None:
        if out.pose is not None:
            p = out.pose
            self._target.publish(mc.numpy_to_pose(MESSAGE_TYPES, p.position, p.quaternion, p.stamp, p.frame_id))
        elif out.joints is not None:
            j = out.joints
            # One point `trajectory_lead` ahead; a zero header stamp tells the controller to start it now.
            point = ActionChunk(0.0, j.positions[None], self._tick_dt, j.names)
            msg = mc.chunk_to_trajectory(MESSAGE_TYPES, point)
            msg.points[0].time_from_start = mc.sec_to_duration(MESSAGE_TYPES, self.io.trajectory_lead)
            self._target.publish(msg)

    def _send_gripper(self, g: GripperCommand) -> bool:
        """Send the goal if its server is up; False keeps it pending for the next tick."""
        if not self._gripper_clients:
            return True
        key = 'command' if 'command' in self._gripper_clients else ('grasp' if g.grasp else 'move')
        client = self._gripper_clients[key]
        if not client.server_is_ready():
            self.get_logger().warning(f'gripper action server {key} is not available; retrying',
                                      throttle_duration_sec=5.0)
            return False
        client.send_goal_async(self._gripper_goal(key, g))
        return True

    def _gripper_goal(self, key: str, g: GripperCommand) -> Any:
        if key == 'command':
            goal = GripperCommandAction.Goal()
            goal.command.position, goal.command.max_effort = g.finger_position, g.force
        elif key == 'grasp':
            goal = Grasp.Goal(width=g.width, speed=g.speed, force=g.force)
            # Any stop between fully closed and fully open counts as a grasp: the object's width is unknown.
            goal.epsilon.inner, goal.epsilon.outer = 0.005, self.cfg.gripper_open_width
        else:
            goal = Move.Goal(width=g.width, speed=g.speed)
        return goal


def main(args: list[str] | None = None) -> None:
    run_node(FrankaBridgeNode, args)
