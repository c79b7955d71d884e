"""The policy's proprio state vector (`observation.state`) assembled from live joint states and the EE pose.

Two layouts (`StateKind`):
* `ee_pose` (the sim's `observation.state`, so sim-trained policies see the same numbers on the robot): TCP
  position (3, m, base frame), TCP orientation as a rotation vector relative to tool-down (3, rad; zero when the
  gripper points straight down with its x axis along base x), then the two finger positions (m).
* `joint_positions`: the arm joints in `joints` order, then the finger positions.
Parts may come from different topics (franka: arm joints on `franka/joint_states`, fingers on
`franka_gripper/joint_states`, the pose on `franka_robot_state_broadcaster/current_pose`); the state's stamp is the
oldest part's, which is the time the whole vector is valid for.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
from collections.abc import Sequence

import numpy as np

from maps_vla.control.franka_limits import joint_limits
from maps_vla.control.rotations import quat_conjugate, quat_multiply, quat_normalize, quat_to_rotvec

__all__ = ['StateKind', 'StateConfig', 'ProprioAssembler', 'TOOL_DOWN_QUAT', 'tool_rotvec']

# Tool pointing down: a rotation of pi about base x, (x, y, z, w); the sim's kinematics.TOOL_DOWN as a quaternion.
TOOL_DOWN_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
_EE_NAMES = ('tcp_x', 'tcp_y', 'tcp_z', 'tcp_rx', 'tcp_ry', 'tcp_rz')


class StateKind(enum.Enum):
    """What the state vector holds."""

    EE_POSE = 'ee_pose'
    JOINT_POSITIONS = 'joint_positions'


@dataclasses.dataclass(frozen=True)
class StateConfig:
    """Which measurements form `observation.state`, in which order."""

    kind: StateKind = StateKind.EE_POSE  # ee_pose: TCP pose + fingers (the sim's layout); joint_positions: joints + fingers
    joints: tuple[str, ...] = joint_limits('fr3').names  # arm joints (joint_positions), in state order
    finger_joints: tuple[str, ...] = ('fr3_finger_joint1', 'fr3_finger_joint2')  # appended to both layouts; () = none

    def __post_init__(self) -> None:
        if self.kind is StateKind.JOINT_POSITIONS and not self.joints:
            raise ValueError('StateConfig.joints must name at least one joint for kind joint_positions')
        names = list(self.joints) + list(self.finger_joints)
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f'StateConfig joints and finger_joints must be distinct non-empty names, got {names}')

    @property
    def names(self) -> tuple[str, ...]:
        """One name per state dimension (the dataset feature's `names`)."""
        lead = _EE_NAMES if self.kind is StateKind.EE_POSE else self.joints
        return (*lead, *self.finger_joints)

    @property
    def dim(self) -> int:
        return len(self.names)


def tool_rotvec(quaternion: np.ndarray) -> np.ndarray:
    """Rotation vector (3,) of a TCP orientation (x, y, z, w) relative to tool-down, angle in [0, pi]."""
    return quat_to_rotvec(quat_multiply(quat_conjugate(TOOL_DOWN_QUAT), quat_normalize(quaternion)))


class ProprioAssembler:
    """Keeps the latest joint positions and EE pose and builds the state vector from them (thread-safe).

    Args:
        cfg: the state layout.
    """

    def __init__(self, cfg: StateConfig | None = None) -> None:
        self.cfg = cfg or StateConfig()
        self._joints = list(self.cfg.finger_joints) + (
            list(self.cfg.joints) if self.cfg.kind is StateKind.JOINT_POSITIONS else [])
        self._values: dict[str, tuple[float, float]] = {}  # joint -> (position, stamp)
        self._pose: tuple[np.ndarray, float] | None = None  # (position 3 + rotvec 3, stamp)
        self._lock = threading.Lock()

    @property
    def needs_pose(self) -> bool:
        return self.cfg.kind is StateKind.EE_POSE

    def on_joint_state(self, names: Sequence[str], positions: np.ndarray, stamp: float) -> int:
        """Take the positions of the joints this state uses from a JointState (others are ignored).

        Returns:
            How many of the state's joints the message carried. Non-finite positions are not taken.
        """
        taken = 0
        with self._lock:
            for name, value in zip(names, np.asarray(positions, dtype=np.float64).reshape(-1)):
                if name in self._joints and math.isfinite(value):
                    self._values[name] = (float(value), float(stamp))
                    taken += 1
        return taken

    def on_pose(self, position: np.ndarray, quaternion: np.ndarray, stamp: float) -> None:
        """Take the measured TCP pose (base frame, quaternion x, y, z, w).

        Raises:
            ValueError: non-finite values or a zero quaternion.
        """
        position = np.asarray(position, dtype=np.float64).reshape(-1)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise ValueError(f'EE position must be 3 finite values, got {position.tolist()}')
        ee = np.concatenate([position, tool_rotvec(quaternion)])
        with self._lock:
            self._pose = (ee, float(stamp))

    def missing(self) -> list[str]:
        """The parts not received yet ('ee_pose' and joint names)."""
        with self._lock:
            out = ['ee_pose'] if self.needs_pose and self._pose is None else []
            return out + [j for j in self._joints if j not in self._values]

    def state(self) -> tuple[np.ndarray, float] | None:
        """(float32 (dim,), stamp of the oldest part), or None while a part is missing."""
        with self._lock:
            if any(j not in self._values for j in self._joints) or (self.needs_pose and self._pose is None):
                return None
            stamps = [self._values[j][1] for j in self._joints]
            if self.cfg.kind is StateKind.EE_POSE:
                lead, stamps = self._pose[0], stamps + [self._pose[1]]
            else:
                lead = np.array([self._values[j][0] for j in self.cfg.joints])
            fingers = np.array([self._values[j][0] for j in self.cfg.finger_joints])
        return np.concatenate([lead, fingers]).astype(np.float32), min(stamps)
