"""MoveIt Servo as a command path, as plain logic: twists toward the SafetyBridge's bounded target, and Servo's API.

With control_mode:=servo the franka bridge keeps its SafetyBridge (the same workspace box, step and lead limits
as for the equilibrium pose) and, instead of publishing the bounded target pose, streams a TwistStamped that drives
the measured TCP toward it: a proportional twist `gain * error`, clipped to the speeds the SafetyBridge allows
(max_translation_step / max_rotation_step per tick). Servo then adds its own singularity, collision and joint-limit
checks and commands a joint controller.

Servo's ROS API differs between Humble (moveit_servo 2.5) and Jazzy (2.12); `SERVO_API` holds both (see
docs/ros.md, "MoveIt Servo"): Humble must be started with `~/start_servo` (std_srvs/Trigger) and reports
std_msgs/Int8 status codes; Jazzy starts active, pauses with `~/pause_servo` (std_srvs/SetBool), takes twists
only after `~/switch_command_type` (moveit_msgs/srv/ServoCommandType, TWIST = 1) and reports moveit_msgs/ServoStatus,
whose codes 3..6 are numbered differently.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import numpy as np

from maps_vla.control import msg_conversion as mc
from maps_vla.control.rotations import quat_multiply, quat_normalize, quat_to_rotvec

__all__ = ['ServoConfig', 'Twist', 'twist_toward', 'twist_stamped', 'ServoApi', 'SERVO_API', 'servo_status_name',
           'command_type_request', 'COMMAND_TYPE_TWIST']

COMMAND_TYPE_TWIST = 1  # moveit_msgs/srv/ServoCommandType: JOINT_JOG 0, TWIST 1, POSE 2 (Jazzy)


@dataclasses.dataclass(frozen=True)
class ServoConfig:
    """How the bridge drives MoveIt Servo."""

    distro: str = 'jazzy'  # moveit_servo API: humble or jazzy
    node: str = '/servo_node'  # Servo's node name (its services are <node>/start_servo, ...)
    gain: float = 10.0  # 1/s; twist = gain * (bounded target - measured pose), then clipped
    frame_id: str = 'fr3_link0'  # frame of the twist (Jazzy requires one); the base frame

    def __post_init__(self) -> None:
        if self.distro not in SERVO_API:
            raise ValueError(f'ServoConfig.distro must be one of {sorted(SERVO_API)}, got {self.distro!r}')
        if not (self.gain > 0 and math.isfinite(self.gain)):
            raise ValueError(f'ServoConfig.gain must be a finite number > 0, got {self.gain}')
        if not self.node.startswith('/') or not self.frame_id:
            raise ValueError(f'ServoConfig.node must be an absolute name and frame_id non-empty, got '
                             f'{self.node!r} and {self.frame_id!r}')

    @property
    def api(self) -> ServoApi:
        return SERVO_API[self.distro]

    def service(self, name: str | None) -> str | None:
        """The full name of one of Servo's services ('start_servo' -> '/servo_node/start_servo'); None stays None."""
        return None if name is None else f'{self.node}/{name}'


class Twist(NamedTuple):
    """A velocity command: linear (3,) m/s and angular (3,) rad/s in the base frame."""

    linear: np.ndarray
    angular: np.ndarray


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v * (limit / norm) if norm > limit else v


def twist_toward(target_position: np.ndarray, target_quaternion: np.ndarray, measured_position: np.ndarray,
                 measured_quaternion: np.ndarray, gain: float, max_linear: float, max_angular: float) -> Twist:
    """The twist that moves the measured TCP pose toward the target: gain * error, norms clipped to the limits.

    Quaternions are (x, y, z, w); the angular error is the rotation vector of target * measured^-1 (base frame).

    Raises:
        ValueError: non-finite inputs (no twist is better than a wild one).
    """
    values = [np.asarray(v, dtype=np.float64).reshape(-1) for v in
              (target_position, target_quaternion, measured_position, measured_quaternion)]
    if [v.size for v in values] != [3, 4, 3, 4] or not all(np.all(np.isfinite(v)) for v in values):
        raise ValueError(f'twist_toward needs finite positions (3,) and quaternions (4,), got {values}')
    tp, tq, mp, mq = values
    rel = quat_multiply(quat_normalize(tq), quat_normalize(np.array([-mq[0], -mq[1], -mq[2], mq[3]])))
    linear = _clip_norm(gain * (tp - mp), max_linear)
    angular = _clip_norm(gain * quat_to_rotvec(rel), max_angular)
    return Twist(linear, angular)


