"""Gamepad and SpaceMouse mapping with fake hardware, optional-package errors, the device registry, the view."""

import struct
import sys

import numpy as np
import pytest

from maps_vla.teleop import (TELEOP_DEVICES, GamepadConfig, GamepadDevice, KeyboardConfig, SpaceMouseConfig,
                             SpaceMouseDevice, TeleopCommand, TeleopDevice, TeleopEvent, make_teleop,
                             make_teleop_config)
from maps_vla.teleop.device import apply_deadband, open_all
from maps_vla.teleop.spacemouse import SpaceMouseState, find_spacemouse
from maps_vla.teleop.viewer import LiveView, compose_view


class FakeJoystick:
    """pygame Joystick stand-in: 6 axes, 11 buttons, 1 hat (Xbox layout under SDL2)."""

    def __init__(self):
        self.axes, self.buttons, self.hat = [0.0] * 6, [0] * 11, (0, 0)

    def get_numaxes(self):
        return 6

    def get_numbuttons(self):
        return 11

    def get_numhats(self):
        return 1

    def get_axis(self, i):
        return self.axes[i]

    def get_button(self, i):
        return self.buttons[i]

    def get_hat(self, i):
        return self.hat


def test_apply_deadband_is_continuous_and_clipped():
    np.testing.assert_allclose(apply_deadband([0.05, -0.1, 0.55, -1.0, 3.0], 0.1), [0, 0, 0.5, -1.0, 1.0])
    np.testing.assert_allclose(apply_deadband([0.3], 0.0), [0.3])


def test_gamepad_sticks_dpad_and_button_edges():
    js = FakeJoystick()
    cfg = GamepadConfig(pos_speed=0.02, rot_speed=0.1, deadband=0.1)
    js.buttons[7] = 1  # Start held while connecting: must be released before it counts
    with GamepadDevice(cfg, joystick=js) as pad:
        assert pad.get_action().events == ()
        js.buttons[7] = 0
        js.axes[:5] = [-0.55, -1.0, 0.0, 0.05, 0.55]  # left stick up+left, right stick down, yaw inside deadband
        js.hat = (1, -1)
        js.buttons[0] = 1
        cmd = pad.get_action()
        np.testing.assert_allclose(cmd.delta, [0.02, 0.01, -0.01, 0.1, -0.1, 0.0], atol=1e-7)
        assert cmd.gripper == 1.0 and cmd.events == ()
        assert pad.get_action().gripper == 1.0  # still held: no second toggle
        js.buttons[0] = 0
        js.buttons[7] = js.buttons[1] = js.buttons[2] = js.buttons[6] = 1
        assert pad.get_action().events == (TeleopEvent.START_STOP, TeleopEvent.DISCARD, TeleopEvent.RERECORD,
                                           TeleopEvent.QUIT)
        assert pad.get_action().events == ()


def test_gamepad_rejects_indices_the_pad_lacks():
    with pytest.raises(RuntimeError, match='set the indices'):
        GamepadDevice(GamepadConfig(axis_yaw=9), joystick=FakeJoystick()).connect()


def test_spacemouse_reports_and_axis_map():
    state = SpaceMouseState()
    state.update([1, *struct.pack('<3h', 10, -20, 30)])
    state.update(bytes([2, *struct.pack('<3h', -1, 2, -3)]))
    state.update([3, 0b10, 0])
    np.testing.assert_array_equal(state.axes, [10, -20, 30, -1, 2, -3])
    assert state.buttons == 2
    state.update([1, *struct.pack('<6h', 1, 2, 3, 4, 5, 6)])  # wireless models: both in report 1
    np.testing.assert_array_equal(state.axes, [1, 2, 3, 4, 5, 6])
    state.update([9, 1, 2])
    state.update([1, 0])  # unknown / short reports change nothing
    np.testing.assert_array_equal(state.axes, [1, 2, 3, 4, 5, 6])


class FakeHandle:
    def __init__(self, reports):
        self.reports = list(reports)

    def read(self, size):
        return self.reports.pop(0) if self.reports else []


