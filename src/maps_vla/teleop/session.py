"""`TeleopSession`: record teleoperated episodes in the sim into a LeRobot dataset.

The loop runs at the env's control rate. Idle, it shows the next scene and waits; START_STOP starts recording
from that scene, and every step then stores (observation, action) and steps the env with the operator's
command. An episode ends when the operator presses START_STOP (saved), DISCARD (dropped, next scene), RERECORD
(dropped, same scene again) or QUIT (dropped, session over), or when the env ends it: on success it is saved, on
failure or at the time limit it is dropped unless `keep_failures`. Episodes are committed one at a time by the
`DatasetWriter`, so a crash or Ctrl-C loses at most the one being recorded.

`tick()` is one control step without pacing, so a ROS timer or a test can drive the session; `run()` loops it
in real time.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from maps_vla.data.dataset import ACTION
from maps_vla.data.writer import DatasetWriter
from maps_vla.policy import OBS_IMAGE_PREFIX
from maps_vla.teleop.config_session import SessionConfig
from maps_vla.teleop.device import TeleopCommand, TeleopDevice, TeleopEvent
from maps_vla.teleop.viewer import LiveView

__all__ = ['TeleopSession', 'SessionResult']

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SessionResult:
    """What a session recorded."""

    saved: dict[int, int] = dataclasses.field(default_factory=dict)  # dataset episode index -> scene seed
    discarded: int = 0  # episodes dropped (by the operator, or failures without keep_failures)
    frames: int = 0  # frames in the saved episodes


class TeleopSession:
    """Drives `env` with `device` and writes episodes to `writer`.

    Args:
        env: a maps_vla.sim env (reset(seed), step(action), instruction, control_hz) with EE-delta actions.
        device: the connected teleop device whose commands move the arm.
        writer: open dataset writer whose features are the env's observations plus 'action'.
        config: session options.
        event_devices: extra connected devices read only for their episode events (e.g. a keyboard beside a
            SpaceMouse, which has no discard or quit button).
        view: live view to refresh every step; None: none.
        clock, sleep: time source and sleep function of `run` (injectable for tests).

    Raises:
        ValueError: the env does not take 7-D EE-delta actions, or the writer lacks an 'action' feature.
    """

    def __init__(self, env: Any, device: TeleopDevice, writer: DatasetWriter, config: SessionConfig | None = None,
                 *, event_devices: Sequence[TeleopDevice] = (), view: LiveView | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        spec = env.action_spec
        if spec.kind != 'ee_delta' or spec.dim != 7:
            raise ValueError(f'teleop records EE-delta actions [dx dy dz droll dpitch dyaw gripper]; the env takes '
                             f'{spec.kind!r} actions of {spec.dim} dims (make it with action_kind="ee_delta")')
        if ACTION not in writer.features:
            raise ValueError(f"the dataset has no {ACTION!r} feature; it has {sorted(writer.features)}")
        self.env, self.device, self.writer = env, device, writer
        self.config = config or SessionConfig()
        self.event_devices = list(event_devices)
        self.view = view
        self._clock, self._sleep = clock, sleep
        self._keys = [k for k in writer.frame_keys if k != ACTION]
        self._cameras = sorted(k for k in writer.features if k.startswith(OBS_IMAGE_PREFIX))
        seed = self.config.seed
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
            logger.info('scene seeds start at %d (give this seed to repeat the scenes)', seed)
        self._next_seed = seed
        self.result = SessionResult()
        self.recording = False
        self.done = False
        self.seed = -1
        self.instruction = ''
        self.obs: dict[str, Any] = {}
        self._last = TeleopCommand(np.zeros(6))

    # ------------------------------------------------------------------------------------------------ loop
    def run(self) -> SessionResult:
        """Tick at the env's control rate until the operator quits or `num_episodes` are saved."""
        period = 1.0 / float(self.env.control_hz)
        next_tick = self._clock()
        while self.tick():
            if self.config.realtime:
                next_tick += period
                delay = next_tick - self._clock()
                if delay > 0:
                    self._sleep(delay)
                else:  # fell behind (slow rendering): start a fresh schedule rather than rushing to catch up
                    logger.debug('control step overran by %.1f ms', -delay * 1000)
                    next_tick = self._clock()
        return self.result

    def tick(self) -> bool:
        """One control step: read the devices, handle episode events, record and step when recording.

        Returns:
            False once the session is over.
        """
        if self.done:
            return False
        if not self.obs:
            self._new_scene(self._take_seed())
        command = self.device.get_action()
        events = list(command.events)
        for extra in self.event_devices:
            events.extend(extra.get_action().events)
        self._last = command
        for event in events:
            self._handle(event)
            if self.done:
                return False
        if self.recording:
            self._record(command)
        if self.view is not None and self._cameras:
            self.view.show([self.obs[k] for k in self._cameras], self.status())
        return not self.done

    def status(self) -> str:
        """One line for the live view: recording state, counts, gripper, instruction."""
        state = f'REC {self.writer.episode_frames:4d}' if self.recording else 'idle (enter: record)'
        gripper = 'closed' if self._last.gripper >= 0.5 else 'open'
        return (f'{state} | saved {len(self.result.saved)} | seed {self.seed} | gripper {gripper} | '
                f'{self.instruction}')

    # ------------------------------------------------------------------------------------------------ episodes
    def _take_seed(self) -> int:
        seed, self._next_seed = self._next_seed, self._next_seed + 1
        return seed

    def _new_scene(self, seed: int) -> None:
        self.seed = seed
        self.obs = self.env.reset(seed)
        self.instruction = self.config.instruction or str(self.env.instruction)
        for device in (self.device, *self.event_devices):
            device.reset()
        logger.info('scene %d: %r', seed, self.instruction)

    def _handle(self, event: TeleopEvent) -> None:
        if event is TeleopEvent.QUIT:
            if self.recording:
                self._drop('quit')
            self.done = True
        elif event is TeleopEvent.START_STOP:
            if self.recording:
                self._save('stopped by the operator')
                if not self.done:
                    self._new_scene(self._take_seed())
            else:
                self.recording = True
                logger.info('recording episode %d', self.writer.num_episodes)
        elif event is TeleopEvent.DISCARD:
            if self.recording:
                self._drop('discarded')
            self._new_scene(self._take_seed())
        elif event is TeleopEvent.RERECORD:
            if self.recording:
                self._drop('re-record')
                self._new_scene(self.seed)

    def _record(self, command: TeleopCommand) -> None:
        action = command.action
        self.writer.add_frame({**{k: self.obs[k] for k in self._keys}, ACTION: action}, task=self.instruction)
        self.obs, _, terminated, truncated, info = self.env.step(action)
        if info.get('success', False):
            self._save('success')
        elif terminated or truncated:
            if self.config.keep_failures:
                self._save('ended without success (kept: keep_failures)')
            else:
                self._drop('ended without success' + (' (time limit)' if truncated else ''))
        else:
            return
        if not self.done:
            self._new_scene(self._take_seed())

    def _save(self, why: str) -> None:
        frames = self.writer.episode_frames
        self.recording = False
        if frames == 0:
            self.writer.discard_episode()
            logger.info('episode had no frames: nothing saved')
            return
        index = self.writer.save_episode()
        self.result.saved[index] = self.seed
        self.result.frames += frames
        logger.info('saved episode %d (%s, %d frames, seed %d)', index, why, frames, self.seed)
        if self.config.num_episodes is not None and len(self.result.saved) >= self.config.num_episodes:
            logger.info('%d episodes saved: done', len(self.result.saved))
            self.done = True

    def _drop(self, why: str) -> None:
        frames = self.writer.episode_frames
        self.writer.discard_episode()
        self.recording = False
        self.result.discarded += 1
        logger.info('dropped the episode (%s, %d frames)', why, frames)
