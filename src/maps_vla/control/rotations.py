"""Small quaternion helpers in numpy (scipy is not a dependency). Quaternions are (x, y, z, w), like ROS."""

from __future__ import annotations

import numpy as np

__all__ = ['quat_normalize', 'quat_conjugate', 'quat_multiply', 'quat_from_rotvec', 'quat_to_rotvec',
           'quat_angle', 'quat_from_euler']


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternion with w >= 0 (the same rotation, one canonical sign).

    Raises:
        ValueError: a zero or non-finite quaternion.
    """
    q = np.asarray(q, dtype=np.float64)
    norm = float(np.sqrt(q @ q))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f'Cannot normalize quaternion {q.tolist()}')
    q = q / norm
    return -q if q[3] < 0 else q


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse rotation of a unit quaternion."""
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b, then a)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz])


def quat_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, rad) -> unit quaternion."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.sqrt(rotvec @ rotvec))
    half = 0.5 * angle
    # sin(half)/angle, with its Taylor series near zero
    scale = 0.5 - angle * angle / 48.0 if angle < 1e-6 else np.sin(half) / angle
    return np.array([*(rotvec * scale), np.cos(half)])


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Unit quaternion -> rotation vector of angle in [0, pi]."""
    q = quat_normalize(q)
    s = float(np.sqrt(q[:3] @ q[:3]))
    angle = 2.0 * np.arctan2(s, q[3])
    scale = 2.0 + angle * angle / 12.0 if s < 1e-9 else angle / s
    return q[:3] * scale


def quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in [0, pi] of the rotation from a to b."""
    d = abs(float(np.dot(quat_normalize(a), quat_normalize(b))))
    return 2.0 * float(np.arccos(min(1.0, d)))


def quat_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Fixed-axis x-y-z (roll, pitch, yaw) angles -> quaternion, R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = np.cos(roll / 2), np.sin(roll / 2)
    cp, sp = np.cos(pitch / 2), np.sin(pitch / 2)
    cy, sy = np.cos(yaw / 2), np.sin(yaw / 2)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])
