"""The policy contract shared by the model, the sim evaluation, the ROS-free control loop and the ROS nodes.

A policy maps one observation dict to a chunk of actions (openpi's `infer`/`reset` surface). Extra behaviour
(recording, timing, serving) wraps a policy instead of adding flags to it.

Observation keys (LeRobot naming):
    OBS_IMAGE_PREFIX + <camera>: uint8 array (H, W, 3), RGB, e.g. 'observation.images.third_person'
    OBS_STATE: float32 (state_dim,), proprio (see ActionSpec / the env's features)
    TASK: str, the language instruction
Output keys:
    ACTIONS: float32 (chunk, action_dim), un-normalized, in the units of the ActionSpec
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import numpy as np

__all__ = ['BasePolicy', 'ActionSpec', 'OBS_IMAGE_PREFIX', 'OBS_STATE', 'TASK', 'ACTIONS', 'EE_DELTA_ACTION']

OBS_IMAGE_PREFIX = 'observation.images.'
OBS_STATE = 'observation.state'
TASK = 'task'
ACTIONS = 'actions'


@dataclasses.dataclass(frozen=True)
class ActionSpec:
    """What one action vector means; the model, the sim and the robot bridge must agree on it."""

    names: tuple[str, ...] = ('dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper')  # one per dimension
    kind: str = 'ee_delta'  # 'ee_delta': metres/radians per control step in the base frame; 'joint_position': rad
    gripper_index: int | None = 6  # dimension holding the gripper command: 0 = open, 1 = closed
    control_hz: float = 10.0  # actions are one control step apart

    def __post_init__(self) -> None:
        if self.kind not in ('ee_delta', 'joint_position'):
            raise ValueError(f"ActionSpec.kind must be 'ee_delta' or 'joint_position', got {self.kind!r}")
        if self.gripper_index is not None and not 0 <= self.gripper_index < len(self.names):
            raise ValueError(f'ActionSpec.gripper_index {self.gripper_index} is outside 0..{len(self.names) - 1}')
        if self.control_hz <= 0:
            raise ValueError(f'ActionSpec.control_hz must be > 0, got {self.control_hz}')

    @property
    def dim(self) -> int:
        return len(self.names)


EE_DELTA_ACTION = ActionSpec()


def action_kind_from_names(names: tuple[str, ...], gripper_index: int | None) -> str:
    """'joint_position' when every non-gripper action dimension is named after a joint, else 'ee_delta'.

    LeRobot datasets name their action dimensions but do not say what they are; the sim's joint-position actions
    are panda_joint1..7 + gripper, its end-effector deltas dx..dyaw + gripper.
    """
    arm = [n for i, n in enumerate(names) if i != gripper_index]
    return 'joint_position' if arm and all('joint' in str(n) for n in arm) else 'ee_delta'


class BasePolicy(abc.ABC):
    """Anything that turns an observation into a chunk of actions."""

    @abc.abstractmethod
    def infer(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Returns at least {ACTIONS: float32 (chunk, action_dim)} for one observation."""

    def reset(self) -> None:
        """Forget any per-episode state (history, cached chunks)."""
