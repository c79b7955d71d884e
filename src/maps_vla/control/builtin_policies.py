"""Built-in test policies ('zero', 'sine') and `make_policy`, which also loads checkpoints through maps_vla.model.

The built-ins need no weights: they exercise the runtime (replay, sim, ROS nodes) end to end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from maps_vla.control.franka_limits import FR3_HOME
from maps_vla.control.policy_runner import OBS_TIMESTAMP
from maps_vla.policy import ACTIONS, OBS_STATE, ActionSpec, BasePolicy, EE_DELTA_ACTION
from maps_vla.registry import Registry, unknown_name_error

__all__ = ['ZeroPolicy', 'SinePolicy', 'BUILTIN_POLICIES', 'make_policy', 'load_policy']

BUILTIN_POLICIES: Registry[Callable[..., BasePolicy]] = Registry('built-in policy')


def _arm_dims(spec: ActionSpec) -> list[int]:
    return [i for i in range(spec.dim) if i != spec.gripper_index]


@BUILTIN_POLICIES.register('zero')
class ZeroPolicy(BasePolicy):
    """No motion: zero deltas (ee_delta), or the observed joint positions repeated (joint_position); gripper open.

    Args:
        action_spec: what the actions mean.
        horizon: K, actions per chunk.
    """

    def __init__(self, action_spec: ActionSpec = EE_DELTA_ACTION, horizon: int = 10) -> None:
        self.action_spec, self.horizon = action_spec, horizon

    def infer(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        actions = np.zeros((self.horizon, self.action_spec.dim), dtype=np.float32)
        if self.action_spec.kind == 'joint_position':
            arm = _arm_dims(self.action_spec)
            actions[:, arm] = np.asarray(obs[OBS_STATE], dtype=np.float32)[:len(arm)]
        return {ACTIONS: actions}


@BUILTIN_POLICIES.register('sine')
class SinePolicy(BasePolicy):
    """A deterministic periodic motion on the observation's time axis, so overlapping chunks agree.

    ee_delta: the end effector follows p(t) = amplitude * sin(2 pi t / period + phase_d) around where it started
    (the actions are the per-step differences of that path); joint_position: q(t) = FR3 home (for 7 joints, else 0)
    + amplitude * sin(...).
    The gripper closes during the first half of each `gripper_period`.

    Args:
        action_spec: what the actions mean.
        horizon: K, actions per chunk.
        amplitude: m (ee_delta translation), rad (rotation and joints).
        period: s per cycle.
        gripper_period: s per open/close cycle.
    """

    def __init__(self, action_spec: ActionSpec = EE_DELTA_ACTION, horizon: int = 10, amplitude: float = 0.05,
                 period: float = 4.0, gripper_period: float = 6.0) -> None:
        if horizon < 1 or not (period > 0 and gripper_period > 0):
            raise ValueError(f'SinePolicy needs horizon >= 1 and periods > 0, got {horizon}, {period}, '
                             f'{gripper_period}')
        self.action_spec, self.horizon = action_spec, horizon
        self.amplitude, self.period, self.gripper_period = amplitude, period, gripper_period

    def _path(self, t: np.ndarray) -> np.ndarray:
        arm = _arm_dims(self.action_spec)
        phases = np.arange(len(arm)) * (2 * math.pi / max(len(arm), 1))
        scale = np.ones(len(arm))
        if self.action_spec.kind == 'ee_delta':
            scale[3:] = 0.5  # rotation amplitude in rad, half the translation's number
        return self.amplitude * scale * np.sin(2 * math.pi * t[:, None] / self.period + phases)

    def infer(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        dt = 1.0 / self.action_spec.control_hz
        t = float(obs[OBS_TIMESTAMP]) + dt * np.arange(self.horizon + 1)
        actions = np.zeros((self.horizon, self.action_spec.dim))
        arm = _arm_dims(self.action_spec)
        path = self._path(t)
        if self.action_spec.kind == 'ee_delta':
            actions[:, arm] = np.diff(path, axis=0)
        else:
            home = np.asarray(FR3_HOME) if len(arm) == len(FR3_HOME) else np.zeros(len(arm))
            actions[:, arm] = home + path[:-1]
        if self.action_spec.gripper_index is not None:
            actions[:, self.action_spec.gripper_index] = (t[:-1] % self.gripper_period) < 0.5 * self.gripper_period
        return {ACTIONS: actions.astype(np.float32)}


def load_policy(path: str | Path) -> BasePolicy:
    """A policy from a checkpoint folder (`maps_vla.model`, imported only when a checkpoint is used).

    Raises:
        FileNotFoundError: no such folder, or a file of the checkpoint is missing (named).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f'Checkpoint folder {str(path)!r} does not exist')
    from maps_vla.model.factory import load_policy as load_checkpoint

    return load_checkpoint(path)


def make_policy(spec: str, action_spec: ActionSpec = EE_DELTA_ACTION, **kwargs: Any) -> BasePolicy:
    """A built-in policy by name ('zero', 'sine'; `kwargs` go to it), else a checkpoint folder via load_policy.

    Raises:
        ValueError: neither a built-in name nor an existing folder (lists the built-ins, closest match first).
    """
    if spec in BUILTIN_POLICIES:
        return BUILTIN_POLICIES.get(spec)(action_spec=action_spec, **kwargs)
    if Path(spec).is_dir():
        return load_policy(spec)
    raise unknown_name_error('policy (a built-in name or a checkpoint folder)', spec, BUILTIN_POLICIES.names())
