"""Franka joint names and limits, as data.

Position and velocity limits: franka_description `robots/{fr3,fer}/joint_limits.yaml`; acceleration limits: MoveIt
`fr3_joint_limits.yaml` (listed there for FR3 only; reused for FER/Panda as the conservative choice; libfranka allows
10 rad/s^2 on every FR3 joint). FR3 velocity limits are also position-dependent in libfranka (`rate_limiting.h`);
these are the constant upper bounds. See docs/reference/ros2_franka.md §1.7.

Jerk limits and the Cartesian limits: Franka's "Control Interface Specification and Robot Limits" page
(https://frankarobotics.github.io/docs/robot_specifications.html, tables "Limits for Franka Research 3" and "Limits
for Franka Emika Robot (FER)"), as libfranka encodes them in `include/franka/rate_limiting.h` (`kMaxJointJerk`,
`kMaxTranslational{Velocity,Acceleration,Jerk}`, `kMaxRotational{Velocity,Acceleration,Jerk}`; FR3: libfranka >= 0.10,
FER: libfranka 0.9.x, the last release for that arm). A command stream that breaks them aborts the motion
(libfranka's velocity/acceleration/jerk discontinuity reflexes).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from maps_vla.registry import Registry

__all__ = ['JointLimits', 'CartesianLimits', 'JOINT_LIMITS', 'CARTESIAN_LIMITS', 'joint_limits', 'cartesian_limits',
           'FR3_HOME', 'GRIPPER_MAX_WIDTH']


@dataclasses.dataclass(frozen=True)
class JointLimits:
    """Per-joint limits of one arm, in joint order."""

    names: tuple[str, ...]  # joint names as published on joint_states
    lower: tuple[float, ...]  # rad
    upper: tuple[float, ...]  # rad
    velocity: tuple[float, ...]  # rad/s
    acceleration: tuple[float, ...]  # rad/s^2
    jerk: tuple[float, ...]  # rad/s^3

    def __post_init__(self) -> None:
        n = len(self.names)
        for field in ('lower', 'upper', 'velocity', 'acceleration', 'jerk'):
            if len(getattr(self, field)) != n:
                raise ValueError(f'JointLimits.{field} has {len(getattr(self, field))} values for {n} joints')
        if any(lo >= hi for lo, hi in zip(self.lower, self.upper)):
            raise ValueError('JointLimits.lower must be below upper for every joint')

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(lower, upper, velocity, acceleration) as float64 arrays (7,); `jerk` is separate."""
        return tuple(np.asarray(getattr(self, f), dtype=np.float64)
                     for f in ('lower', 'upper', 'velocity', 'acceleration'))


@dataclasses.dataclass(frozen=True)
class CartesianLimits:
    """End-effector limits of one arm (norms of the translational and rotational derivatives)."""

    translation_velocity: float  # m/s
    translation_acceleration: float  # m/s^2
    translation_jerk: float  # m/s^3
    rotation_velocity: float  # rad/s
    rotation_acceleration: float  # rad/s^2
    rotation_jerk: float  # rad/s^3


_FR3_ACC = (3.75, 1.875, 2.5, 3.125, 3.75, 5.0, 5.0)
_FR3 = dict(lower=(-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159),
            upper=(2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159),
            velocity=(2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26), acceleration=_FR3_ACC,
            jerk=(5000.0,) * 7)  # robot_specifications.html "Limits for Franka Research 3"; kMaxJointJerk
_FER = dict(lower=(-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973),
            upper=(2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973),
            velocity=(2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61), acceleration=_FR3_ACC,
            jerk=(7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0))  # "Limits for FER"; libfranka 0.9.x
# robot_specifications.html, Cartesian rows of the same tables (libfranka kMaxTranslational*/kMaxRotational*).
_FR3_CARTESIAN = CartesianLimits(3.0, 9.0, 4500.0, 2.5, 17.0, 8500.0)
_FER_CARTESIAN = CartesianLimits(1.7, 13.0, 6500.0, 2.5, 25.0, 12500.0)

JOINT_LIMITS: Registry[JointLimits] = Registry('robot type')
JOINT_LIMITS.register('fr3')(JointLimits(names=tuple(f'fr3_joint{i}' for i in range(1, 8)), **_FR3))
JOINT_LIMITS.register('fp3')(JointLimits(names=tuple(f'fp3_joint{i}' for i in range(1, 8)), **_FR3))
JOINT_LIMITS.register('fer')(JointLimits(names=tuple(f'fer_joint{i}' for i in range(1, 8)), **_FER))
# franka_ros2 <= 0.1.x and ROS 1 name the FER joints panda_joint1..7.
JOINT_LIMITS.register('panda')(JointLimits(names=tuple(f'panda_joint{i}' for i in range(1, 8)), **_FER))

CARTESIAN_LIMITS: Registry[CartesianLimits] = Registry('robot type')
for _name, _limits in (('fr3', _FR3_CARTESIAN), ('fp3', _FR3_CARTESIAN), ('fer', _FER_CARTESIAN),
                       ('panda', _FER_CARTESIAN)):
    CARTESIAN_LIMITS.register(_name)(_limits)

# The 'ready' pose of franka_ros2's fake hardware, SRDF and move_to_start.
FR3_HOME = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)
GRIPPER_MAX_WIDTH = 0.08  # m, both fingers (each 0-0.04 m)


def joint_limits(robot_type: str) -> JointLimits:
    """The limits of 'fr3', 'fp3', 'fer' or 'panda' (ValueError with the closest name otherwise)."""
    return JOINT_LIMITS.get(robot_type)


def cartesian_limits(robot_type: str) -> CartesianLimits:
    """The Cartesian limits of 'fr3', 'fp3', 'fer' or 'panda' (ValueError with the closest name otherwise)."""
    return CARTESIAN_LIMITS.get(robot_type)
