"""Offline replay: the robot runtime (camera -> policy runner -> smoother -> safety) driven from a ROS 2 bag.

Messages are fed in receive-time order; between them a simulated clock ticks the smoother and the safety bridge at
the control rate and asks the policy for a chunk at the policy rate (inference runs synchronously, so a replay is
deterministic; `policy_latency` delays each chunk's arrival as a real inference would, and requests while a chunk
is in flight are dropped, by the same PolicyRunner rule as on the robot). Outputs go to a new bag:
`action_chunk` (JointTrajectory, header.stamp = observation time), `action` (the smoothed command, one-point
JointTrajectory), `command` (PoseStamped target for ee_delta, one-point JointTrajectory for joint_position),
`gripper` (Float64MultiArray [width, speed, force, grasp]) and `safety_status` (String, on change).
A message that cannot be converted (e.g. an Image with a wrong step) is logged, counted and skipped.

A replay fails loudly rather than write a useless bag: a camera, joint-state or pose topic missing from the input is
a `BagError` listing the bag's image topics, and a replay in which no chunk reached the smoother is a
`ReplayError` (with the report: stale reasons, inference errors). The output bag is written into a temporary folder
next to `out_bag` and moved into place only when the replay succeeded, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from maps_vla.control import msg_conversion as mc
from maps_vla.control.bag_io import BagMessage, BagWriter, make_typestore, read_messages, require_topics
from maps_vla.control.camera import CameraConfig, CameraIngest
from maps_vla.control.chunk import ActionChunk
from maps_vla.control.franka_limits import joint_limits
from maps_vla.control.metrics import SmoothnessMetrics, smoothness
from maps_vla.control.policy_runner import PolicyRunner, PolicyRunnerConfig, RunnerStats
from maps_vla.control.safety import SafetyBridge, SafetyConfig, SafetyOutput
from maps_vla.control.smoothing import ChunkSmoother, HoldMode, SmootherConfig
from maps_vla.policy import ActionSpec, BasePolicy, EE_DELTA_ACTION

__all__ = ['ReplayConfig', 'ReplayReport', 'ReplayError', 'replay_bag']

logger = logging.getLogger(__name__)

_IMAGE = 'sensor_msgs/msg/Image'
_COMPRESSED = 'sensor_msgs/msg/CompressedImage'
_MAX_EXAMPLES = 20


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Topics, rates and component configs of a replay.

    The action spec decides the smoother's gripper_index and hold_mode and the safety bridge's kind, action_hz,
    gripper_index and control_hz (= smoother.control_hz); the runner's cameras are camera.names, and it always runs
    synchronously.
    """

    action: ActionSpec = EE_DELTA_ACTION  # used unless the policy has its own `action_spec`
    camera: CameraConfig = dataclasses.field(default_factory=CameraConfig)
    runner: PolicyRunnerConfig = dataclasses.field(default_factory=PolicyRunnerConfig)
    smoother: SmootherConfig = dataclasses.field(default_factory=SmootherConfig)
    safety: SafetyConfig = dataclasses.field(default_factory=SafetyConfig)
    policy_hz: float = 10.0  # how often the policy is asked for a chunk
    policy_latency: float = 0.0  # s from a request to its chunk reaching the smoother (simulated inference time)
    joint_states_topic: str = 'joint_states'  # sensor_msgs/JointState
    state_joints: tuple[str, ...] = joint_limits('fr3').names  # joints forming the policy's state vector, in order
    pose_topic: str = ''  # measured EE PoseStamped (e.g. franka_robot_state_broadcaster/current_pose); '' = none
    initial_position: tuple[float, float, float] = (0.307, 0.0, 0.487)  # m; ee target start without pose_topic
    initial_orientation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # x, y, z, w (gripper down)
    instruction_topic: str = 'instruction'  # std_msgs/String
    instruction: str = ''  # instruction used until the bag publishes one
    use_header_stamps: bool = True  # stamp data with header.stamp (0 falls back to the receive time)
    tail: float = 0.0  # s the clock keeps ticking after the last message
    storage: str = 'sqlite3'  # output bag storage: sqlite3 or mcap
    distro: str = 'jazzy'  # message definitions: jazzy or humble
    action_chunk_topic: str = 'action_chunk'
    action_topic: str = 'action'
    command_topic: str = 'command'
    gripper_topic: str = 'gripper'
    status_topic: str = 'safety_status'

    def __post_init__(self) -> None:
        for name in ('policy_hz',):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f'ReplayConfig.{name} must be a finite number > 0, got {getattr(self, name)}')
        for name in ('policy_latency', 'tail'):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise ValueError(f'ReplayConfig.{name} must be a finite number >= 0, got {getattr(self, name)}')
        if self.storage not in ('sqlite3', 'mcap'):
            raise ValueError(f"ReplayConfig.storage must be 'sqlite3' or 'mcap', got {self.storage!r}")
        if not self.state_joints:
            raise ValueError('ReplayConfig.state_joints must name at least one joint')


