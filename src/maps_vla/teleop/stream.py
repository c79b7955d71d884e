"""`TeleopStream`: a teleop device as a live stream of actions and recorder calls (the teleop node's logic, no ROS).

Each `step()` polls the devices once and returns a `TeleopOutput`:
* `action`: the device's command in the configured action layout: the six EE deltas, in order, in the dimensions
  of `action_names` other than `gripper_index`, and the gripper value (0 open, 1 closed) at `gripper_index`. The
  units are the sim session's, m / rad per action step (ActionSpec.control_hz, the bridge's `action_hz`), so a
  device config that feels right in `maps-vla teleop` feels the same on the robot. The SafetyBridge holds each
  command for one action step, so at any `rate_hz` >= action_hz the arm moves at delta * action_hz per second.
* `calls`: the recorder services the operator's episode events ask for, in order.
* `instruction`: text to publish now: the configured instruction at every episode start and after it changes.
* `quit`: the operator quit; the stream is over.

Episode events (the keys and buttons of maps_vla.teleop): START_STOP starts an episode when idle and stops (saves)
it when recording; DISCARD and RERECORD discard the episode being recorded (a robot has no scene to restart: put
it back and start again); QUIT discards it and ends the stream. Whether an episode is being recorded is set
optimistically by each call and corrected by the recorder: its `episode_events` (`on_episode_event`) and failed
calls (`on_call_failed`). Neither the robot nor the device is reset between episodes (a closed gripper stays
closed), unlike the sim session, which draws a new scene.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from maps_vla.policy import EE_DELTA_ACTION
from maps_vla.teleop.device import TeleopCommand, TeleopDevice, TeleopEvent, open_all
from maps_vla.teleop.factory import TELEOP_DEVICES, make_teleop
from maps_vla.teleop.keyboard import KeyboardDevice, KeySource

__all__ = ['RecorderCall', 'TeleopStreamConfig', 'TeleopOutput', 'TeleopStream', 'make_stream_devices']

logger = logging.getLogger(__name__)


class RecorderCall(enum.Enum):
    """A recorder service (`recorder_node/<value>`); the values are also the recorder's `episode_events`."""

    START = 'start'
    STOP = 'stop'
    DISCARD = 'discard'


@dataclasses.dataclass(frozen=True)
class TeleopStreamConfig:
    """Which device, how often, and the action layout of the teleop stream."""

    device: str = 'keyboard'  # teleop device: keyboard, gamepad or spacemouse (settings: keyboard.*, gamepad.* ...)
    rate_hz: float = 20.0  # device polls and action messages per second; below the bridge's action_hz it moves slower
    action_names: tuple[str, ...] = EE_DELTA_ACTION.names  # action layout (joint_names): 6 EE deltas and the gripper
    gripper_index: int | None = 6  # dimension of action_names holding the gripper (0 open, 1 closed); None: no gripper
    instruction: str = ''  # published at every episode start ('' = none: the sim's or the recorder's own)
    episode_control: bool = True  # the device's start/stop/discard keys call the recorder's services

    def __post_init__(self) -> None:
        TELEOP_DEVICES.get(self.device)  # raises with the known names
        if not (self.rate_hz > 0 and math.isfinite(self.rate_hz)):
            raise ValueError(f'TeleopStreamConfig.rate_hz must be a finite number > 0, got {self.rate_hz!r}')
        want = 6 + (self.gripper_index is not None)
        if len(self.action_names) != want or len(set(self.action_names)) != want or not all(self.action_names):
            raise ValueError(f'TeleopStreamConfig.action_names must be {want} distinct names (6 EE deltas'
                             f'{" and the gripper" if want == 7 else ""}), got {list(self.action_names)}')
        if self.gripper_index is not None and not 0 <= self.gripper_index < want:
            raise ValueError(f'TeleopStreamConfig.gripper_index must be in 0..{want - 1} or None, got '
                             f'{self.gripper_index!r}')


@dataclasses.dataclass(frozen=True)
class TeleopOutput:
    """What one step asks the node to send; see the module docstring."""

    action: np.ndarray  # float64 (len(action_names),)
    calls: tuple[RecorderCall, ...] = ()
    instruction: str | None = None
    quit: bool = False