def twist_stamped(types: mc.MessageTypes, twist: Twist, stamp: float, frame_id: str) -> Any:
    """geometry_msgs/TwistStamped of `twist` (Servo's `delta_twist_cmds` with command_in_type speed_units)."""
    cls = mc.message_class

    def vector(v: np.ndarray) -> Any:
        return cls(types, 'geometry_msgs/msg/Vector3')(x=float(v[0]), y=float(v[1]), z=float(v[2]))
    return cls(types, 'geometry_msgs/msg/TwistStamped')(
        header=mc.make_header(types, stamp, frame_id),
        twist=cls(types, 'geometry_msgs/msg/Twist')(linear=vector(twist.linear), angular=vector(twist.angular)))


class ServoApi(NamedTuple):
    """moveit_servo's services and status topic on one distro (service names relative to the Servo node)."""

    start: str | None  # std_srvs/Trigger that must be called before Servo moves; None: starts active
    pause: str  # pauses Servo (Humble: std_srvs/Trigger; Jazzy: std_srvs/SetBool, data true = pause)
    pause_type: str  # the pause service's type
    unpause: str | None  # Humble's separate std_srvs/Trigger; Jazzy: pause with data false
    switch_command_type: str | None  # Jazzy: moveit_msgs/srv/ServoCommandType; Humble: implicit by topic
    status_type: str  # type of ~/status
    status_codes: dict[int, str]  # status code -> name


_STATUS_HUMBLE = {-1: 'INVALID', 0: 'NO_WARNING', 1: 'DECELERATE_FOR_APPROACHING_SINGULARITY',
                  2: 'HALT_FOR_SINGULARITY', 3: 'DECELERATE_FOR_COLLISION', 4: 'HALT_FOR_COLLISION',
                  5: 'JOINT_BOUND', 6: 'DECELERATE_FOR_LEAVING_SINGULARITY'}
_STATUS_JAZZY = {-1: 'INVALID', 0: 'NO_WARNING', 1: 'DECELERATE_FOR_APPROACHING_SINGULARITY',
                 2: 'HALT_FOR_SINGULARITY', 3: 'DECELERATE_FOR_LEAVING_SINGULARITY', 4: 'DECELERATE_FOR_COLLISION',
                 5: 'HALT_FOR_COLLISION', 6: 'JOINT_BOUND'}
SERVO_API = {
    'humble': ServoApi(start='start_servo', pause='pause_servo', pause_type='std_srvs/srv/Trigger',
                       unpause='unpause_servo', switch_command_type=None, status_type='std_msgs/msg/Int8',
                       status_codes=_STATUS_HUMBLE),
    'jazzy': ServoApi(start=None, pause='pause_servo', pause_type='std_srvs/srv/SetBool', unpause=None,
                      switch_command_type='switch_command_type', status_type='moveit_msgs/msg/ServoStatus',
                      status_codes=_STATUS_JAZZY),
}


def servo_status_name(distro: str, code: int) -> str:
    """The name of a Servo status code on `distro` ('code <n>' when unknown)."""
    return SERVO_API[distro].status_codes.get(int(code), f'code {int(code)}')


def command_type_request(types: mc.MessageTypes) -> Any:
    """moveit_msgs/srv/ServoCommandType request selecting twist commands (Jazzy)."""
    return mc.message_class(types, 'moveit_msgs/srv/ServoCommandType_Request')(command_type=COMMAND_TYPE_TWIST)