class ReplayError(RuntimeError):
    """A replay ran but produced nothing usable; `report` says why (stale reasons, inference errors)."""

    def __init__(self, message: str, report: ReplayReport) -> None:
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class ReplayReport:
    """What a replay read, rejected, produced, and how smooth its outputs were."""

    in_bag: str
    out_bag: str
    messages: dict[str, int]  # input topic -> messages read
    rejected: dict[str, int]  # 'topic: reason' -> messages skipped
    rejected_examples: list[str]  # the first few rejections with their times
    written: dict[str, int]  # output topic -> messages written
    ticks: int  # control ticks run
    chunks: int  # chunks that reached the smoother
    runner: RunnerStats
    smoother_states: dict[str, int]  # smoother state -> ticks
    safety_status: dict[str, int]  # safety status -> ticks
    safety_rejections: dict[str, int]  # reason -> count
    action_smoothness: SmoothnessMetrics  # of the smoothed command (continuous dims, action units)
    command_smoothness: SmoothnessMetrics  # of the robot target (m for ee_delta positions, rad for joints)

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [f'replay {self.in_bag} -> {self.out_bag}: {self.ticks} ticks, {self.chunks} chunks',
                 f'  read: {dict(self.messages)}', f'  written: {dict(self.written)}']
        if self.rejected:
            lines.append(f'  rejected: {dict(self.rejected)}')
        r = self.runner
        lines.append(f'  policy: {r.submitted} run, {r.stale} stale {r.stale_reasons}, {r.errors} errors '
                     f'({r.non_finite} non-finite), {r.dropped_busy} dropped busy')
        lines.append(f'  smoother: {self.smoother_states}; safety: {self.safety_status} {self.safety_rejections}')
        for name, m in (('action', self.action_smoothness), ('command', self.command_smoothness)):
            lines.append(f'  {name}: max step {m.max_step:.4g} (at seams {m.max_seam_step:.4g}, elsewhere '
                         f'{m.max_other_step:.4g}), jerk RMS {m.jerk_rms:.4g}')
        return '\n'.join(lines)


def _components(policy: BasePolicy, cfg: ReplayConfig) -> tuple[ActionSpec, PolicyRunner, ChunkSmoother, SafetyBridge]:
    spec = getattr(policy, 'action_spec', None) or cfg.action
    ee = spec.kind == 'ee_delta'
    smoother_cfg = dataclasses.replace(cfg.smoother, gripper_index=spec.gripper_index,
                                       hold_mode=HoldMode.ZERO if ee else HoldMode.KEEP)
    safety_cfg = dataclasses.replace(cfg.safety, kind=spec.kind, action_hz=spec.control_hz,
                                     gripper_index=spec.gripper_index, control_hz=cfg.smoother.control_hz)
    # Replay always infers synchronously: the simulated clock must not run ahead of a policy on another thread. The
    # runner simulates the inference time and drops requests while a chunk is in flight, as the threaded one does.
    runner_cfg = dataclasses.replace(cfg.runner, cameras=cfg.camera.names, synchronous=True,
                                     latency=cfg.policy_latency)
    for name, given, used in (('smoother', cfg.smoother, smoother_cfg), ('safety', cfg.safety, safety_cfg)):
        changed = {f.name: getattr(used, f.name) for f in dataclasses.fields(used)
                   if getattr(used, f.name) != getattr(given, f.name)}
        if changed:
            logger.info('%s settings taken from the action spec: %s', name, changed)
    return spec, PolicyRunner(policy, runner_cfg, spec), ChunkSmoother(smoother_cfg), SafetyBridge(safety_cfg)


