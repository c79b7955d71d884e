"""mujoco_bridge_node: the MuJoCo Franka (maps_vla.sim.bridge.SimBridge) behind franka_ros2's interfaces.

Publishes what a franka_ros2 bringup publishes, under the same names: `franka/joint_states` (arm),
`franka_gripper/joint_states` (fingers), `joint_states` (both), `franka_robot_state_broadcaster/current_pose`
(TCP PoseStamped, best effort), camera frames on `camera/<name>/image_raw` at `camera_hz`, and `/clock`
(simulated time; run every other node with use_sim_time:=true). Accepts what franka's controllers accept:
`cartesian_impedance_example_controller/equilibrium_pose` (PoseStamped),
`joint_trajectory_controller/joint_trajectory` (JointTrajectory), and the gripper actions `franka_gripper/move`
and `franka_gripper/grasp` (franka_msgs, when importable) and `franka_gripper/gripper_action` (control_msgs).
Also publishes the task's `instruction` every `instruction_period` s (0 = never) and `sim/success` (Bool);
`~/reset` (std_srvs/Trigger) starts a new episode (seeds: `seed`, then its RNG stream). Where moveit_msgs is
importable it also serves MoveIt's `move_action` (moveit_msgs/action/MoveGroup, joint goals only), moving the arm to
the goal at the request's velocity scaling, so the episode runner resets sim and robot alike. The sim steps on its
own thread at `control_hz * realtime_factor` wall-clock steps per second (one thread, because MuJoCo's EGL context
may be current on only one thread), so the node must not itself use sim time.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from builtin_interfaces.msg import Time
from control_msgs.action import GripperCommand
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionServer
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from maps_vla.control import msg_conversion as mc
from maps_vla.control.moveit_reset import joint_goal_of
from maps_vla.control.node_config import camera_output_topic
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import MESSAGE_TYPES, RELIABLE_QOS, SENSOR_QOS, run_node
from maps_vla.sim.bridge import SimBridge, SimBridgeConfig, SimState

try:  # franka_msgs has no Jazzy apt package: it exists where franka_ros2 is built from source
    from franka_msgs.action import Grasp, Move
except ImportError:
    Grasp = Move = None
try:  # MoveIt's messages: the reset path of the episode runner
    from moveit_msgs.action import MoveGroup
except ImportError:
    MoveGroup = None

__all__ = ['MujocoBridgeNode', 'main', 'PARAMS']

PARAMS = {'': SimBridgeConfig}
_GRIPPER_TIMEOUT = 5.0  # wall seconds an action waits for the fingers to settle
_MOVE_SLACK = 5.0  # wall seconds a MoveGroup goal may take beyond its planned duration
_SUCCESS, _TIMED_OUT, _INVALID_GOAL = 1, -6, -16  # moveit_msgs/MoveItErrorCodes


# franka_ros2's names (root namespace), so that remappings written for the robot apply unchanged
_ARM_STATES, _FINGER_STATES, _MERGED_STATES = 'franka/joint_states', 'franka_gripper/joint_states', 'joint_states'
_POSE = 'franka_robot_state_broadcaster/current_pose'
_EQUILIBRIUM_POSE = 'cartesian_impedance_example_controller/equilibrium_pose'
_JOINT_TRAJECTORY = 'joint_trajectory_controller/joint_trajectory'


class MujocoBridgeNode(Node):
    """SimBridge stepped on a timer; commands and gripper goals under one lock."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('mujoco_bridge_node', **kwargs)
        if self.get_parameter('use_sim_time').value:
            raise RuntimeError('mujoco_bridge_node publishes /clock itself; start it with use_sim_time:=false')
        self.cfg = NodeParams(self, PARAMS)['']
        self.sim = SimBridge(self.cfg)
        self._lock = threading.Lock()
        self._arm = self.create_publisher(JointState, _ARM_STATES, RELIABLE_QOS)
        self._fingers = self.create_publisher(JointState, _FINGER_STATES, RELIABLE_QOS)
        self._merged = self.create_publisher(JointState, _MERGED_STATES, RELIABLE_QOS)
        self._pose = self.create_publisher(PoseStamped, _POSE, SENSOR_QOS)
        self._clock_pub = self.create_publisher(Clock, '/clock', RELIABLE_QOS)
        self._success = self.create_publisher(Bool, 'sim/success', RELIABLE_QOS)
        self._instruction = self.create_publisher(String, 'instruction', RELIABLE_QOS)
        self._images = {c: self.create_publisher(Image, camera_output_topic(c), SENSOR_QOS) for c in self.cfg.cameras}
        commands = MutuallyExclusiveCallbackGroup()
        self.create_subscription(PoseStamped, _EQUILIBRIUM_POSE, self._on_pose_target, RELIABLE_QOS,
                                 callback_group=commands)
        self.create_subscription(JointTrajectory, _JOINT_TRAJECTORY, self._on_trajectory, RELIABLE_QOS,
                                 callback_group=commands)
        actions = ReentrantCallbackGroup()  # goals wait (sleeping) for the fingers while the timer steps the sim
        ActionServer(self, GripperCommand, 'franka_gripper/gripper_action', self._gripper_command,
                     callback_group=actions)
        if Move is not None:
            ActionServer(self, Move, 'franka_gripper/move', self._move, callback_group=actions)
            ActionServer(self, Grasp, 'franka_gripper/grasp', self._grasp, callback_group=actions)
        if MoveGroup is not None:
            ActionServer(self, MoveGroup, 'move_action', self._move_group, callback_group=actions)
        self.create_service(Trigger, '~/reset', self._reset, callback_group=commands)
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._run, name='mujoco-bridge', daemon=True)
        self._thread.start()
        if self.cfg.instruction_period > 0:
            self.create_timer(self.cfg.instruction_period, self._publish_instruction)
        self.get_logger().info(f'sim {self.cfg.task}/{self.cfg.variant}: {self.sim.instruction!r}; cameras '
                               f'{list(self.cfg.cameras)} at {self.cfg.camera_hz:g} Hz; franka_msgs gripper '
                               f'actions {"on" if Move is not None else "off (not importable)"}; MoveGroup '
                               f'{"on" if MoveGroup is not None else "off (moveit_msgs not importable)"}')

    # -------------------------------------------------------------------------------------------------- step
    def _run(self) -> None:
        period = 1.0 / (self.cfg.control_hz * self.cfg.realtime_factor)
        next_step = time.monotonic()
        try:
            while self._running.is_set():
                with self._lock:
                    state = self.sim.step()
                try:
                    self._publish(state)
                except Exception:  # after rclpy shut the context down (Ctrl-C) publishing fails: stop quietly
                    if self.context.ok():
                        raise
                    break
                next_step = max(next_step + period, time.monotonic() - period)  # lagging: do not catch up
                time.sleep(max(0.0, next_step - time.monotonic()))
        finally:
            self.sim.close()  # on this thread: the GL context is current here

    def _publish(self, s: SimState) -> None:
        sec, nanosec = divmod(round(s.time * 1e9), 1_000_000_000)
        self._clock_pub.publish(Clock(clock=Time(sec=int(sec), nanosec=int(nanosec))))
        arm, fingers = self.cfg.arm_joints, self.cfg.finger_joints
        self._arm.publish(mc.numpy_to_joint_state(MESSAGE_TYPES, arm, s.arm_position, s.arm_velocity, stamp=s.time))
        self._fingers.publish(mc.numpy_to_joint_state(MESSAGE_TYPES, fingers, s.finger_position, s.finger_velocity,
                                                      stamp=s.time))
        self._merged.publish(mc.numpy_to_joint_state(
            MESSAGE_TYPES, (*arm, *fingers), [*s.arm_position, *s.finger_position],
            [*s.arm_velocity, *s.finger_velocity], stamp=s.time))
        self._pose.publish(mc.numpy_to_pose(MESSAGE_TYPES, s.tcp_position, s.tcp_quaternion, s.time,
                                            self.cfg.base_frame))
        for name, image in s.images.items():
            self._images[name].publish(mc.numpy_to_image(MESSAGE_TYPES, image, 'rgb8', s.time, name))
        self._success.publish(Bool(data=s.success))

    def _publish_instruction(self) -> None:
        self._instruction.publish(String(data=self.sim.instruction))

    # ---------------------------------------------------------------------------------------------- commands
    def _on_pose_target(self, msg: PoseStamped) -> None:
        pose = mc.pose_to_numpy(msg)
        try:
            with self._lock:
                self.sim.on_pose_target(pose.position, pose.quaternion)
        except ValueError as exc:
            self.get_logger().warning(f'equilibrium_pose discarded: {exc}', throttle_duration_sec=5.0)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            positions = [list(p.positions) for p in msg.points]
            times = [mc.duration_to_sec(p.time_from_start) for p in msg.points]
            with self._lock:
                self.sim.on_joint_trajectory(list(msg.joint_names), times, positions, mc.stamp_of(msg))
        except ValueError as exc:
            self.get_logger().warning(f'joint_trajectory rejected: {exc}', throttle_duration_sec=5.0)

    def _reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            instruction = self.sim.reset()
        self._publish_instruction()
        response.success, response.message = True, instruction
        return response

    def _move_group(self, goal_handle):
        request = goal_handle.request.request
        result = MoveGroup.Result()
        try:
            goal = joint_goal_of(request)
            tolerance = max(max(j.tolerance_above, j.tolerance_below)
                            for j in request.goal_constraints[0].joint_constraints) or 0.01
            with self._lock:
                duration = self.sim.move_to(goal.names, goal.positions,
                                            request.max_velocity_scaling_factor or 0.1)
        except ValueError as exc:
            self.get_logger().error(f'MoveGroup goal rejected: {exc}')
            result.error_code.val = _INVALID_GOAL
            goal_handle.abort()
            return result
        target = [goal.positions[goal.names.index(n)] for n in self.cfg.arm_joints]
        deadline = time.monotonic() + duration / self.cfg.realtime_factor + _MOVE_SLACK
        reached = False
        try:
            while not reached and time.monotonic() < deadline:
                time.sleep(0.02)
                with self._lock:
                    reached = self.sim.reached(target, tolerance)
        finally:
            with self._lock:
                self.sim.end_move()  # the policy's targets count again (after the runner resumed the bridge)
        result.error_code.val = _SUCCESS if reached else _TIMED_OUT
        self._finish(goal_handle, reached)
        return result

    # ------------------------------------------------------------------------------------------------ gripper
    def _settle(self, width: float) -> float:
        """Command `width` and wait (wall clock) until the fingers stop; returns the reached width."""
        with self._lock:
            self.sim.on_gripper(width)
        deadline = time.monotonic() + _GRIPPER_TIMEOUT
        time.sleep(0.05)  # let the fingers start moving
        while time.monotonic() < deadline:
            with self._lock:
                if not self.sim.gripper_moving:
                    break
            time.sleep(0.02)
        with self._lock:
            return self.sim.gripper_width

    def _gripper_command(self, goal_handle):
        command = goal_handle.request.command
        width = self._settle(2.0 * command.position)  # GripperCommand.position is per finger
        goal_handle.succeed()
        result = GripperCommand.Result()
        result.position, result.effort = width / 2.0, float(command.max_effort)
        result.reached_goal = math.isclose(width, 2.0 * command.position, abs_tol=0.002)
        result.stalled = not result.reached_goal
        return result

    def _move(self, goal_handle):
        width = self._settle(goal_handle.request.width)
        ok = math.isclose(width, goal_handle.request.width, abs_tol=0.002)
        self._finish(goal_handle, ok)
        return Move.Result(success=ok, error='' if ok else f'stopped at {width:.4f} m')

    def _grasp(self, goal_handle):
        goal = goal_handle.request
        width = self._settle(goal.width)
        ok = goal.width - goal.epsilon.inner <= width <= goal.width + goal.epsilon.outer
        self._finish(goal_handle, ok)
        return Grasp.Result(success=ok, error='' if ok else f'width {width:.4f} m outside the epsilon band')

    @staticmethod
    def _finish(goal_handle, ok: bool) -> None:
        if ok:
            goal_handle.succeed()
        else:
            goal_handle.abort()

    def destroy_node(self) -> None:
        self._running.clear()
        self._thread.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(MujocoBridgeNode, args, threads=4)
