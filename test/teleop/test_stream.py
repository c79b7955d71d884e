"""TeleopStream, the teleop node's logic: synthetic keys -> action vectors, episode keys -> recorder calls."""

import numpy as np
import pytest

from maps_vla.control.safety import SafetyBridge, SafetyConfig
from maps_vla.teleop import (GamepadConfig, GamepadDevice, KeyboardConfig, KeyboardDevice, QueueKeySource,
                             RecorderCall, TeleopCommand, TeleopDevice, TeleopEvent, TeleopStream, TeleopStreamConfig,
                             make_stream_devices)

START, STOP, DISCARD = RecorderCall.START, RecorderCall.STOP, RecorderCall.DISCARD


def _stream(**cfg):
    keys = QueueKeySource()
    device = KeyboardDevice(KeyboardConfig(pos_speed=0.01, rot_speed=0.05), sources=[keys])
    stream = TeleopStream(TeleopStreamConfig(**cfg), device)
    stream.connect()
    return stream, keys


def _press(stream, keys, *names):
    keys.push(*names)
    return stream.step()


class FakeDevice(TeleopDevice):
    """A proportional device (like a SpaceMouse) with a fixed deflection and scripted events."""

    def __init__(self, delta, events=()):
        super().__init__()
        self.delta, self.events = np.asarray(delta, float), list(events)

    def _connect(self):
        pass

    def _read(self):
        return TeleopCommand(self.delta, 0.0, (self.events.pop(0),) if self.events else ())

    def _close(self):
        pass


def test_keys_become_actions_in_the_sim_session_layout_and_units():
    stream, keys = _stream()
    assert np.array_equal(stream.step().action, np.zeros(7))
    out = _press(stream, keys, 'w', 'a', 'r', 'j')
    assert out.action.dtype == np.float64 and out.action.shape == (7,)
    assert out.action == pytest.approx([0.01, 0.01, 0.01, 0, 0, 0.05, 0])
    assert stream.step().action == pytest.approx(np.zeros(7))  # hold_steps 1: one poll per press
    assert _press(stream, keys, 'space', 's', 'i').action == pytest.approx([-0.01, 0, 0, 0, 0.05, 0, 1.0])
    assert stream.step().action[6] == 1.0  # the gripper toggle stays
    # exactly what the sim session records for the same command
    command = TeleopCommand(np.array([0.01, -0.02, 0.0, 0.1, 0.0, -0.05]), 1.0)
    assert np.array_equal(stream.action_of(command), command.action.astype(np.float64))


@pytest.mark.parametrize('names, gripper_index, expected', [
    (('g', 'x', 'y', 'z', 'rx', 'ry', 'rz'), 0, [1.0, 0.01, 0, 0, 0, 0, 0]),
    (('x', 'y', 'z', 'rx', 'ry', 'rz'), None, [0.01, 0, 0, 0, 0, 0]),
])
def test_other_action_layouts(names, gripper_index, expected):
    stream, keys = _stream(action_names=names, gripper_index=gripper_index)
    assert _press(stream, keys, 'space', 'w').action == pytest.approx(expected)


def test_episode_keys_call_the_recorder_and_publish_the_instruction_at_each_start():
    stream, keys = _stream(instruction='pick up the cube')
    assert stream.step().instruction is None
    out = _press(stream, keys, 'enter')
    assert out.calls == (START,) and out.instruction == 'pick up the cube' and stream.recording
    out = _press(stream, keys, 'w', 'enter')
    assert out.calls == (STOP,) and out.instruction is None and not stream.recording
    assert out.action[0] == pytest.approx(0.01)  # motion and events in one poll
    assert _press(stream, keys, 'x').calls == ()  # nothing to discard while idle
    assert _press(stream, keys, 'enter', 'x').calls == (START, DISCARD)
    assert _press(stream, keys, 'enter').instruction == 'pick up the cube'  # every episode
    assert _press(stream, keys, 'b').calls == (DISCARD,)  # re-record: no scene to restart on a robot
    assert stream.episodes == 3
    out = _press(stream, keys, 'enter', 'q', 'enter')
    assert out.calls == (START, DISCARD) and out.quit and stream.done  # quit drops the episode; later keys ignored
    with pytest.raises(RuntimeError, match='operator quit'):
        stream.step()


def test_state_follows_the_recorders_events_and_failed_calls():
    stream, keys = _stream()
    stream.on_episode_event('start')  # someone called /recorder_node/start
    assert _press(stream, keys, 'enter').calls == (STOP,)
    stream.on_episode_event('start')
    stream.on_episode_event(' Discard\n')
    assert _press(stream, keys, 'enter').calls == (START,)
    stream.on_call_failed(START)  # e.g. the recorder is not running
    assert not stream.recording and _press(stream, keys, 'enter').calls == (START,)
    stream.on_call_failed(STOP)
    assert stream.recording  # only a failed start says nothing is recorded
    with pytest.raises(ValueError, match="unknown episode event 'pause'"):
        stream.on_episode_event('pause')