class _Replay:
    """One replay's state; `run` drives it."""

    def __init__(self, policy: BasePolicy, cfg: ReplayConfig, writer: BagWriter) -> None:
        self.cfg, self.writer, self.types = cfg, writer, writer.types
        self.spec, self.runner, self.smoother, self.bridge = _components(policy, cfg)
        self.ee = self.spec.kind == 'ee_delta'
        self.camera = CameraIngest(cfg.camera)
        self.camera_topics = {cfg.camera.topic(name): name for name in cfg.camera.names}
        self.tick_dt = 1.0 / cfg.smoother.control_hz
        self.messages: collections.Counter[str] = collections.Counter()
        self.rejected: collections.Counter[str] = collections.Counter()
        self.examples: list[str] = []
        self.smoother_states: collections.Counter[str] = collections.Counter()
        self.safety_status: collections.Counter[str] = collections.Counter()
        self.chunks = 0
        self.ticks = 0
        self.actions: list[np.ndarray] = []
        self.seams: list[bool] = []
        self.targets: list[np.ndarray] = []
        self.target_seams: list[bool] = []
        self.last_status: str | None = None
        if not self.ee:
            self.joint_names = self.bridge.joint_names
        if cfg.instruction:
            self.runner.set_instruction(cfg.instruction)
        if self.ee and not cfg.pose_topic:
            self.bridge.anchor(np.asarray(cfg.initial_position), np.asarray(cfg.initial_orientation))
        trajectory = 'trajectory_msgs/msg/JointTrajectory'
        out = ((cfg.action_chunk_topic, trajectory), (cfg.action_topic, trajectory),
               (cfg.command_topic, 'geometry_msgs/msg/PoseStamped' if self.ee else trajectory),
               (cfg.gripper_topic, 'std_msgs/msg/Float64MultiArray'),
               (cfg.status_topic, 'std_msgs/msg/String'))
        for topic, msgtype in out:
            writer.add_topic(topic, msgtype)

    @property
    def input_topics(self) -> list[str]:
        return [*self.required_topics, self.cfg.instruction_topic]

    @property
    def required_topics(self) -> list[str]:
        """Topics the input bag must have: the cameras, the joint states (state or joint mode) and the pose."""
        topics = list(self.camera_topics)
        if self.cfg.runner.require_state or not self.ee:
            topics.append(self.cfg.joint_states_topic)
        return topics + ([self.cfg.pose_topic] if self.cfg.pose_topic else [])

    # ------------------------------------------------------------------------------------------ message input
    def _stamp(self, msg: Any, receive: float) -> float:
        if self.cfg.use_header_stamps and hasattr(msg, 'header'):
            stamp = mc.stamp_of(msg)
            if stamp > 0:
                return stamp
        return receive

    def handle(self, bm: BagMessage) -> None:
        self.messages[bm.topic] += 1
        t = bm.time
        try:
            if bm.topic in self.camera_topics:
                if bm.msgtype == _IMAGE:
                    frame = mc.image_to_rgb(bm.msg)
                elif bm.msgtype == _COMPRESSED:
                    frame = mc.compressed_to_numpy(bm.msg)
                else:
                    raise ValueError(f'camera topic carries {bm.msgtype}, not an Image or CompressedImage')
                name = self.camera_topics[bm.topic]
                out = self.camera.on_image(name, frame, self._stamp(bm.msg, t))
                self.runner.on_image(name, out.image, out.stamp)
            elif bm.topic == self.cfg.joint_states_topic:
                stamp = self._stamp(bm.msg, t)
                state = mc.joint_state_to_numpy(bm.msg, self.cfg.state_joints)
                if state.position is None:
                    raise ValueError('JointState has no positions')
                self.runner.on_state(state.position, stamp)
                if not self.ee:
                    arm = mc.joint_state_to_numpy(bm.msg, self.joint_names)
                    self.bridge.on_joint_state(arm.position, stamp)
            elif bm.topic == self.cfg.pose_topic:
                pose = mc.pose_to_numpy(bm.msg)
                self.bridge.on_measured_pose(pose.position, pose.quaternion, self._stamp(bm.msg, t))
            elif bm.topic == self.cfg.instruction_topic:
                self.runner.set_instruction(mc.string_to_str(bm.msg))
        except (ValueError, TypeError) as exc:
            reason = f'{bm.topic}: {exc}'
            if reason not in self.rejected:
                logger.warning('skipping message on %s at %.3f s: %s', bm.topic, t, exc)
            self.rejected[reason] += 1
            if len(self.examples) < _MAX_EXAMPLES:
                self.examples.append(f'{bm.topic} @ {t:.3f}s: {exc}')

    # ------------------------------------------------------------------------------------------------ ticking
    def tick(self, now: float, request: bool) -> None:
        self.ticks += 1
        ns = round(now * 1e9)
        if request:
            self.runner.request(now)
        for chunk in self.runner.pop_chunks(now):
            self.smoother.on_chunk(chunk)
            self.bridge.on_chunk(now)
            self.chunks += 1
            self.writer.write(self.cfg.action_chunk_topic, mc.chunk_to_trajectory(self.types, chunk), ns)
        out = self.smoother.tick(now)
        if out is not None:
            self.smoother_states[out.state.value] += 1
            self.actions.append(out.command)
            self.seams.append(out.seam)
            self.bridge.on_command(out.command, now)
            one = ActionChunk(now, out.command[None], self.tick_dt, self.spec.names)
            self.writer.write(self.cfg.action_topic, mc.chunk_to_trajectory(self.types, one), ns)
        self.write_safety(self.bridge.tick(now), ns, bool(out is not None and out.seam))

    def write_safety(self, out: SafetyOutput, ns: int, seam: bool) -> None:
        self.safety_status[out.status.value] += 1
        status = f'{out.status.value}: {out.reason}' if out.reason else out.status.value
        if out.status.value != self.last_status:
            self.writer.write(self.cfg.status_topic, mc.str_to_string(self.types, status), ns)
            self.last_status = out.status.value
        if out.pose is not None:
            p = out.pose
            self.writer.write(self.cfg.command_topic,
                              mc.numpy_to_pose(self.types, p.position, p.quaternion, p.stamp, p.frame_id), ns)
            self.targets.append(p.position)
        elif out.joints is not None:
            j = out.joints
            one = ActionChunk(j.stamp, j.positions[None], self.tick_dt, j.names)
            self.writer.write(self.cfg.command_topic, mc.chunk_to_trajectory(self.types, one), ns)
            self.targets.append(j.positions)
        if out.pose is not None or out.joints is not None:
            self.target_seams.append(seam)
        if out.gripper is not None:
            g = out.gripper
            self.writer.write(self.cfg.gripper_topic, mc.numpy_to_multiarray(
                self.types, [g.width, g.speed, g.force, float(g.grasp)], ['width,speed,force,grasp']), ns)

    def run(self, messages: Any) -> None:
        t0: float | None = None
        k = 0  # control ticks are t0 + k * tick_dt, policy requests every `every` ticks
        every = max(1, round(self.cfg.smoother.control_hz / self.cfg.policy_hz))
        last = None
        for bm in messages:
            if t0 is None:
                t0 = bm.time
            while t0 + k * self.tick_dt <= bm.time:
                self.tick(t0 + k * self.tick_dt, k % every == 0)
                k += 1
            self.handle(bm)
            last = bm.time
        if t0 is not None:
            while t0 + k * self.tick_dt <= last + self.cfg.tail:
                self.tick(t0 + k * self.tick_dt, k % every == 0)
                k += 1

    def report(self, in_bag: Path, out_bag: Path) -> ReplayReport:
        continuous = [i for i in range(self.spec.dim) if i != self.spec.gripper_index]
        actions = np.array(self.actions).reshape(-1, self.spec.dim)[:, continuous]
        targets = np.array(self.targets).reshape(len(self.targets), -1)
        return ReplayReport(
            in_bag=str(in_bag), out_bag=str(out_bag), messages=dict(self.messages), rejected=dict(self.rejected),
            rejected_examples=list(self.examples), written=dict(self.writer.counts), ticks=self.ticks,
            chunks=self.chunks, runner=self.runner.stats(), smoother_states=dict(self.smoother_states),
            safety_status=dict(self.safety_status), safety_rejections=dict(self.bridge.rejections),
            action_smoothness=smoothness(actions, self.tick_dt, np.array(self.seams, dtype=bool)),
            command_smoothness=smoothness(targets, self.tick_dt, np.array(self.target_seams, dtype=bool)))


