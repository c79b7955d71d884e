"""`GamepadConfig`: speeds, deadband and the axis/button layout of a pygame (SDL2) joystick.

The default indices are SDL2's raw joystick layout of an Xbox 360 / One pad on Linux, as pygame 2 reports it:
axes 0/1 left stick x/y, 3/4 right stick x/y (stick down = +1); buttons 0 A, 1 B, 2 X, 6 Back, 7 Start; hat 0
the D-pad. Other pads number them differently: print `pygame.joystick.Joystick(0).get_numaxes()` and watch
`get_axis(i)` while moving a stick, then set the indices here.
"""

from __future__ import annotations

import dataclasses

__all__ = ['GamepadConfig']


@dataclasses.dataclass(frozen=True)
class GamepadConfig:
    """Config of `GamepadDevice`."""

    index: int = 0  # which joystick (pygame.joystick.Joystick(index))
    pos_speed: float = 0.02  # m per control step at full stick deflection
    rot_speed: float = 0.08  # rad per control step at full deflection (D-pad: always full)
    deadband: float = 0.1  # stick values with |v| below this count as 0 (rest noise); in [0, 1)
    axis_x: int = 1  # stick axis for ±x (left stick up/down; pushed up = +x)
    axis_y: int = 0  # stick axis for ±y (left stick left/right; pushed left = +y)
    axis_z: int = 4  # stick axis for ±z (right stick up/down; pushed up = +z)
    axis_yaw: int = 3  # stick axis for ±yaw (right stick left/right; pushed left = +yaw)
    invert: tuple[bool, bool, bool, bool] = (True, True, True, True)  # negate x, y, z, yaw (SDL: up/left are −1)
    hat: int = 0  # D-pad hat: right/left = ±roll, up/down = ±pitch (-1: no hat)
    button_gripper: int = 0  # toggles the gripper (A)
    button_start_stop: int = 7  # start / stop-and-save an episode (Start)
    button_discard: int = 1  # discard the episode (B)
    button_rerecord: int = 2  # re-record the same scene (X)
    button_quit: int = 6  # quit (Back)

    def __post_init__(self) -> None:
        for name in ('pos_speed', 'rot_speed'):
            if not getattr(self, name) > 0:
                raise ValueError(f'GamepadConfig.{name} must be > 0, got {getattr(self, name)!r}')
        if not 0.0 <= self.deadband < 1.0:
            raise ValueError(f'GamepadConfig.deadband must be in [0, 1), got {self.deadband!r}')
        if len(self.invert) != 4:
            raise ValueError(f'GamepadConfig.invert needs 4 flags (x, y, z, yaw), got {self.invert!r}')
        for f in dataclasses.fields(self):
            if (f.name.startswith(('axis_', 'button_')) or f.name == 'index') and getattr(self, f.name) < 0:
                raise ValueError(f'GamepadConfig.{f.name} must be >= 0, got {getattr(self, f.name)!r}')
        if self.hat < -1:
            raise ValueError(f'GamepadConfig.hat must be >= 0, or -1 for none, got {self.hat!r}')
