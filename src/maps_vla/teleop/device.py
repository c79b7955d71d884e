"""The teleop contract: a device turns operator input into one `TeleopCommand` per control step.

A command is an end-effector delta in the robot base frame (metres and radians per control step, the units of
`maps_vla.policy.EE_DELTA_ACTION`), an absolute gripper command (0 = open, 1 = closed) and the episode events
the operator triggered since the last call (start/stop, discard, re-record, quit).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import importlib
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TypeVar

import numpy as np

__all__ = ['TeleopEvent', 'TeleopCommand', 'TeleopDevice', 'DeviceNotConnectedError', 'apply_deadband',
           'import_optional', 'open_all']


class TeleopEvent(enum.Enum):
    """Episode control requested by the operator."""

    START_STOP = 'start_stop'  # begin recording an episode, or end and save the one being recorded
    DISCARD = 'discard'  # drop the episode being recorded and move on to a new scene
    RERECORD = 'rerecord'  # drop the episode being recorded and restart the same scene
    QUIT = 'quit'  # end the session (an episode still being recorded is dropped)


@dataclasses.dataclass(frozen=True)
class TeleopCommand:
    """One control step of operator input.

    Attributes:
        delta: (6,) float32 [dx dy dz droll dpitch dyaw], base frame, metres / radians per control step
            (rotation as a rotation vector).
        gripper: 0.0 (open) .. 1.0 (closed).
        events: episode events since the previous command, in the order they happened.
    """

    delta: np.ndarray
    gripper: float = 0.0
    events: tuple[TeleopEvent, ...] = ()

    def __post_init__(self) -> None:
        delta = np.asarray(self.delta, dtype=np.float32)
        if delta.shape != (6,) or not np.all(np.isfinite(delta)):
            raise ValueError(f'TeleopCommand.delta must be 6 finite numbers, got {self.delta!r}')
        if not 0.0 <= self.gripper <= 1.0:
            raise ValueError(f'TeleopCommand.gripper must be in [0, 1], got {self.gripper!r}')
        object.__setattr__(self, 'delta', delta)

    @property
    def action(self) -> np.ndarray:
        """(7,) float32 [dx dy dz droll dpitch dyaw gripper]: the env / dataset action of this command."""
        return np.append(self.delta, np.float32(self.gripper)).astype(np.float32)


class DeviceNotConnectedError(RuntimeError):
    """A device was used before `connect()` (or after `close()`)."""


class TeleopDevice(abc.ABC):
    """An input device. Use as `with device: cmd = device.get_action()`, or call connect() / close().

    Subclasses keep their configuration in `self.config` and implement `_connect`, `_read` and `_close`;
    this base guards the connection state.
    """

    def __init__(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Open the device (terminal, joystick, HID handle).

        Raises:
            ImportError: the device's optional Python package is missing (the message names it).
            RuntimeError: no such device is attached, or it cannot be opened.
        """
        if not self._connected:
            self._connect()
            self._connected = True

    def get_action(self) -> TeleopCommand:
        """The command for this control step (non-blocking: it reads whatever input arrived since the last call).

        Raises:
            DeviceNotConnectedError: connect() was not called.
        """
        if not self._connected:
            raise DeviceNotConnectedError(f'{type(self).__name__} is not connected: call connect() first')
        return self._read()

    def close(self) -> None:
        """Release the device; safe to call twice."""
        if self._connected:
            self._connected = False
            self._close()

    def reset(self) -> None:
        """Forget per-episode state (e.g. a toggled gripper goes back to open); called when an episode starts."""

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _read(self) -> TeleopCommand: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    def __enter__(self) -> TeleopDevice:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_Resource = TypeVar('_Resource')


def open_all(resources: Iterable[_Resource], open_one: Callable[[_Resource], object],
             close_one: Callable[[_Resource], object]) -> None:
    """Open every resource in order; when one fails, close those already opened (newest first) and re-raise."""
    opened: list[_Resource] = []
    try:
        for resource in resources:
            open_one(resource)
            opened.append(resource)
    except BaseException:
        for resource in reversed(opened):
            close_one(resource)
        raise


def apply_deadband(values: np.ndarray, deadband: float) -> np.ndarray:
    """Zero inputs with |x| <= deadband and rescale the rest so the output still runs continuously from 0 to ±1.

    Args:
        values: normalized axis values, nominally in [-1, 1] (clipped to it).
        deadband: in [0, 1).

    Returns:
        float64 array of the same shape: sign(x) · (|x| − deadband) / (1 − deadband), 0 inside the deadband.
    """
    x = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    return np.sign(x) * np.maximum(np.abs(x) - deadband, 0.0) / (1.0 - deadband)


def import_optional(module: str, package: str, device: str) -> ModuleType:
    """Import an optional device backend, or fail with the pip command that installs it.

    Raises:
        ImportError: naming `package`, which maps_vla does not install for you.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f'The {device} teleop device needs the Python package {package!r} (module {module!r}), '
                          f'which maps_vla does not install: run `pip install {package}`') from exc
