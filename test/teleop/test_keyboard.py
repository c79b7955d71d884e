"""Keyboard teleop: key decoding, the key map, hold/cancel/toggle semantics, and a real terminal through a pty."""

import os

import numpy as np
import pytest

from maps_vla.teleop import (DeviceNotConnectedError, KeyboardConfig, KeyboardDevice, QueueKeySource, TeleopEvent,
                             TerminalKeySource)
from maps_vla.teleop.keyboard import EVENT_KEYS, GRIPPER_KEY, MOTION_KEYS, decode_keys, key_help


def test_decode_keys_names_arrows_controls_and_skips_other_sequences():
    assert decode_keys('wA \r\n\x1b[A\x1b[D\x1bOB\x1b[1;5C\x1b\x7fq\x03') == [
        'w', 'a', 'space', 'enter', 'enter', 'up', 'left', 'down', 'esc', 'backspace', 'q']


def test_key_map_covers_every_axis_both_ways_and_help_lists_all_keys():
    assert {binding for binding in MOTION_KEYS.values()} == {(i, s) for i in range(6) for s in (1, -1)}
    assert set(EVENT_KEYS.values()) == set(TeleopEvent)
    text = key_help()
    for key in [*MOTION_KEYS, *EVENT_KEYS, GRIPPER_KEY]:
        assert key in text


def test_motion_toggle_events_and_cancel():
    keys = QueueKeySource()
    device = KeyboardDevice(KeyboardConfig(pos_speed=0.02, rot_speed=0.1), sources=[keys])
    with pytest.raises(DeviceNotConnectedError, match='connect'):
        device.get_action()
    with device:
        assert np.all(device.get_action().delta == 0)
        keys.push('w', 'D', 'r', 'i', 'l', 'u')  # upper case counts; opposite-free combination
        cmd = device.get_action()
        np.testing.assert_allclose(cmd.delta, [0.02, -0.02, 0.02, 0.1, 0.1, -0.1])
        assert cmd.gripper == 0.0 and cmd.events == ()
        assert np.all(device.get_action().delta == 0)  # hold_steps=1: a press moves one step
        keys.push('up', 'down', 'left', 'space', 'enter', 'x', 'b', 'esc')
        cmd = device.get_action()
        np.testing.assert_allclose(cmd.delta, [0, 0.02, 0, 0, 0, 0])  # up and down cancel
        assert cmd.gripper == 1.0 and cmd.action[6] == 1.0 and cmd.action.dtype == np.float32
        assert cmd.events == (TeleopEvent.START_STOP, TeleopEvent.DISCARD, TeleopEvent.RERECORD, TeleopEvent.QUIT)
        keys.push('space', 'space', 'space', 'z')  # three toggles = closed -> open; unbound keys are ignored
        assert device.get_action().gripper == 0.0
        keys.push('space')
        assert device.get_action().gripper == 1.0
        device.reset()
        assert device.get_action().gripper == 0.0
    assert not device.is_connected


def test_hold_steps_bridge_the_terminal_repeat_delay():
    keys = QueueKeySource()
    with KeyboardDevice(KeyboardConfig(pos_speed=0.01, hold_steps=3), sources=[keys]) as device:
        keys.push('s')
        xs = [device.get_action().delta[0] for _ in range(2)]
        keys.push('s')  # an auto-repeat refreshes the hold
        xs += [device.get_action().delta[0] for _ in range(4)]
    assert xs == pytest.approx([-0.01, -0.01, -0.01, -0.01, -0.01, 0.0])


def test_sources_are_read_in_order_and_all_closed():
    first, second = QueueKeySource(['enter']), QueueKeySource(['q'])
    with KeyboardDevice(sources=[first, second]) as device:
        assert device.get_action().events == (TeleopEvent.START_STOP, TeleopEvent.QUIT)


def test_config_validation():
    with pytest.raises(ValueError, match='pos_speed'):
        KeyboardConfig(pos_speed=0)
    with pytest.raises(ValueError, match='hold_steps'):
        KeyboardConfig(hold_steps=0)
    with pytest.raises(ValueError, match='key source'):
        KeyboardDevice(sources=[])


def test_terminal_source_reads_a_pty_in_cbreak_mode_and_restores_it():
    termios = pytest.importorskip('termios')
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, 'r', closefd=False) as stream:
            before = termios.tcgetattr(slave)
            source = TerminalKeySource(stream)
            source.open()
            assert not termios.tcgetattr(slave)[3] & termios.ICANON  # keys arrive without waiting for enter
            assert source.read() == []
            os.write(master, b'wa \x1b[C')
            assert source.read() == ['w', 'a', 'space', 'right']
            assert source.read() == []
            source.close()
            assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_terminal_source_refuses_a_pipe():
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, 'r', closefd=False) as stream:
            with pytest.raises(RuntimeError, match='not a TTY'):
                TerminalKeySource(stream).open()
    finally:
        os.close(read_end)
        os.close(write_end)