class TeleopStream:
    """Polls `device` (and `event_devices` for their episode events); see the module docstring.

    Args:
        cfg: rate, layout, instruction.
        device: the teleop device whose commands become actions (connected by `connect()` or `with`).
        event_devices: more devices read only for their episode events (a keyboard beside a SpaceMouse).
    """

    def __init__(self, cfg: TeleopStreamConfig, device: TeleopDevice, *,
                 event_devices: Sequence[TeleopDevice] = ()) -> None:
        self.cfg = cfg
        self.device = device
        self.event_devices = list(event_devices)
        self.recording = False  # an episode is being recorded (as far as the recorder has told)
        self.done = False  # the operator quit
        self.episodes = 0  # episodes started by this stream
        self._instruction = cfg.instruction
        self._instruction_due = False

    # --------------------------------------------------------------------------------------------- devices
    def connect(self) -> None:
        """Connect every device (closing those already opened when one fails)."""
        open_all((self.device, *self.event_devices), lambda d: d.connect(), lambda d: d.close())

    def close(self) -> None:
        """Release every device (restores the terminal of a keyboard); safe to call twice."""
        for d in (self.device, *self.event_devices):
            d.close()

    def __enter__(self) -> TeleopStream:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------------- stream
    @property
    def instruction(self) -> str:
        return self._instruction

    def set_instruction(self, text: str) -> None:
        """Use `text` from now on ('' = none); it is published with the next step."""
        self._instruction = text
        self._instruction_due = bool(text)

    def action_of(self, command: TeleopCommand) -> np.ndarray:
        """A device command as the configured action vector, float64 (len(action_names),)."""
        delta = command.delta.astype(np.float64)
        if self.cfg.gripper_index is None:
            return delta
        return np.insert(delta, self.cfg.gripper_index, float(command.gripper))

    def step(self) -> TeleopOutput:
        """Poll the devices once.

        Raises:
            RuntimeError: the stream is over (the operator quit), or a device failed (e.g. unplugged).
        """
        if self.done:
            raise RuntimeError('the teleop stream is over (the operator quit)')
        command = self.device.get_action()
        events = [*command.events, *(e for d in self.event_devices for e in d.get_action().events)]
        calls: list[RecorderCall] = []
        for event in events:
            calls += self._handle(event)
            if self.done:
                break
        instruction = None
        if self._instruction_due or (RecorderCall.START in calls and self._instruction):
            instruction, self._instruction_due = self._instruction, False
        return TeleopOutput(self.action_of(command), tuple(calls), instruction, self.done)

    def _handle(self, event: TeleopEvent) -> list[RecorderCall]:
        if event is TeleopEvent.QUIT:
            self.done = True
            logger.info('operator quit%s', ': discarding the episode being recorded' if self.recording else '')
            return self._end(RecorderCall.DISCARD) if self.cfg.episode_control else []
        if not self.cfg.episode_control:
            logger.debug('episode event %s ignored (episode_control is off)', event.value)
            return []
        if event is TeleopEvent.START_STOP:
            if self.recording:
                return self._end(RecorderCall.STOP)
            self.recording = True
            self.episodes += 1
            return [RecorderCall.START]
        if not self.recording:
            logger.info('%s: no episode is being recorded', event.value)
        return self._end(RecorderCall.DISCARD)  # DISCARD or RERECORD

    def _end(self, call: RecorderCall) -> list[RecorderCall]:
        if not self.recording:
            return []
        self.recording = False
        return [call]

    # ------------------------------------------------------------------------------------ recorder feedback
    def on_episode_event(self, text: str) -> None:
        """The recorder's `episode_events` message (start/stop/discard), from any client: the true state.

        Raises:
            ValueError: an unknown event.
        """
        try:
            event = RecorderCall(text.strip().lower())
        except ValueError:
            raise ValueError(f'unknown episode event {text!r}; expected one of '
                             f'{[c.value for c in RecorderCall]}') from None
        self.recording = event is RecorderCall.START

    def on_call_failed(self, call: RecorderCall) -> None:
        """A call was refused or not delivered: a failed start means no episode is being recorded."""
        if call is RecorderCall.START:
            self.recording = False


def make_stream_devices(name: str, config: Any, key_sources: Sequence[KeySource]) -> tuple[TeleopDevice,
                                                                                          list[TeleopDevice]]:
    """The device `name` and the event devices of a stream.

    A keyboard reads `key_sources`; another device gets a keyboard on `key_sources` beside it for the events its
    buttons lack (discard, re-record, quit), when there is a key source.

    Args:
        name: registered device name.
        config: its config dataclass.
        key_sources: where keys come from (a terminal, keys sent by code).

    Raises:
        ValueError: an unknown name, or a keyboard without key sources. TypeError: a config of another device.
    """
    if name == 'keyboard':
        return make_teleop(name, config, sources=list(key_sources)), []
    device = make_teleop(name, config)
    return device, ([KeyboardDevice(sources=list(key_sources))] if key_sources else [])