def replay_bag(in_bag: str | Path, out_bag: str | Path, policy: BasePolicy, cfg: ReplayConfig | None = None
               ) -> ReplayReport:
    """Run `policy` through the runtime on the messages of `in_bag` and write the outputs to `out_bag`.

    Args:
        in_bag: a ROS 2 bag (directory, or a .db3/.mcap file).
        out_bag: the bag to create (must not exist).
        policy: any BasePolicy; its `action_spec` attribute, if any, overrides cfg.action.
        cfg: topics, rates and component configs.

    Returns:
        Counts, rejections and smoothness metrics.

    Raises:
        FileNotFoundError: no input bag.
        FileExistsError: the output bag exists.
        BagError: the input bag is corrupt, or lacks a camera, joint-state or pose topic (the message lists its image
            topics and how to map them). A truncated MCAP bag is read up to the cut, with a warning.
        ReplayError: no chunk reached the smoother (every request stale or failed); nothing is written.
    """
    cfg = cfg or ReplayConfig()
    in_bag, out_bag = Path(in_bag), Path(out_bag)
    if not in_bag.exists():
        raise FileNotFoundError(f'Bag {str(in_bag)!r} does not exist')
    if out_bag.exists():
        raise FileExistsError(f'Bag {str(out_bag)!r} already exists; bags are never overwritten')
    out_bag.parent.mkdir(parents=True, exist_ok=True)
    # The bag is written as <tmp>/<name> (rosbags names the storage file after the folder) and moved on success.
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out_bag.name}.', suffix='.partial', dir=out_bag.parent))
    try:
        with BagWriter(tmp / out_bag.name, storage=cfg.storage, distro=cfg.distro) as writer:
            replay = _Replay(policy, cfg, writer)
            try:
                hint = (f'map the cameras {list(cfg.camera.names)} to image topics with camera.topics (e.g. --set '
                        f"'camera.topics=[\"/my/camera/image_raw\"]'), or set joint_states_topic / pose_topic")
                require_topics(in_bag, replay.required_topics, hint)
                replay.run(read_messages(in_bag, replay.input_topics, make_typestore(cfg.distro)))
            finally:
                replay.runner.close()
        report = replay.report(in_bag, out_bag)
        if replay.chunks == 0:
            r = report.runner
            raise ReplayError(f'replay of {str(in_bag)!r} produced no action chunk: {r.requested} requests, '
                              f'{r.submitted} run, {r.errors} failed ({r.non_finite} non-finite), {r.stale} stale '
                              f'{r.stale_reasons}; nothing was written to {str(out_bag)!r}', report)
        (tmp / out_bag.name).rename(out_bag)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info('%s', report.summary())
    return report