def test_spacemouse_device_maps_the_cap_to_robot_axes():
    full = 350
    # cap pushed away from the user (−y), lifted (−z), twisted counter-clockwise seen from above (−rz)
    handle = FakeHandle([[1, *struct.pack('<3h', 0, -full, -full // 2)], [2, *struct.pack('<3h', 0, 0, -full)],
                         [3, 1, 0]])
    cfg = SpaceMouseConfig(pos_speed=0.02, rot_speed=0.1, deadband=0.0)
    with SpaceMouseDevice(cfg, handle=handle) as mouse:
        cmd = mouse.get_action()
        np.testing.assert_allclose(cmd.delta, [0.02, 0, 0.02 * (full // 2) / full, 0, 0, 0.1], atol=1e-6)
        assert cmd.gripper == 1.0 and cmd.events == ()
        handle.reports = [[3, 0b11, 0]]  # right button pressed (left still held)
        cmd = mouse.get_action()
        assert cmd.events == (TeleopEvent.START_STOP,) and cmd.gripper == 1.0
        np.testing.assert_allclose(cmd.delta[0], 0.02)  # no new report: the last axes hold


def test_find_spacemouse_filters_vendors_and_prefers_the_multi_axis_interface():
    class Hid:
        def enumerate(self, vid, pid):
            return [{'vendor_id': 0x046D, 'product_id': 0xC077, 'path': b'mouse'},  # a Logitech mouse
                    {'vendor_id': 0x256F, 'product_id': 0xC652, 'path': b'kbd', 'usage_page': 1, 'usage': 6},
                    {'vendor_id': 0x256F, 'product_id': 0xC652, 'path': b'axes', 'usage_page': 1, 'usage': 8}]

    assert find_spacemouse(Hid())['path'] == b'axes'

    class Empty:
        def enumerate(self, vid, pid):
            return [{'vendor_id': 0x046D, 'product_id': 0xC077, 'path': b'mouse'}]

    with pytest.raises(RuntimeError, match='No SpaceMouse found'):
        find_spacemouse(Empty())


@pytest.mark.parametrize('name, module, package', [('gamepad', 'pygame', 'pygame'), ('spacemouse', 'hid', 'hidapi')])
def test_missing_optional_package_names_it(monkeypatch, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ImportError, match=f'pip install {package}'):
        make_teleop(name).connect()


@pytest.mark.parametrize('name', TELEOP_DEVICES.names())
def test_registry_builds_every_device_with_its_config(name):
    cfg = make_teleop_config(name, {'pos_speed': 0.03})
    device = make_teleop(name, cfg)
    assert isinstance(device, TeleopDevice) and device.config.pos_speed == 0.03 and not device.is_connected
    with pytest.raises(ValueError, match='Did you mean'):
        make_teleop_config(name, {'pos_sped': 0.03})


def test_factory_errors():
    with pytest.raises(ValueError, match="Did you mean 'keyboard'"):
        make_teleop('keybaord')
    with pytest.raises(TypeError, match='KeyboardConfig'):
        make_teleop('keyboard', GamepadConfig())
    with pytest.raises(ValueError, match='deadband'):
        make_teleop_config('gamepad', {'deadband': 1.0})
    with pytest.raises(ValueError, match='axis_map'):
        SpaceMouseConfig(axis_map=(0, 0, 1, 2, 3, 4))
    assert isinstance(make_teleop('keyboard').config, KeyboardConfig)


def test_command_validation_and_action():
    cmd = TeleopCommand(delta=[0.01, 0, 0, 0, 0, 0.1], gripper=1.0)
    assert cmd.action.dtype == np.float32 and cmd.action.tolist() == pytest.approx([0.01, 0, 0, 0, 0, 0.1, 1.0])
    with pytest.raises(ValueError, match='delta'):
        TeleopCommand(delta=[0.0] * 5)
    with pytest.raises(ValueError, match='gripper'):
        TeleopCommand(delta=[0.0] * 6, gripper=2.0)


def test_view_composition_and_headless(monkeypatch):
    images = [np.full((48, 64, 3), 10, np.uint8), np.full((48, 48, 3), 200, np.uint8)]
    frame = compose_view(images, 'REC | saved 1', height=96)
    assert frame.shape == (96 + 28, 128 + 96, 3) and frame.dtype == np.uint8
    assert frame[:96, :128].max() == 10 and frame[:96, 128:].min() == 200 and frame[96:].max() > 0  # text drawn
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    if sys.platform.startswith('linux'):
        assert LiveView.open() is None


def test_open_all_closes_what_it_opened_when_one_fails():
    log = []

    def open_one(name):
        if name == 'c':
            raise OSError('no device c')
        log.append(f'open {name}')

    with pytest.raises(OSError, match='no device c'):
        open_all(['a', 'b', 'c', 'd'], open_one, lambda name: log.append(f'close {name}'))
    assert log == ['open a', 'open b', 'close b', 'close a']
    log.clear()
    open_all(['a', 'b'], open_one, lambda name: log.append(f'close {name}'))
    assert log == ['open a', 'open b']
