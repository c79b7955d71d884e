"""`SimBridge`: the MuJoCo Franka behind the interfaces of franka_ros2's controllers, as a plain class.

The mujoco_bridge node wraps it so that the ROS graph cannot tell the sim from the robot: it takes the commands a
Franka takes (an equilibrium pose for the Cartesian impedance controller, a joint trajectory for a
joint_trajectory_controller, a gripper width) and reports what franka_ros2 reports (arm and finger joint states
under franka's joint names, the TCP pose, camera frames at their own rate, a simulated clock).

Each `step()` advances one control period of `1 / control_hz` simulated seconds: the active command becomes arm
joint targets (differential IK for a pose, linear interpolation of the trajectory at the current time), limited
by the env's `ArmController` to the joint velocity limits, then physics runs `physics_hz / control_hz` steps.
The clock never runs backwards: `reset()` starts a new episode but keeps counting time. `move_to` is the
motion of a reset (what MoveIt's MoveGroup does on the robot): a joint trajectory to a start pose at a fraction
of the joint velocity limits; `reached` tells when the arm is there.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from maps_vla.control.franka_limits import JOINT_LIMITS, joint_limits
from maps_vla.control.rotations import quat_from_rotvec, quat_normalize, quat_to_rotvec
from maps_vla.sim import kinematics as _kin
from maps_vla.sim import scene as _scene
from maps_vla.sim.config_env import EnvConfig
from maps_vla.sim.factory import make_env

__all__ = ['SimBridgeConfig', 'SimBridge', 'SimState', 'CommandMode']

_GRIPPER_MAX_WIDTH = 2 * _kin.FINGER_RANGE[1]  # m between the fingers, fully open
_MOVING_SPEED = 1e-3  # m/s; fingers slower than this have settled


class CommandMode(enum.Enum):
    """Which command drives the arm."""

    HOLD = 'hold'  # no command yet: keep the joints where they are
    POSE = 'pose'  # equilibrium pose (Cartesian impedance controller)
    TRAJECTORY = 'trajectory'  # joint trajectory (joint_trajectory_controller)


@dataclasses.dataclass(frozen=True)
class SimBridgeConfig:
    """The simulated scene, its rates and the names it publishes under."""

    task: str = 'pick_place'  # sim task: pick_place or emoji
    variant: str = 'train'  # task variant: train or a held-out one
    seed: int = 0  # seed of the first episode; each reset() without a seed continues the RNG stream
    control_hz: float = 100.0  # s^-1 simulated; one step per period, joint states published every step
    physics_hz: float = 500.0  # MuJoCo step rate; a whole multiple of control_hz
    camera_hz: float = 15.0  # s^-1 simulated; frames of every camera
    cameras: tuple[str, ...] = ('third_person', 'wrist')  # cameras to render (the scene has third_person, wrist)
    image_width: int = 224  # pixels
    image_height: int = 224  # pixels
    robot_type: str = 'fr3'  # published names: <robot_type>_joint1..7, <robot_type>_finger_joint1/2, <robot_type>_link0
    realtime_factor: float = 1.0  # simulated seconds per wall second the node aims for (slower when stepping lags)
    instruction_period: float = 1.0  # s between the node's messages of the task instruction; 0 = none

    def __post_init__(self) -> None:
        for name in ('control_hz', 'physics_hz', 'camera_hz', 'realtime_factor'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'SimBridgeConfig.{name} must be a finite number > 0, got {value}')
        unknown = [c for c in self.cameras if c not in _scene.CAMERAS]
        if unknown or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f'SimBridgeConfig.cameras must be distinct names from {_scene.CAMERAS}, got '
                             f'{list(self.cameras)}')
        if not (self.instruction_period >= 0 and math.isfinite(self.instruction_period)):
            raise ValueError(f'SimBridgeConfig.instruction_period must be a finite number >= 0, got '
                             f'{self.instruction_period}')
        if not self.robot_type:
            raise ValueError('SimBridgeConfig.robot_type must not be empty')

    def env_config(self) -> EnvConfig:
        """The EnvConfig of the simulated scene (validates task, variant, rates and image size).

        render=False keeps images out of the env's observations: the bridge renders its cameras itself in `step`,
        so the GL context is created by, and stays current on, the thread that steps (EGL allows one).
        """
        return EnvConfig(task=self.task, variant=self.variant, control_hz=self.control_hz,
                         physics_hz=self.physics_hz, image_size=(self.image_height, self.image_width),
                         render=False, seed=self.seed, init_joint_noise=0.0)

    @property
    def arm_joints(self) -> tuple[str, ...]:
        return tuple(f'{self.robot_type}_joint{i}' for i in range(1, 8))

    @property
    def finger_joints(self) -> tuple[str, ...]:
        return (f'{self.robot_type}_finger_joint1', f'{self.robot_type}_finger_joint2')

    @property
    def base_frame(self) -> str:
        return f'{self.robot_type}_link0'


class SimState(NamedTuple):
    """What one step reports; images holds only the cameras whose frame fell due in this step."""

    time: float  # s, simulated
    arm_position: np.ndarray  # (7,) rad
    arm_velocity: np.ndarray  # (7,) rad/s
    finger_position: np.ndarray  # (2,) m, each finger (width / 2)
    finger_velocity: np.ndarray  # (2,) m/s
    tcp_position: np.ndarray  # (3,) m, base frame
    tcp_quaternion: np.ndarray  # (4,) x, y, z, w
    images: dict[str, np.ndarray]  # camera -> uint8 RGB (H, W, 3)
    success: bool  # the task's success test


def _matrix_to_quat(rot: np.ndarray) -> np.ndarray:
    return quat_normalize(quat_from_rotvec(_kin.matrix_to_rotvec(rot)))


class SimBridge:
    """The simulated Franka; see the module docstring.

    Args:
        cfg: scene, rates and names.

    Raises:
        ValueError: an invalid task/variant/rate combination (from EnvConfig).
    """

    def __init__(self, cfg: SimBridgeConfig | None = None) -> None:
        self.cfg = cfg or SimBridgeConfig()
        self.env = make_env(self.cfg.env_config())
        self.physics, self.controller = self.env.physics, self.env.controller
        self._substeps = self.env.cfg.substeps
        self._offset = 0.0  # simulated time of the episodes before this one
        self._camera_period = 1.0 / self.cfg.camera_hz
        self.reset(self.cfg.seed)

    @property
    def time(self) -> float:
        """Simulated seconds since the bridge started (monotonic across resets)."""
        return self._offset + self.physics.time

    @property
    def instruction(self) -> str:
        return self.env.instruction

    @property
    def mode(self) -> CommandMode:
        return self._mode

    def reset(self, seed: int | None = None) -> str:
        """Start a new episode (objects re-drawn, arm at home, gripper open, no command); returns its instruction."""
        if hasattr(self, '_mode'):
            self._offset = self.time
        self.env.reset(seed)
        self._mode = CommandMode.HOLD
        self._pose_target: tuple[np.ndarray, np.ndarray] | None = None
        self._trajectory: tuple[np.ndarray, np.ndarray] | None = None  # (absolute times (P+1,), joints (P+1, 7))
        self._moving = False  # a move_to (MoveGroup) motion owns the arm until end_move()
        self._gripper_closed = 0.0
        self._fingers_prev = None
        self._finger_velocity = np.zeros(2)
        self._quat_prev = np.array([1.0, 0.0, 0.0, 0.0])
        self._next_frame = self.time
        return self.instruction

    # ------------------------------------------------------------------------------------------------ commands
    def on_pose_target(self, position: np.ndarray, quaternion: np.ndarray) -> None:
        """An equilibrium pose: TCP position (3,) m and orientation (x, y, z, w) in the base frame.

        Raises:
            ValueError: non-finite values or a degenerate quaternion (the command is ignored, as franka's
                controller discards it), or a move_to motion running (see end_move).
        """
        self._check_not_moving()
        position = np.asarray(position, dtype=np.float64).reshape(-1)
        quaternion = np.asarray(quaternion, dtype=np.float64).reshape(-1)
        if position.shape != (3,) or quaternion.shape != (4,) or not (
                np.all(np.isfinite(position)) and np.all(np.isfinite(quaternion))):
            raise ValueError(f'a pose target needs 3 + 4 finite values, got {position.tolist()} {quaternion.tolist()}')
        rot = _kin.rotvec_to_matrix(quat_to_rotvec(quat_normalize(quaternion)))  # raises on a zero quaternion
        self._pose_target = (position.copy(), rot)
        self._mode = CommandMode.POSE

    def on_joint_trajectory(self, names: Sequence[str], times: Sequence[float], positions: np.ndarray,
                            start: float = 0.0) -> None:
        """A joint trajectory: `positions` (P, len(names)) at `start + times` s (start 0 = now), replacing any other.

        Before its first point the arm moves linearly from its current command; after its last point it holds.

        Raises:
            ValueError: names that are not exactly the 7 arm joints, a shape mismatch, non-increasing or negative
                times, non-finite positions, or a move_to motion running (see end_move).
        """
        self._check_not_moving()
        names = list(names)
        if sorted(names) != sorted(self.cfg.arm_joints):
            raise ValueError(f'a joint trajectory must name the arm joints {list(self.cfg.arm_joints)}, got {names}')
        positions = np.asarray(positions, dtype=np.float64)
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if positions.ndim != 2 or positions.shape != (times.size, 7) or times.size == 0:
            raise ValueError(f'a joint trajectory needs positions (P, 7) for P times, got {positions.shape} and '
                             f'{times.size} times')
        if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(times))) or times[0] < 0 or np.any(
                np.diff(times) <= 0):
            raise ValueError(f'joint trajectory times must be finite, >= 0 and increasing, positions finite; got '
                             f'times {times.tolist()}')
        order = [names.index(n) for n in self.cfg.arm_joints]
        now = self.time
        start = now if start <= 0 else start
        t_abs = np.concatenate([[now], start + times])
        joints = np.vstack([self.controller.q_cmd, positions[:, order]])
        if t_abs[1] <= now:  # the first point is already due: no ramp from the current command
            t_abs, joints = t_abs[1:], joints[1:]
        self._trajectory = (t_abs, joints)
        self._mode = CommandMode.TRAJECTORY

    def move_to(self, names: Sequence[str], positions: Sequence[float], velocity_scaling: float = 0.2,
                min_duration: float = 0.5) -> float:
        """Move the arm to `positions` (rad, in `names` order) along a straight joint path, each joint at most
        `velocity_scaling` of its velocity limit; returns the motion's duration (s, simulated).

        Raises:
            ValueError: names that are not the 7 arm joints, non-finite positions, positions outside the sim's joint
                range, or a scaling outside (0, 1].
        """
        if not 0 < velocity_scaling <= 1:
            raise ValueError(f'velocity_scaling must be in (0, 1], got {velocity_scaling}')
        names = list(names)
        if sorted(names) != sorted(self.cfg.arm_joints):
            raise ValueError(f'a start pose must name the arm joints {list(self.cfg.arm_joints)}, got {names}')
        q = np.asarray(positions, dtype=np.float64).reshape(-1)[[names.index(n) for n in self.cfg.arm_joints]]
        lower, upper = self.physics.arm_range[:, 0], self.physics.arm_range[:, 1]
        if not np.all(np.isfinite(q)) or np.any(q < lower) or np.any(q > upper):
            raise ValueError(f'start pose {q.round(3).tolist()} is outside the joint range')
        robot = self.cfg.robot_type if self.cfg.robot_type in JOINT_LIMITS else 'fr3'
        speed = np.asarray(joint_limits(robot).velocity) * velocity_scaling
        duration = max(min_duration, float(np.max(np.abs(q - self.controller.q_cmd) / speed)))
        self._moving = False
        self.on_joint_trajectory(list(self.cfg.arm_joints), [duration], q[None])
        self._moving = True
        return duration

    def end_move(self) -> None:
        """The move_to motion is over (reached or given up): pose targets and trajectories are accepted again.

        Until then they raise: on the robot MoveIt's controller has replaced the policy's (cartesian_impedance's
        equilibrium_pose goes nowhere); here a late target from before the reset, queued while the scene reset ran,
        turned the move into a pose hold and the MoveGroup goal timed out (seen on the Jazzy build).
        """
        self._moving = False

    def _check_not_moving(self) -> None:
        if self._moving:
            raise ValueError('a MoveGroup motion owns the arm until it ends')

    def reached(self, positions: Sequence[float], tolerance: float = 0.01) -> bool:
        """Whether every arm joint is within `tolerance` rad of `positions` (arm joint order)."""
        return bool(np.all(np.abs(self.physics.arm_qpos - np.asarray(positions, dtype=np.float64)) <= tolerance))

    def on_gripper(self, width: float) -> None:
        """Move the fingers towards `width` m between them (0 closes fully; an object stops them)."""
        if not math.isfinite(width):
            raise ValueError(f'gripper width must be finite, got {width}')
        self._gripper_closed = float(np.clip(1.0 - width / _GRIPPER_MAX_WIDTH, 0.0, 1.0))

    @property
    def gripper_width(self) -> float:
        """Current distance between the fingers (m)."""
        return self.physics.gripper_opening

    @property
    def gripper_moving(self) -> bool:
        """Whether a finger moved faster than 1 mm/s in the last step."""
        return bool(np.max(np.abs(self._finger_velocity)) > _MOVING_SPEED)

    # ---------------------------------------------------------------------------------------------------- step
    def _trajectory_sample(self, t: float) -> np.ndarray:
        times, joints = self._trajectory
        if t <= times[0]:
            return joints[0]
        if t >= times[-1]:
            return joints[-1]
        i = int(np.searchsorted(times, t, side='right')) - 1
        alpha = (t - times[i]) / (times[i + 1] - times[i])
        return joints[i] + alpha * (joints[i + 1] - joints[i])

    def step(self) -> SimState:
        """Advance one control period and report the state at its end."""
        t_next = self.time + 1.0 / self.cfg.control_hz
        if self._mode is CommandMode.POSE:
            position, rot = self._pose_target
            self.controller.joint_position(self.controller.ik.solve(self.controller.q_cmd, position, rot))
        elif self._mode is CommandMode.TRAJECTORY:
            self.controller.joint_position(self._trajectory_sample(t_next))
        self.physics.set_arm_target(self.controller.q_cmd)
        self.physics.set_gripper(self._gripper_closed)
        self.physics.step(self._substeps)
        fingers = self.physics.finger_qpos
        dt = 1.0 / self.cfg.control_hz
        self._finger_velocity = np.zeros(2) if self._fingers_prev is None else (fingers - self._fingers_prev) / dt
        self._fingers_prev = fingers
        images = {}
        if self.cfg.cameras and self.time >= self._next_frame - 1e-9:
            images = {c: self.physics.render(c) for c in self.cfg.cameras}
            self._next_frame += self._camera_period * max(1, math.floor((self.time - self._next_frame)
                                                                      / self._camera_period) + 1)
        quat = _matrix_to_quat(self.physics.tcp_rot)
        if quat @ self._quat_prev < 0:  # q and -q are one rotation: stay in one hemisphere so the stream is continuous
            quat = -quat
        self._quat_prev = quat
        return SimState(self.time, self.physics.arm_qpos, self.physics.arm_qvel, fingers, self._finger_velocity.copy(),
                        self.physics.tcp_pos, quat, images,
                        bool(self.env.task.is_success(self.physics)))

    def close(self) -> None:
        """Release the renderer."""
        self.env.close()

    def __enter__(self) -> SimBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
