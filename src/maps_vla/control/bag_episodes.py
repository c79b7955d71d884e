"""A recorded teleop bag -> LeRobot episodes, time-aligned to the dataset fps by the live recorder's own logic.

Messages are read in receive-time order and fed to an `EpisodeRecorder`; between them a clock ticks at the
dataset fps from the first message on, and every tick writes a frame from the inputs in force (sample and hold,
stale inputs skip the tick). Episode boundaries come from the recorder node's `episode_events` topic
(std_msgs/String 'start' / 'stop' / 'discard') when the bag has it; otherwise the whole bag is one episode.
Topic names match with or without the leading '/' (`ros2 bag record` stores absolute names).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from maps_vla.control import msg_conversion as mc
from maps_vla.control.bag_io import BagMessage, bag_topics, make_typestore, read_messages
from maps_vla.control.proprio import StateConfig
from maps_vla.control.recorder import EpisodeRecorder, RecorderConfig

__all__ = ['BagEpisodesConfig', 'BagEpisodesReport', 'bag_to_episodes', 'EPISODE_EVENTS']

logger = logging.getLogger(__name__)

EPISODE_EVENTS = ('start', 'stop', 'discard')
_IMAGE, _COMPRESSED = 'sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage'
_TRAJECTORY, _MULTIARRAY = 'trajectory_msgs/msg/JointTrajectory', 'std_msgs/msg/Float64MultiArray'


@dataclasses.dataclass(frozen=True)
class BagEpisodesConfig:
    """Topics of the bag and the episodes to make of them (recorder.root is replaced by the output folder)."""

    recorder: RecorderConfig = dataclasses.field(default_factory=RecorderConfig)
    state: StateConfig = dataclasses.field(default_factory=StateConfig)
    camera_topics: tuple[str, ...] = ()  # one per recorder camera; () = camera/<name>/image_raw (or .../compressed)
    joint_states_topics: tuple[str, ...] = ('joint_states', 'franka/joint_states', 'franka_gripper/joint_states'
                                            )  # JointState topics with the state's joints (those in the bag are read)
    pose_topic: str = 'franka_robot_state_broadcaster/current_pose'  # measured TCP PoseStamped (ee_pose state)
    action_topic: str = 'action'  # commanded action: JointTrajectory (first point) or Float64MultiArray
    instruction_topic: str = 'instruction'  # std_msgs/String
    events_topic: str = 'episode_events'  # std_msgs/String start|stop|discard; absent -> one episode per bag
    use_header_stamps: bool = True  # time inputs by header.stamp (0 falls back to the receive time)
    distro: str = 'jazzy'  # message definitions for types the bag does not embed: jazzy or humble

    def __post_init__(self) -> None:
        if self.camera_topics and len(self.camera_topics) != len(self.recorder.cameras):
            raise ValueError(f'BagEpisodesConfig.camera_topics needs one topic per camera '
                             f'{list(self.recorder.cameras)}, got {list(self.camera_topics)}')
        if not self.joint_states_topics:
            raise ValueError('BagEpisodesConfig.joint_states_topics must name at least one topic')


@dataclasses.dataclass
class BagEpisodesReport:
    """What a conversion read and wrote."""

    bag: str
    dataset: str
    episodes: list[int]  # indices of the saved episodes
    frames: list[int]  # frames of each saved episode
    messages: dict[str, int]  # topic -> messages read
    rejected: dict[str, int]  # 'topic: reason' -> messages skipped
    skipped_ticks: dict[str, int]  # reason -> ticks without a frame while recording
    segments: int  # episodes started (saved or not)

    def summary(self) -> str:
        lines = [f'bag2episodes {self.bag} -> {self.dataset}: {len(self.episodes)} of {self.segments} episodes saved '
                 f'({sum(self.frames)} frames: {self.frames})', f'  read: {self.messages}']
        if self.skipped_ticks:
            lines.append(f'  ticks without a frame: {self.skipped_ticks}')
        if self.rejected:
            lines.append(f'  rejected: {self.rejected}')
        return '\n'.join(lines)


def _norm(topic: str) -> str:
    return topic.strip('/')


class _Converter:
    def __init__(self, cfg: BagEpisodesConfig, recorder: EpisodeRecorder, topics: dict[str, Any]) -> None:
        self.cfg, self.recorder = cfg, recorder
        present = {_norm(t): t for t in topics}
        names = cfg.recorder.cameras
        wanted = cfg.camera_topics or tuple(f'camera/{n}/image_raw' for n in names)
        self.cameras: dict[str, str] = {}
        for name, topic in zip(names, wanted):
            found = present.get(_norm(topic)) or present.get(_norm(topic) + '/compressed')
            if found is None:
                raise ValueError(f'bag has no topic {topic!r} for camera {name!r}; it has {sorted(topics)}')
            self.cameras[found] = name
        self.joint_topics = {present[_norm(t)] for t in cfg.joint_states_topics if _norm(t) in present}
        if not self.joint_topics:
            raise ValueError(f'bag has none of the joint state topics {list(cfg.joint_states_topics)}; it has '
                             f'{sorted(topics)}')
        self.pose = present.get(_norm(cfg.pose_topic)) if recorder.proprio.needs_pose else None
        if recorder.proprio.needs_pose and self.pose is None:
            raise ValueError(f'the ee_pose state needs the pose topic {cfg.pose_topic!r}; the bag has '
                             f'{sorted(topics)} (or use state.kind=joint_positions)')
        self.action = present.get(_norm(cfg.action_topic))
        if self.action is None:
            raise ValueError(f'bag has no action topic {cfg.action_topic!r}; it has {sorted(topics)}')
        self.instruction = present.get(_norm(cfg.instruction_topic))
        self.events = present.get(_norm(cfg.events_topic))
        self.messages: collections.Counter[str] = collections.Counter()
        self.rejected: collections.Counter[str] = collections.Counter()
        self.skipped: collections.Counter[str] = collections.Counter()
        self.segments = 0

    @property
    def topics(self) -> list[str]:
        extra = [t for t in (self.pose, self.action, self.instruction, self.events) if t]
        return [*self.cameras, *self.joint_topics, *extra]

    def _stamp(self, msg: Any, receive: float) -> float:
        if self.cfg.use_header_stamps and hasattr(msg, 'header'):
            stamp = mc.stamp_of(msg)
            if stamp > 0:
                return stamp
        return receive

    def _event(self, text: str) -> None:
        text = text.strip().lower()
        if text not in EPISODE_EVENTS:
            raise ValueError(f'unknown episode event {text!r}; expected one of {EPISODE_EVENTS}')
        if text == 'start':
            if self.recorder.recording:
                logger.warning('episode event start while recording: the previous episode ends here')
                self._end()
            self.recorder.start()
            self.segments += 1
        elif text == 'stop' and self.recorder.recording:
            self._end()
        elif text == 'discard':
            self.recorder.discard()

    def _end(self) -> None:
        self.skipped.update(self.recorder.skipped)
        self.recorder.stop()

    def handle(self, bm: BagMessage) -> None:
        self.messages[bm.topic] += 1
        msg, t = bm.msg, bm.time
        try:
            if bm.topic in self.cameras:
                if bm.msgtype == _IMAGE:
                    frame = mc.image_to_rgb(msg)
                elif bm.msgtype == _COMPRESSED:
                    frame = mc.compressed_to_numpy(msg)
                else:
                    raise ValueError(f'camera topic carries {bm.msgtype}, not an Image or CompressedImage')
                self.recorder.on_image(self.cameras[bm.topic], frame, self._stamp(msg, t))
            elif bm.topic in self.joint_topics:
                js = mc.joint_state_to_numpy(msg)
                if js.position is None:
                    raise ValueError('JointState has no positions')
                self.recorder.on_joint_state(js.names, js.position, self._stamp(msg, t))
            elif bm.topic == self.pose:
                pose = mc.pose_to_numpy(msg)
                self.recorder.on_pose(pose.position, pose.quaternion, self._stamp(msg, t))
            elif bm.topic == self.action:
                if bm.msgtype == _TRAJECTORY:
                    if not msg.points:
                        raise ValueError('action JointTrajectory has no points')
                    action = np.asarray(msg.points[0].positions, dtype=np.float64)
                elif bm.msgtype == _MULTIARRAY:
                    action = mc.multiarray_to_numpy(msg).reshape(-1)
                else:
                    raise ValueError(f'action topic carries {bm.msgtype}, not a JointTrajectory or Float64MultiArray')
                self.recorder.on_action(action, self._stamp(msg, t))
            elif bm.topic == self.instruction:
                self.recorder.set_instruction(mc.string_to_str(msg))
            elif bm.topic == self.events:
                self._event(mc.string_to_str(msg))
        except (ValueError, TypeError) as exc:
            reason = f'{bm.topic}: {exc}'
            if reason not in self.rejected:
                logger.warning('skipping message on %s at %.3f s: %s', bm.topic, t, exc)
            self.rejected[reason] += 1

    def run(self, messages: Any) -> None:
        period = 1.0 / self.cfg.recorder.fps
        t0, k = None, 0
        if self.events is None:
            self.recorder.start()
            self.segments += 1
        for bm in messages:
            if t0 is None:
                t0 = bm.time
            while t0 + k * period <= bm.time:
                self.recorder.tick(t0 + k * period)
                k += 1
            self.handle(bm)
        if self.recorder.recording:
            if self.events is not None:
                logger.warning('the bag ends inside an episode (no stop event); saving it')
            self._end()


def bag_to_episodes(bag: str | Path, out: str | Path, cfg: BagEpisodesConfig | None = None) -> BagEpisodesReport:
    """Convert the teleop bag `bag` into episodes appended to (or starting) the dataset `out`.

    Raises:
        FileNotFoundError: no bag.
        ValueError: the bag lacks a topic the config needs (the message lists the bag's topics), or an existing
            dataset at `out` has other features.
        BagError: a truncated or corrupt bag.
    """
    cfg = cfg or BagEpisodesConfig()
    bag, out = Path(bag), Path(out)
    topics = bag_topics(bag)  # raises FileNotFoundError / BagError
    # A new dataset is written in a hidden sibling folder and moved to `out` only when episodes were saved, so a
    # bag that yields nothing (or a failure) leaves no empty dataset that would block the rerun.
    new = not (out / 'meta' / 'info.json').is_file()
    if new and out.exists() and any(out.iterdir()):
        raise FileExistsError(f'{str(out)!r} exists, is not empty and is not a dataset; choose another --out')
    target = out.with_name(f'.{out.name}.partial') if new else out
    if new:
        shutil.rmtree(target, ignore_errors=True)  # left by a killed run
    recorder = EpisodeRecorder(dataclasses.replace(cfg.recorder, root=str(target)), cfg.state)
    try:
        try:
            converter = _Converter(cfg, recorder, topics)
            converter.run(read_messages(bag, converter.topics, make_typestore(cfg.distro)))
            saved = list(recorder.saved)
        finally:
            recorder.close()
        frames = _episode_lengths(target, saved)
        if new and saved:
            os.replace(target, out)
    finally:
        if new:
            shutil.rmtree(target, ignore_errors=True)
    report = BagEpisodesReport(str(bag), str(out), saved, frames, dict(converter.messages),
                               dict(converter.rejected), dict(converter.skipped), converter.segments)
    logger.info('%s', report.summary())
    return report


def _episode_lengths(root: Path, indices: list[int]) -> list[int]:
    from maps_vla.data.dataset import Dataset

    if not indices:
        return []
    lengths = {ep.episode_index: ep.length for ep in Dataset(root).episodes}
    return [lengths[i] for i in indices]
