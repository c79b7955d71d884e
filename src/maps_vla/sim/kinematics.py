"""Franka Panda kinematic facts and a numpy forward-kinematics reference (no MuJoCo).

Franka documents its arm with the *modified* (Craig) Denavit-Hartenberg convention: the transform from frame i-1
to frame i is RotX(alpha_{i-1}) · TransX(a_{i-1}) · RotZ(theta_i) · TransZ(d_i). The numbers below come from
Franka's "Robot and interface specifications" page and franka_description (see sim/assets/franka_panda/README.md).
The MJCF generator (`panda_model.py`) builds its bodies from these same constants, and the tests check that
MuJoCo's flange and TCP poses equal `forward_kinematics` here.

Rotation helpers (`rotvec_to_matrix`, `matrix_to_rotvec`) are the axis-angle maps used for EE delta actions and
the EE orientation in `observation.state`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    'DH_A', 'DH_D', 'DH_ALPHA', 'FLANGE_D', 'HAND_YAW', 'TCP_OFFSET', 'FINGER_OFFSET', 'FINGER_RANGE',
    'JOINT_LOWER', 'JOINT_UPPER', 'JOINT_VELOCITY', 'JOINT_EFFORT', 'HOME_QPOS', 'TOOL_DOWN',
    'dh_transform', 'forward_kinematics', 'rotvec_to_matrix', 'matrix_to_rotvec',
]

# Modified DH, joints 1..7 (metres, radians): a_{i-1}, d_i, alpha_{i-1}.
DH_A = (0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088)
DH_D = (0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0)
DH_ALPHA = (0.0, -np.pi / 2, np.pi / 2, np.pi / 2, -np.pi / 2, np.pi / 2, np.pi / 2)
FLANGE_D = 0.107  # flange frame: TransZ(0.107) after joint 7
HAND_YAW = -np.pi / 4  # the Franka hand is mounted rotated -45 deg about the flange z axis
TCP_OFFSET = 0.1034  # hand frame -> TCP (between the fingertips), along hand z
FINGER_OFFSET = 0.0584  # hand frame -> finger joint origins, along hand z
FINGER_RANGE = (0.0, 0.04)  # each finger's travel (m); opening width = 2 x finger position

# Panda (FER) limits from franka_description robots/fer/joint_limits.yaml (rad, rad/s, Nm).
JOINT_LOWER = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
JOINT_UPPER = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
JOINT_VELOCITY = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)
JOINT_EFFORT = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)

# Franka's "ready" pose (SRDF `ready`, franka_ros2 fake-hardware start, move_to_start default) + open fingers.
HOME_QPOS = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4, 0.04, 0.04)

# Tool pointing straight down (TCP z = -base z); the EE orientation in observations is relative to this.
TOOL_DOWN = np.diag([1.0, -1.0, -1.0])


def dh_transform(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    """One modified-DH step RotX(alpha) · TransX(a) · RotZ(theta) · TransZ(d) as a 4x4 matrix."""
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array([
        [ct, -st, 0.0, a],
        [st * ca, ct * ca, -sa, -sa * d],
        [st * sa, ct * sa, ca, ca * d],
        [0.0, 0.0, 0.0, 1.0],
    ])


def _rotz(angle: float) -> np.ndarray:
    out = np.eye(4)
    out[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return out


def forward_kinematics(q: np.ndarray, frame: str = 'tcp') -> np.ndarray:
    """Pose of a Panda frame in the base (link0) frame from the DH model.

    Args:
        q: (7,) arm joint angles in radians.
        frame: 'flange' (link8), 'hand' (flange rotated by HAND_YAW) or 'tcp' (hand + TCP_OFFSET along z).

    Returns:
        (4, 4) homogeneous transform.

    Raises:
        ValueError: for a wrong shape of `q` or an unknown frame.
    """
    q = np.asarray(q, dtype=float)
    if q.shape != (7,):
        raise ValueError(f'forward_kinematics expects q of shape (7,), got {q.shape}')
    if frame not in ('flange', 'hand', 'tcp'):
        raise ValueError(f"forward_kinematics frame must be 'flange', 'hand' or 'tcp', got {frame!r}")
    pose = np.eye(4)
    for a, d, alpha, theta in zip(DH_A, DH_D, DH_ALPHA, q):
        pose = pose @ dh_transform(a, d, alpha, theta)
    pose = pose @ dh_transform(0.0, FLANGE_D, 0.0, 0.0)
    if frame == 'flange':
        return pose
    pose = pose @ _rotz(HAND_YAW)
    if frame == 'hand':
        return pose
    return pose @ dh_transform(0.0, TCP_OFFSET, 0.0, 0.0)


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues: (3,) axis-angle (axis x angle, radians) -> (3, 3) rotation matrix."""
    rotvec = np.asarray(rotvec, dtype=float)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * kx @ kx


def matrix_to_rotvec(rot: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> (3,) axis-angle with angle in [0, pi]; accurate near 0 and near pi."""
    rot = np.asarray(rot, dtype=float)
    skew = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])  # 2 sin(angle) axis
    sin_angle = np.linalg.norm(skew) / 2.0
    cos_angle = (np.trace(rot) - 1.0) / 2.0
    angle = float(np.arctan2(sin_angle, cos_angle))
    if angle < 1e-6:
        return 0.5 * skew  # first order: R ~ I + [w]x
    if angle < np.pi - 1e-3:
        return angle / (2.0 * sin_angle) * skew
    # Near pi the skew part vanishes: the symmetric part is cos(a) I + (1 - cos(a)) axis axisᵀ.
    outer = ((rot + rot.T) / 2.0 - cos_angle * np.eye(3)) / (1.0 - cos_angle)
    i = int(np.argmax(np.diag(outer)))
    axis = outer[:, i] / np.sqrt(outer[i, i])
    if np.dot(axis, skew) < 0:
        axis = -axis
    return angle * axis / np.linalg.norm(axis)
