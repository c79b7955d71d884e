"""franka_bridge_node: smoothed commands -> bounded targets for franka_ros2 (SafetyBridge on a timer).

Inputs: `action` (one-point JointTrajectory from the smoother or teleop_node; an ee_delta command is held for one
action step, see SafetyBridge), `measured_pose` (PoseStamped, remap to
/franka_robot_state_broadcaster/current_pose, best effort) and `joint_states` (remap to /franka/joint_states).
Every `control_hz` tick publishes the SafetyBridge target:
* kind ee_delta: `equilibrium_pose` (PoseStamped) for franka's cartesian_impedance_example_controller
  (remap to /cartesian_impedance_example_controller/equilibrium_pose);
* kind joint_position: `joint_trajectory`, one point `io.trajectory_lead` s ahead with a zero stamp (= start now),
  for a joint_trajectory_controller (remap to /<controller>/joint_trajectory);
* kind ee_delta with `io.servo` (control_mode:=servo): `servo_twist` (TwistStamped, remap to
  /servo_node/delta_twist_cmds) toward the same bounded target, clipped to the same step limits per tick
  (control/servo.py); at start it calls Servo's start_servo (Humble) or switch_command_type TWIST (Jazzy).
Nothing is published before the first measurement (no anchor) and the SafetyBridge bounds every step, so the
output never holds NaN or a jump; without fresh commands (watchdog) or under e-stop the target holds.
`action_chunk` (the policy's chunks) is watched for liveness only: no chunk for `policy_timeout` s after the first
holds the target on a fixed pose with status `policy_lost` (a dead policy; teleop, which sends no chunks, never
trips it). Gripper: franka_msgs Move/Grasp on `franka_gripper/move|grasp`, or control_msgs GripperCommand on
`franka_gripper/gripper_action` (position per finger = width / 2). E-stop: `~/estop` (std_srvs/SetBool, true
engages, false releases). Hand-over: `~/suspend` (std_srvs/SetBool) true stops publishing targets while another
controller moves the arm (a MoveIt reset); false starts a fresh SafetyBridge anchored at the next measurement, so
the old target is never sent again (an engaged e-stop stays engaged). Status: `safety_status` (String) on change
and every `io.status_period` s ('suspended' while suspended).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from control_msgs.action import GripperCommand as GripperCommandAction
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.action import ActionClient
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from maps_vla.control import msg_conversion as mc
from maps_vla.control.chunk import ActionChunk
from maps_vla.control.node_config import BridgeIOConfig, GripperInterface
from maps_vla.control.safety import GripperCommand, SafetyBridge, SafetyConfig, SafetyOutput
from maps_vla.control.servo import ServoConfig, command_type_request, twist_stamped, twist_toward
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import MESSAGE_TYPES, RELIABLE_QOS, SENSOR_QOS, now_sec, run_node, stamp_or_now

try:  # franka_msgs has no Jazzy apt package: it exists where franka_ros2 is built from source
    from franka_msgs.action import Grasp, Move
except ImportError:
    Grasp = Move = None
try:  # Jazzy's Servo takes twists only after switch_command_type (moveit_msgs/srv/ServoCommandType)
    from moveit_msgs.srv import ServoCommandType
except ImportError:
    ServoCommandType = None

__all__ = ['FrankaBridgeNode', 'main', 'PARAMS']

PARAMS = {'': SafetyConfig, 'io': BridgeIOConfig, 'servo': ServoConfig}


class FrankaBridgeNode(Node):
    """action -> SafetyBridge -> equilibrium_pose | joint_trajectory (+ gripper goals)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('franka_bridge_node', **kwargs)
        params = NodeParams(self, PARAMS)
        self.cfg, self.io, self.servo = params[''], params['io'], params['servo']
        self.bridge = SafetyBridge(self.cfg)
        self._ee = self.cfg.kind == 'ee_delta'
        self._tick_dt = 1.0 / self.cfg.control_hz
        if self.io.servo and not self._ee:
            raise RuntimeError('io.servo streams Cartesian twists: it needs kind ee_delta')
        self._measured: tuple[np.ndarray, np.ndarray] | None = None
        self._servo_ready = not self.io.servo
        if self.io.servo:
            self._target = self.create_publisher(TwistStamped, 'servo_twist', RELIABLE_QOS)
            self.create_subscription(PoseStamped, 'measured_pose', self._on_pose, SENSOR_QOS)
            self._servo_client = self._make_servo_client()
            self._servo_timer = self.create_timer(1.0, self._start_servo)
        elif self._ee:
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
        self._suspended = False
        self.create_service(SetBool, '~/suspend', self._on_suspend)
        self.create_timer(self._tick_dt, self._tick)
        self.get_logger().info(f'{self.cfg.kind} bridge at {self.cfg.control_hz:g} Hz, gripper {self.io.gripper.value}')

    def _make_servo_client(self) -> Any:
        api = self.servo.api
        if api.start is not None:
            return self.create_client(Trigger, self.servo.service(api.start))
        if ServoCommandType is None:
            raise RuntimeError('servo.distro jazzy needs moveit_msgs (ServoCommandType) to switch Servo to twists')
        return self.create_client(ServoCommandType, self.servo.service(api.switch_command_type))

    def _start_servo(self) -> None:
        """Once Servo's service is up: start it (Humble) or switch it to twist commands (Jazzy); retried each second."""
        if self._servo_ready:
            self._servo_timer.cancel()
            return
        if not self._servo_client.service_is_ready():
            self.get_logger().warning(f'waiting for {self._servo_client.srv_name}', throttle_duration_sec=10.0)
            return
        request = Trigger.Request() if self.servo.api.start else command_type_request(MESSAGE_TYPES)
        self._servo_client.call_async(request).add_done_callback(self._servo_answer)
        self._servo_timer.cancel()

    def _servo_answer(self, future: Any) -> None:
        response = future.result()
        self._servo_ready = bool(response is not None and response.success)
        if self._servo_ready:
            self.get_logger().info(f'MoveIt Servo ({self.servo.distro}) takes twists on servo_twist')
        else:
            self.get_logger().error(f'{self._servo_client.srv_name} refused; retrying')
            self._servo_timer.reset()

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
        self._measured = (pose.position, pose.quaternion)
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

    def _on_suspend(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if request.data:
            self._suspended = True
            response.message = 'suspended: no targets until ~/suspend false'
        else:
            fresh = SafetyBridge(self.cfg)  # anchored at the next measurement, not at the pre-hand-over target
            if self.bridge.estopped:
                fresh.engage_estop('e-stop engaged before the hand-over')
            self.bridge, self._suspended = fresh, False
            response.message = 'resumed: target re-anchored at the next measured state'
        self.get_logger().info(response.message)
        response.success = True
        return response

    # ------------------------------------------------------------------------------------------------- output
    def _tick(self) -> None:
        now = now_sec(self)
        if self._suspended:
            if self._last_status != 'suspended' or now - self._last_status_time >= self.io.status_period:
                self._status.publish(String(data='suspended: another controller has the arm'))
                self._last_status, self._last_status_time = 'suspended', now
            return
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
        if self.io.servo:
            if out.pose is not None and self._measured is not None and self._servo_ready:
                p, (position, quaternion) = out.pose, self._measured
                twist = twist_toward(p.position, p.quaternion, position, quaternion, self.servo.gain,
                                     self.cfg.max_translation_step * self.cfg.control_hz,
                                     self.cfg.max_rotation_step * self.cfg.control_hz)
                # Stamped now: Servo drops twists older than its incoming_command_timeout.
                self._target.publish(twist_stamped(MESSAGE_TYPES, twist, now_sec(self), self.servo.frame_id))
        elif out.pose is not None:
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