def test_instruction_changes_are_published_once_and_empty_means_none():
    stream, keys = _stream()
    assert _press(stream, keys, 'enter').instruction is None  # none configured: the sim's or recorder's own
    stream.set_instruction('stack the cubes')
    assert stream.step().instruction == 'stack the cubes' and stream.step().instruction is None
    assert _press(stream, keys, 'enter', 'enter').instruction == 'stack the cubes'
    stream.set_instruction('')
    assert stream.step().instruction is None and _press(stream, keys, 'enter').instruction is None


def test_without_episode_control_only_quit_counts():
    stream, keys = _stream(episode_control=False)
    assert _press(stream, keys, 'enter', 'x', 'b').calls == () and not stream.recording
    stream.on_episode_event('start')
    out = _press(stream, keys, 'q')
    assert out.quit and out.calls == ()


def test_event_devices_add_their_episode_keys_to_a_proportional_device():
    keys = QueueKeySource()
    device = FakeDevice([0.02, 0, -0.01, 0, 0, 0], events=[TeleopEvent.START_STOP])
    stream = TeleopStream(TeleopStreamConfig(device='spacemouse'), device,
                          event_devices=[KeyboardDevice(sources=[keys])])
    with stream:
        assert stream.step().calls == (START,)
        keys.push('w', 'x')  # the keyboard's motion is ignored; its discard key is not
        out = stream.step()
        assert out.calls == (DISCARD,) and out.action == pytest.approx([0.02, 0, -0.01, 0, 0, 0, 0])
    assert not device.is_connected and not stream.event_devices[0].is_connected


def test_make_stream_devices():
    keys = QueueKeySource()
    device, events = make_stream_devices('keyboard', KeyboardConfig(pos_speed=0.02), [keys])
    assert isinstance(device, KeyboardDevice) and device.sources == [keys] and events == []
    assert device.config.pos_speed == 0.02
    device, events = make_stream_devices('gamepad', GamepadConfig(), [keys])
    assert isinstance(device, GamepadDevice) and len(events) == 1 and events[0].sources == [keys]
    assert make_stream_devices('gamepad', GamepadConfig(), [])[1] == []
    with pytest.raises(ValueError, match='at least one key source'):
        make_stream_devices('keyboard', KeyboardConfig(), [])
    with pytest.raises(TypeError, match='needs a GamepadConfig'):
        make_stream_devices('gamepad', KeyboardConfig(), [keys])


def test_config_validation():
    with pytest.raises(ValueError, match="keybaord.*Did you mean 'keyboard'"):
        TeleopStreamConfig(device='keybaord')
    with pytest.raises(ValueError, match='rate_hz must be a finite number > 0'):
        TeleopStreamConfig(rate_hz=0.0)
    with pytest.raises(ValueError, match='action_names must be 7 distinct names'):
        TeleopStreamConfig(action_names=('dx', 'dy', 'dz', 'gripper'))
    with pytest.raises(ValueError, match='action_names must be 6 distinct names'):
        TeleopStreamConfig(gripper_index=None)
    with pytest.raises(ValueError, match='gripper_index must be in 0..6'):
        TeleopStreamConfig(gripper_index=7)


@pytest.mark.parametrize('rate_hz', [10.0, 20.0, 50.0])
def test_a_held_key_moves_the_bridge_target_at_the_commanded_speed_at_any_rate(rate_hz):
    # pos_speed 1 cm per 10 Hz action step = 10 cm/s, whether the stream polls at 10, 20 or 50 Hz.
    stream, keys = _stream(rate_hz=rate_hz)
    bridge = SafetyBridge(SafetyConfig(control_hz=100.0, action_hz=10.0, max_lead=1.0))
    bridge.on_measured_pose([0.4, 0.0, 0.3], [1.0, 0.0, 0.0, 0.0], 0.0)
    every = round(100.0 / rate_hz)
    sent = []
    for k in range(100):
        if k % every == 0:
            bridge.on_command(_press(stream, keys, 'w').action, k / 100.0)
        out = bridge.tick(k / 100.0)
        sent.append(out.pose.position[0])
    assert out.goal[0] - 0.4 == pytest.approx(0.1, abs=0.001 + 1e-9)  # within one tick's share (1 mm)
    # The pose sent to the robot follows the goal through the acceleration/jerk limiter: once it has ramped up it
    # moves at the commanded 10 cm/s too.
    assert (sent[99] - sent[50]) / 0.49 == pytest.approx(0.1, rel=0.02)
