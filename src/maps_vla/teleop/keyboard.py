"""Keyboard teleop from a terminal: works locally and over SSH (raw stdin, no X server, no root).

Key map (letters are case-insensitive; arrows work where the terminal sends the usual escape sequences):

| keys | effect |
|---|---|
| w / s (or ↑ / ↓) | +x / −x: away from / towards the robot base |
| a / d (or ← / →) | +y / −y: left / right, seen from behind the robot |
| r / f | +z / −z: up / down |
| u / o | +roll / −roll (about x) |
| i / k | +pitch / −pitch (about y) |
| j / l | +yaw / −yaw (about z) |
| space | toggle the gripper (open ↔ closed) |
| enter | start recording an episode / stop and save it |
| x | discard the episode being recorded (next scene) |
| b | re-record: discard it and restart the same scene |
| q or esc | quit (an episode still being recorded is discarded) |

A terminal reports key presses, not releases: a held key arrives as a stream of auto-repeated characters (after
the terminal's repeat delay). Each press moves for `KeyboardConfig.hold_steps` control steps, so holding a key
moves the arm steadily and tapping it nudges it. Opposite keys in the same step cancel.

The key source is injectable (`KeySource`): `TerminalKeySource` reads stdin in cbreak mode through termios and
select; `QueueKeySource` takes keys pushed by code (tests, or the live-view window's key presses).
"""

from __future__ import annotations

import collections
import logging
import os
import select
import sys
import threading
from collections.abc import Iterable
from typing import IO, Protocol

import numpy as np

from maps_vla.teleop.config_keyboard import KeyboardConfig
from maps_vla.teleop.device import TeleopCommand, TeleopDevice, TeleopEvent, open_all

__all__ = ['KeyboardDevice', 'KeySource', 'TerminalKeySource', 'QueueKeySource', 'MOTION_KEYS', 'EVENT_KEYS',
           'GRIPPER_KEY', 'decode_keys', 'key_help']

logger = logging.getLogger(__name__)

# key -> (index in [dx dy dz droll dpitch dyaw], direction)
MOTION_KEYS: dict[str, tuple[int, int]] = {
    'w': (0, 1), 's': (0, -1), 'up': (0, 1), 'down': (0, -1),
    'a': (1, 1), 'd': (1, -1), 'left': (1, 1), 'right': (1, -1),
    'r': (2, 1), 'f': (2, -1),
    'u': (3, 1), 'o': (3, -1),
    'i': (4, 1), 'k': (4, -1),
    'j': (5, 1), 'l': (5, -1),
}
GRIPPER_KEY = 'space'
EVENT_KEYS: dict[str, TeleopEvent] = {
    'enter': TeleopEvent.START_STOP, 'x': TeleopEvent.DISCARD, 'b': TeleopEvent.RERECORD,
    'q': TeleopEvent.QUIT, 'esc': TeleopEvent.QUIT,
}
_ARROWS = {'A': 'up', 'B': 'down', 'C': 'right', 'D': 'left'}
_NAMED = {' ': 'space', '\r': 'enter', '\n': 'enter', '\x7f': 'backspace', '\x08': 'backspace', '\t': 'tab'}


def key_help() -> str:
    """The key map as printable lines (what `maps-vla teleop` shows before it starts)."""
    axes = ('x', 'y', 'z', 'roll', 'pitch', 'yaw')
    by_axis: dict[tuple[int, int], list[str]] = collections.defaultdict(list)
    for key, binding in MOTION_KEYS.items():
        by_axis[binding].append(key)
    lines = [f'  {"/".join(by_axis[(i, 1)])} | {"/".join(by_axis[(i, -1)])}: +{axis} | -{axis}'
             for i, axis in enumerate(axes)]
    lines.append(f'  {GRIPPER_KEY}: toggle the gripper')
    events: dict[TeleopEvent, list[str]] = collections.defaultdict(list)
    for key, event in EVENT_KEYS.items():
        events[event].append(key)
    what = {TeleopEvent.START_STOP: 'start recording / stop and save', TeleopEvent.DISCARD: 'discard the episode',
            TeleopEvent.RERECORD: 're-record the same scene', TeleopEvent.QUIT: 'quit'}
    lines += [f'  {"/".join(keys)}: {what[event]}' for event, keys in events.items()]
    return '\n'.join(lines)


