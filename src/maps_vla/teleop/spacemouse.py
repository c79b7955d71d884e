"""3Dconnexion SpaceMouse teleop over raw HID (optional `hidapi` package: `pip install hidapi`; no 3DxWare or
spacenavd needed, but the user must be allowed to read the device's /dev/hidraw* node, e.g. by a udev rule).

HID input reports (first byte = report id): 1 = translation as three little-endian int16 (tx, ty, tz), on the
newer wireless models followed by the rotation in the same report; 2 = rotation (rx, ry, rz); 3 = a button
bitmask. The device sends a report only when something changes, so the last values hold until the next one.
The cap is proportional: half deflection moves at half speed, after the deadband.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import numpy as np

from maps_vla.teleop.config_spacemouse import SpaceMouseConfig
from maps_vla.teleop.device import TeleopCommand, TeleopDevice, TeleopEvent, apply_deadband, import_optional

__all__ = ['SpaceMouseDevice', 'SpaceMouseState', 'find_spacemouse']

logger = logging.getLogger(__name__)

_VENDOR_3DCONNEXION = 0x256F
_VENDOR_LOGITECH = 0x046D  # older 3Dconnexion products; only these product ids of that vendor are SpaceMice:
_LOGITECH_SPACEMICE = {0xC626, 0xC627, 0xC628, 0xC629, 0xC62B}
_MAX_REPORTS_PER_STEP = 256  # the device sends ~60 reports/s; drain at most this many per control step


class SpaceMouseState:
    """The latest axes and buttons, updated from raw HID input reports."""

    def __init__(self) -> None:
        self.axes = np.zeros(6)  # raw counts (tx, ty, tz, rx, ry, rz)
        self.buttons = 0  # bitmask

    def update(self, report: bytes | list[int]) -> None:
        """Apply one input report (report id first); unknown or short reports are ignored."""
        data = bytes(report)
        if len(data) < 2:
            return
        rid, body = data[0], data[1:]
        if rid == 1 and len(body) >= 6:
            self.axes[:3] = struct.unpack('<3h', body[:6])
            if len(body) >= 12:
                self.axes[3:] = struct.unpack('<3h', body[6:12])
        elif rid == 2 and len(body) >= 6:
            self.axes[3:] = struct.unpack('<3h', body[:6])
        elif rid == 3:
            self.buttons = int.from_bytes(body[:4], 'little')


def find_spacemouse(hid: Any, vendor_id: int | None = None, product_id: int | None = None) -> dict[str, Any]:
    """The hidapi `enumerate()` entry of the first matching SpaceMouse.

    Args:
        hid: the imported hidapi module.
        vendor_id, product_id: restrict the search; None: any 3Dconnexion device.

    Raises:
        RuntimeError: none is attached (or none is readable).
    """
    found = []
    for info in hid.enumerate(vendor_id or 0, product_id or 0):
        vid, pid = info.get('vendor_id'), info.get('product_id')
        if vendor_id is None and not (vid == _VENDOR_3DCONNEXION or (vid == _VENDOR_LOGITECH
                                                                     and pid in _LOGITECH_SPACEMICE)):
            continue
        found.append(info)
    # A receiver or composite device lists several interfaces: prefer the multi-axis controller (page 1, usage 8).
    found.sort(key=lambda i: (i.get('usage_page'), i.get('usage')) != (1, 8))
    if not found:
        wanted = f'{vendor_id:#06x}:{product_id or 0:#06x}' if vendor_id else '3Dconnexion (0x256f, 0x046d)'
        raise RuntimeError(f'No SpaceMouse found (looked for {wanted} HID devices). Plug it in and make its '
                           '/dev/hidraw* node readable (a udev rule with MODE="0666" or your group)')
    return found[0]


class SpaceMouseDevice(TeleopDevice):
    """A SpaceMouse read through hidapi.

    Its two buttons toggle the gripper and start/stop episodes; discard, re-record and quit come from the
    keyboard (`maps-vla teleop` adds keyboard events to non-keyboard devices).

    Args:
        config: device selection, speeds, deadband and axis map.
        handle: an opened object with hidapi's `read(size) -> list[int]` in non-blocking mode; default: open the
            device found by `find_spacemouse` on connect. Tests pass a fake here.
    """

    def __init__(self, config: SpaceMouseConfig | None = None, handle: Any = None) -> None:
        super().__init__()
        self.config = config or SpaceMouseConfig()
        self._handle = handle
        self._owns_handle = handle is None
        self.state = SpaceMouseState()
        self._gripper = 0.0
        self._buttons = 0

    def _connect(self) -> None:
        if self._owns_handle:
            hid = import_optional('hid', 'hidapi', 'SpaceMouse')
            if not hasattr(hid, 'device'):
                raise ImportError("The SpaceMouse teleop device needs the 'hidapi' package (its module 'hid' has "
                                  "hid.device); another package named 'hid' is installed: `pip uninstall hid && "
                                  'pip install hidapi`')
            info = find_spacemouse(hid, self.config.vendor_id, self.config.product_id)
            handle = hid.device()
            try:
                handle.open_path(info['path'])
            except OSError as exc:
                raise RuntimeError(f'Cannot open SpaceMouse {info.get("product_string")!r} at {info["path"]!r}: '
                                   f'{exc} (is its /dev/hidraw* node readable?)') from exc
            handle.set_nonblocking(1)
            self._handle = handle
            logger.info('SpaceMouse: %s %s', info.get('manufacturer_string'), info.get('product_string'))
        self.state = SpaceMouseState()
        self._buttons = 0
        self.reset()

    def _close(self) -> None:
        if self._owns_handle and self._handle is not None:
            self._handle.close()
            self._handle = None

    def reset(self) -> None:
        self._gripper = 0.0

    def _read(self) -> TeleopCommand:
        cfg = self.config
        for _ in range(_MAX_REPORTS_PER_STEP):
            report = self._handle.read(64)
            if not report:
                break
            self.state.update(report)
        raw = self.state.axes[list(cfg.axis_map)] * np.asarray(cfg.axis_sign) / cfg.full_scale
        scaled = apply_deadband(raw, cfg.deadband)
        delta = scaled * np.array([cfg.pos_speed] * 3 + [cfg.rot_speed] * 3)
        pressed = self.state.buttons & ~self._buttons
        self._buttons = self.state.buttons
        if pressed >> cfg.button_gripper & 1:
            self._gripper = 1.0 - self._gripper
        events = (TeleopEvent.START_STOP,) if pressed >> cfg.button_start_stop & 1 else ()
        return TeleopCommand(delta=delta, gripper=self._gripper, events=events)
