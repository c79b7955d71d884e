"""`SpaceMouseConfig`: which 3Dconnexion device, speeds, deadband, and how its six axes map onto the robot's.

3Dconnexion devices report translation (tx, ty, tz) and rotation (rx, ry, rz) in their own frame: x right,
y towards the user, z down (a right-handed frame), about ±350 counts at full deflection. The default map is for
an operator standing behind the robot, facing +x: push the cap away = +x, left = +y, lift = +z, and the three
rotations about the same axes. If an axis moves the wrong way on your desk, flip its sign in `axis_sign`.
"""

from __future__ import annotations

import dataclasses

__all__ = ['SpaceMouseConfig']


@dataclasses.dataclass(frozen=True)
class SpaceMouseConfig:
    """Config of `SpaceMouseDevice`."""

    vendor_id: int | None = None  # USB vendor id; None: the first 3Dconnexion device found (0x256f, or 0x046d)
    product_id: int | None = None  # USB product id; None: any product of that vendor
    pos_speed: float = 0.02  # m per control step at full deflection
    rot_speed: float = 0.08  # rad per control step at full deflection
    deadband: float = 0.1  # fraction of full scale treated as 0 (a resting cap is not exactly still); in [0, 1)
    full_scale: float = 350.0  # raw counts at full deflection
    axis_map: tuple[int, int, int, int, int, int] = (1, 0, 2, 4, 3, 5)  # raw index (tx ty tz rx ry rz) per robot axis
    axis_sign: tuple[float, float, float, float, float, float] = (-1.0, -1.0, -1.0, -1.0, -1.0, -1.0)  # per robot axis
    button_gripper: int = 0  # bit of the button report that toggles the gripper (left button)
    button_start_stop: int = 1  # bit that starts / stops-and-saves an episode (right button)

    def __post_init__(self) -> None:
        for name in ('pos_speed', 'rot_speed', 'full_scale'):
            if not getattr(self, name) > 0:
                raise ValueError(f'SpaceMouseConfig.{name} must be > 0, got {getattr(self, name)!r}')
        if not 0.0 <= self.deadband < 1.0:
            raise ValueError(f'SpaceMouseConfig.deadband must be in [0, 1), got {self.deadband!r}')
        if sorted(self.axis_map) != list(range(6)):
            raise ValueError(f'SpaceMouseConfig.axis_map must be a permutation of 0..5, got {self.axis_map!r}')
        if len(self.axis_sign) != 6 or any(s not in (-1.0, 1.0) for s in self.axis_sign):
            raise ValueError(f'SpaceMouseConfig.axis_sign must be six values of +1 or -1, got {self.axis_sign!r}')
        for name in ('button_gripper', 'button_start_stop'):
            if not 0 <= getattr(self, name) < 32:
                raise ValueError(f'SpaceMouseConfig.{name} must be a bit index in 0..31, got {getattr(self, name)!r}')