def decode_keys(text: str) -> list[str]:
    """Terminal input -> key names: printable characters lower-cased, 'space', 'enter', 'esc', 'backspace',
    'tab', and 'up'/'down'/'left'/'right' from ANSI arrow sequences. Other escape sequences and control
    characters are dropped."""
    keys: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '\x1b':
            if i + 1 < len(text) and text[i + 1] in '[O':
                j = i + 2  # CSI / SS3: parameters, then one final byte in '@'..'~'
                while j < len(text) and not '@' <= text[j] <= '~':
                    j += 1
                if j < len(text) and text[j] in _ARROWS and j == i + 2:
                    keys.append(_ARROWS[text[j]])
                i = j + 1
                continue
            keys.append('esc')
        elif ch in _NAMED:
            keys.append(_NAMED[ch])
        elif ch.isprintable():
            keys.append(ch.lower())
        i += 1
    return keys


class KeySource(Protocol):
    """Where key presses come from; `read` never blocks."""

    def open(self) -> None: ...

    def read(self) -> list[str]:
        """Key names (see `decode_keys`) pressed since the last call, oldest first."""
        ...

    def close(self) -> None: ...


class TerminalKeySource:
    """Keys typed into a terminal: cbreak mode (no echo, no line buffering; Ctrl-C still interrupts), polled with
    select. The terminal's settings are restored by `close`.

    Args:
        stream: the terminal to read; default sys.stdin.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self._fd: int | None = None
        self._saved: list | None = None

    def open(self) -> None:
        """Raises RuntimeError when the stream is not a terminal (piped stdin, a service without a TTY)."""
        import termios
        import tty

        fd = (self._stream or sys.stdin).fileno()
        if not os.isatty(fd):
            raise RuntimeError('keyboard teleop reads keys from a terminal, but stdin is not a TTY: run it in a '
                               'terminal (over SSH use `ssh -t`)')
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)
        self._fd = fd

    def read(self) -> list[str]:
        if self._fd is None:
            raise RuntimeError('TerminalKeySource.read() before open()')
        data = b''
        while select.select([self._fd], [], [], 0.0)[0]:
            chunk = os.read(self._fd, 1024)
            if not chunk:  # end of file: the terminal went away
                break
            data += chunk
        return decode_keys(data.decode('utf-8', errors='ignore'))

    def close(self) -> None:
        if self._fd is not None and self._saved is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
        self._fd = self._saved = None


class QueueKeySource:
    """Keys pushed by code (thread-safe): synthetic key events in tests, or key presses in the live-view window."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys: collections.deque[str] = collections.deque(keys)
        self._lock = threading.Lock()

    def push(self, *keys: str) -> None:
        """Queue key names (see `decode_keys`)."""
        with self._lock:
            self._keys.extend(keys)

    def open(self) -> None:
        pass

    def read(self) -> list[str]:
        with self._lock:
            keys = list(self._keys)
            self._keys.clear()
        return keys

    def close(self) -> None:
        pass


class KeyboardDevice(TeleopDevice):
    """Keyboard teleop (see the module docstring for the key map).

    Args:
        config: speeds and hold time.
        sources: where keys come from, read in order every step; default a `TerminalKeySource` on stdin.
    """

    def __init__(self, config: KeyboardConfig | None = None, sources: Iterable[KeySource] | None = None) -> None:
        super().__init__()
        self.config = config or KeyboardConfig()
        self.sources: list[KeySource] = list(sources) if sources is not None else [TerminalKeySource()]
        if not self.sources:
            raise ValueError('KeyboardDevice needs at least one key source')
        self._scale = np.array([self.config.pos_speed] * 3 + [self.config.rot_speed] * 3, dtype=np.float64)
        self._active: dict[tuple[int, int], int] = {}
        self._gripper = 0.0

    def _connect(self) -> None:
        open_all(self.sources, lambda source: source.open(), lambda source: source.close())
        self.reset()

    def _close(self) -> None:
        for source in self.sources:
            source.close()

    def reset(self) -> None:
        self._active.clear()
        self._gripper = 0.0

    def _read(self) -> TeleopCommand:
        events: list[TeleopEvent] = []
        for source in self.sources:
            for key in source.read():
                key = key.lower() if len(key) == 1 else key  # 'W' (shift or caps lock) means 'w'
                if key in MOTION_KEYS:
                    self._active[MOTION_KEYS[key]] = self.config.hold_steps
                elif key == GRIPPER_KEY:
                    self._gripper = 1.0 - self._gripper
                elif key in EVENT_KEYS:
                    events.append(EVENT_KEYS[key])
                else:
                    logger.debug('key %r is not bound', key)
        direction = np.zeros(6)
        for (axis, sign), left in list(self._active.items()):
            direction[axis] += sign
            if left <= 1:
                del self._active[(axis, sign)]
            else:
                self._active[(axis, sign)] = left - 1
        return TeleopCommand(delta=direction * self._scale, gripper=self._gripper, events=tuple(events))
