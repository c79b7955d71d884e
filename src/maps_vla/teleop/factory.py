"""`make_teleop`: a teleop device from its registered name and config overrides."""

from __future__ import annotations

import dataclasses
from typing import Any

from maps_vla.config import from_dict
from maps_vla.registry import Registry
from maps_vla.teleop.config_gamepad import GamepadConfig
from maps_vla.teleop.config_keyboard import KeyboardConfig
from maps_vla.teleop.config_spacemouse import SpaceMouseConfig
from maps_vla.teleop.device import TeleopDevice
from maps_vla.teleop.gamepad import GamepadDevice
from maps_vla.teleop.keyboard import KeyboardDevice
from maps_vla.teleop.spacemouse import SpaceMouseDevice

__all__ = ['TELEOP_DEVICES', 'DeviceEntry', 'make_teleop_config', 'make_teleop']


@dataclasses.dataclass(frozen=True)
class DeviceEntry:
    """A registered device: its config class and device class (built as `device_cls(config)`)."""

    config_cls: type
    device_cls: type[TeleopDevice]


TELEOP_DEVICES: Registry[DeviceEntry] = Registry('teleop device')
TELEOP_DEVICES.register('keyboard')(DeviceEntry(KeyboardConfig, KeyboardDevice))
TELEOP_DEVICES.register('gamepad')(DeviceEntry(GamepadConfig, GamepadDevice))
TELEOP_DEVICES.register('spacemouse')(DeviceEntry(SpaceMouseConfig, SpaceMouseDevice))


def make_teleop_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The config dataclass of device `name`, defaults updated by `overrides` (unknown keys get a typo hint).

    Raises:
        ValueError: an unknown device name or config key, or an invalid value.
    """
    return from_dict(TELEOP_DEVICES.get(name).config_cls, overrides or {})


def make_teleop(name: str, config: Any = None, **kwargs: Any) -> TeleopDevice:
    """An unconnected device `name` ('keyboard', 'gamepad', 'spacemouse'); call connect() or use `with`.

    Args:
        name: registered device name.
        config: its config dataclass; None: the defaults.
        **kwargs: passed to the device class (e.g. `sources=` for the keyboard).

    Raises:
        ValueError: unknown name. TypeError: a config of another device.
    """
    entry = TELEOP_DEVICES.get(name)
    config = entry.config_cls() if config is None else config
    if not isinstance(config, entry.config_cls):
        raise TypeError(f'teleop device {name!r} needs a {entry.config_cls.__name__}, got {type(config).__name__}')
    return entry.device_cls(config, **kwargs)
