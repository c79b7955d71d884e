"""`KeyboardConfig`: speeds of the terminal keyboard teleop (the key map itself is `keyboard.KEY_BINDINGS`)."""

from __future__ import annotations

import dataclasses

__all__ = ['KeyboardConfig']


@dataclasses.dataclass(frozen=True)
class KeyboardConfig:
    """Config of `KeyboardDevice`. Keys are on/off, so there is no deadband: a pressed key moves at full speed."""

    pos_speed: float = 0.01  # m per control step while a translation key is active (0.1 m/s at 10 Hz)
    rot_speed: float = 0.05  # rad per control step while a rotation key is active
    hold_steps: int = 1  # control steps one key press keeps moving (a held key's auto-repeat refreshes it)

    def __post_init__(self) -> None:
        for name in ('pos_speed', 'rot_speed'):
            if not getattr(self, name) > 0:
                raise ValueError(f'KeyboardConfig.{name} must be > 0, got {getattr(self, name)!r}')
        if self.hold_steps < 1:
            raise ValueError(f'KeyboardConfig.hold_steps must be >= 1, got {self.hold_steps!r}')
