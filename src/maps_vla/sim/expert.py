"""Scripted pick-and-place expert: a phase machine on privileged sim state that emits EE delta actions.

It serves both tasks (each exposes `object_body`, `object_shape()` and `goal_position()`): approach above the
object with the gripper yawed to a graspable face, descend, close, lift, carry above the goal, lower, open,
retreat. If the object slips out during lift or carry it starts over from the approach.

`miss_next_grasp` makes it close its first grasp beside the object on purpose: it finds the gripper empty on
lifting, opens and starts over, so the demo shows the recovery a cloned policy needs after a missed grasp (its
most common failure: docs/results/grinningface.md).
"""

from __future__ import annotations

import enum
import math

import numpy as np

from maps_vla.sim import kinematics as _kin
from maps_vla.sim.env import FrankaEnv

__all__ = ['PickPlaceExpert', 'Phase']

_SPEED = 0.25  # m/s, TCP speed limit
_YAW_SPEED = 1.5  # rad/s
_CLEAR_HEIGHT = 0.12  # m above the object or goal for approach, carry and retreat
# TCP height above the object centre when closing (m): a grasp axis through the centre of mass leaves gravity no
# lever to spin the object about it.
_GRASP_ABOVE_CENTER = 0.002
_CLOSE_SECONDS = 0.6
_OPEN_SECONDS = 0.4
_POS_TOL = 0.006
_YAW_TOL = math.radians(3.0)


class Phase(enum.Enum):
    APPROACH = 'approach'
    DESCEND = 'descend'
    CLOSE = 'close'
    LIFT = 'lift'
    CARRY = 'carry'
    LOWER = 'lower'
    OPEN = 'open'
    RETREAT = 'retreat'
    DONE = 'done'


def _yaw(rot: np.ndarray) -> float:
    return math.atan2(rot[1, 0], rot[0, 0])


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class PickPlaceExpert:
    """Scripted expert for `pick_place` and `emoji` with EE delta actions.

    Args:
        env: the environment; the expert reads `env.physics` and `env.task` (privileged state).

    Raises:
        ValueError: if the env does not use 'ee_delta' actions.
    """

    def __init__(self, env: FrankaEnv) -> None:
        if env.action_spec.kind != 'ee_delta':
            raise ValueError(f"the scripted expert emits 'ee_delta' actions; the env uses {env.action_spec.kind!r}")
        self.env = env
        self._dt = 1.0 / env.control_hz
        self.reset()

    def reset(self) -> None:
        """Start a new episode (call after env.reset)."""
        self.phase = Phase.APPROACH
        self._timer = 0
        self._grip = 0.0
        self._grasp_yaw: float | None = None
        self._miss = 0.0

    def miss_next_grasp(self, offset: float) -> None:
        """Close the next grasp `offset` m (signed) beside the object, along the TCP x axis (across the fingers'
        closing line), so it comes up empty; call after `reset`. The expert recovers as from a slip."""
        self._miss = float(offset)

    def _target_yaw(self, tcp_yaw: float) -> float:
        """TCP yaw that puts the fingers across a graspable pair of faces, nearest to the current yaw."""
        shape = self.env.task.object_shape()
        if shape.symmetry is None:
            return tcp_yaw
        obj_yaw = _yaw(self.env.physics.body_rot(self.env.task.object_body))
        # The fingers close along the TCP y axis; a box is gripped across its local y faces at TCP yaw = box yaw.
        k = round((tcp_yaw - obj_yaw) / shape.symmetry)
        return obj_yaw + k * shape.symmetry

    def _move(self, target: np.ndarray, yaw: float) -> np.ndarray:
        # Deltas are taken from the controller's commanded pose, which leads the measured one by the servo lag;
        # taken from the measured pose they would overshoot every stop by that lag. Phase changes use measured.
        pos, rot = self.env.controller.commanded_pose()
        step = _SPEED * self._dt
        dpos = np.clip(target - pos, -step, step)
        target_rot = np.array([[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0],
                               [0.0, 0.0, 1.0]]) @ _kin.TOOL_DOWN
        drot = np.clip(_kin.matrix_to_rotvec(target_rot @ rot.T), -_YAW_SPEED * self._dt, _YAW_SPEED * self._dt)
        return np.concatenate([dpos, drot, [self._grip]]).astype(np.float32)

    def _holding(self) -> bool:
        physics = self.env.physics
        offset = physics.body_pos(self.env.task.object_body) - physics.tcp_pos
        return bool(np.linalg.norm(offset[:2]) < 0.03 and -0.04 < offset[2] < 0.02 and physics.gripper_opening > 0.005)

    def get_action(self, obs: dict | None = None) -> np.ndarray:
        """The next (7,) float32 EE delta action; `obs` is unused (the expert reads privileged state)."""
        physics, task = self.env.physics, self.env.task
        tcp = physics.tcp_pos
        tcp_yaw = _yaw(physics.tcp_rot)
        obj = physics.body_pos(task.object_body)
        goal = task.goal_position(physics)
        shape = task.object_shape()
        grasp = np.array([obj[0], obj[1], obj[2] + _GRASP_ABOVE_CENTER])
        if self.phase in (Phase.LIFT, Phase.CARRY, Phase.LOWER) and not self._holding():
            self.phase, self._grip, self._grasp_yaw = Phase.APPROACH, 0.0, None  # dropped it: start over
            self._miss = 0.0
        if self.phase is Phase.APPROACH:
            self._grasp_yaw = self._target_yaw(tcp_yaw)
        if self.phase in (Phase.APPROACH, Phase.DESCEND, Phase.CLOSE) and self._miss:
            # the TCP x axis in the base frame at the grasp yaw (TOOL_DOWN keeps x): beside the object, not on it
            grasp = grasp + self._miss * np.array([math.cos(self._grasp_yaw), math.sin(self._grasp_yaw), 0.0])
        if self.phase is Phase.APPROACH:
            above = grasp + [0.0, 0.0, _CLEAR_HEIGHT]
            if np.linalg.norm(above - tcp) < 2 * _POS_TOL and abs(_wrap(self._grasp_yaw - tcp_yaw)) < _YAW_TOL:
                self.phase = Phase.DESCEND
            return self._move(above, self._grasp_yaw)
        if self.phase is Phase.DESCEND:
            if np.linalg.norm(grasp - tcp) < _POS_TOL:
                self.phase, self._timer = Phase.CLOSE, 0
            return self._move(grasp, self._grasp_yaw)
        if self.phase is Phase.CLOSE:
            self._grip = 1.0
            self._timer += 1
            if self._timer * self._dt >= _CLOSE_SECONDS:
                self.phase = Phase.LIFT
            return self._move(grasp, self._grasp_yaw)
        carry_z = goal[2] + _CLEAR_HEIGHT
        if self.phase is Phase.LIFT:
            target = np.array([tcp[0], tcp[1], carry_z])
            if abs(carry_z - tcp[2]) < 2 * _POS_TOL:
                self.phase = Phase.CARRY
            return self._move(target, tcp_yaw)
        # While carrying, aim the TCP so the object (not the TCP) ends up over the goal.
        held_offset = obj - tcp
        if self.phase is Phase.CARRY:
            target = np.array([goal[0] - held_offset[0], goal[1] - held_offset[1], carry_z])
            if np.linalg.norm(target - tcp) < _POS_TOL:
                self.phase = Phase.LOWER
            return self._move(target, tcp_yaw)
        if self.phase is Phase.LOWER:
            target = np.array([goal[0] - held_offset[0], goal[1] - held_offset[1], goal[2] + 0.004 - held_offset[2]])
            if np.linalg.norm(target - tcp) < _POS_TOL:
                self.phase, self._timer = Phase.OPEN, 0
            return self._move(target, tcp_yaw)
        if self.phase is Phase.OPEN:
            self._grip = 0.0
            self._timer += 1
            if self._timer * self._dt >= _OPEN_SECONDS:
                self.phase = Phase.RETREAT
            return self._move(tcp, tcp_yaw)
        target = np.array([tcp[0], tcp[1], goal[2] + _CLEAR_HEIGHT - shape.half_height])
        if self.phase is Phase.RETREAT and abs(target[2] - tcp[2]) < 2 * _POS_TOL:
            self.phase = Phase.DONE
        return self._move(target, tcp_yaw)
