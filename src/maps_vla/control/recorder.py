"""Episodes from live streams: camera frames, joint states / EE pose and commanded actions, aligned to the dataset fps.

The recorder keeps the newest value of every input (sample and hold) and, at each `tick(now)` of a clock running
at `fps`, writes one LeRobot frame from them: images resized to the dataset resolution, `observation.state` from a
`ProprioAssembler`, and `action` = the command in force at `now` (the action taken from that observation). A tick
at which an input is missing or older than `max_age` writes nothing and is counted by reason, so a stalled camera
never fills an episode with frozen frames. The same class serves the recorder node (wall or sim clock) and
`maps-vla bag2episodes` (the bag's clock).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from maps_vla.control.camera import preprocess_frame
from maps_vla.control.proprio import ProprioAssembler, StateConfig
from maps_vla.data.dataset import ACTION
from maps_vla.data.writer import DatasetWriter
from maps_vla.policy import EE_DELTA_ACTION, OBS_IMAGE_PREFIX, OBS_STATE

__all__ = ['RecorderConfig', 'EpisodeRecorder', 'recorder_features']

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RecorderConfig:
    """What the recorder writes and when a tick is fresh enough to become a frame."""

    root: str = 'datasets/teleop'  # dataset folder: created at the first episode, appended to when it exists
    fps: int = 10  # frames per second; the recorder samples its inputs at this rate
    cameras: tuple[str, ...] = ('third_person',)  # camera names; features 'observation.images.<name>'
    image_width: int = 224  # stored frame width in pixels
    image_height: int = 224  # stored frame height in pixels
    center_crop: bool = True  # crop to the width:height aspect before resizing (False: stretch)
    action_names: tuple[str, ...] = EE_DELTA_ACTION.names  # one name per action dimension
    max_age: float = 0.3  # s; a tick whose newest image, state or action is older than this is skipped
    instruction: str = ''  # task of the frames until an instruction arrives
    video: bool = True  # cameras as mp4 (True) or PNG files inside the Parquet files (False)
    codebase_version: str = 'v3.0'  # LeRobot format of a new dataset: 'v3.0' (LeRobot >= 0.4) or 'v2.1'
    robot_type: str = 'franka'  # info.json robot_type of a new dataset
    min_frames: int = 2  # an episode with fewer frames is discarded at stop

    def __post_init__(self) -> None:
        if isinstance(self.fps, bool) or not isinstance(self.fps, int) or self.fps <= 0:
            raise ValueError(f'RecorderConfig.fps must be a positive integer, got {self.fps!r}')
        if len(set(self.cameras)) != len(self.cameras) or not all(self.cameras):
            raise ValueError(f'RecorderConfig.cameras must be distinct non-empty names, got {list(self.cameras)}')
        if self.image_width <= 0 or self.image_height <= 0:
            raise ValueError(f'RecorderConfig image size must be > 0, got {self.image_width}x{self.image_height}')
        if not self.action_names:
            raise ValueError('RecorderConfig.action_names must name at least one action dimension')
        if not (self.max_age > 0 and math.isfinite(self.max_age)):
            raise ValueError(f'RecorderConfig.max_age must be a finite number > 0, got {self.max_age}')
        if self.min_frames < 1:
            raise ValueError(f'RecorderConfig.min_frames must be >= 1, got {self.min_frames}')
        if not self.root:
            raise ValueError('RecorderConfig.root must name a dataset folder')
        if self.codebase_version not in ('v3.0', 'v2.1'):
            raise ValueError(f"RecorderConfig.codebase_version must be 'v3.0' or 'v2.1', got {self.codebase_version!r}")


def recorder_features(cfg: RecorderConfig, state: StateConfig) -> dict[str, dict[str, Any]]:
    """The LeRobot features of the frames the recorder writes."""
    feats: dict[str, dict[str, Any]] = {
        OBS_IMAGE_PREFIX + c: {'dtype': 'video' if cfg.video else 'image',
                               'shape': (cfg.image_height, cfg.image_width, 3),
                               'names': ('height', 'width', 'channels')} for c in cfg.cameras}
    feats[OBS_STATE] = {'dtype': 'float32', 'shape': (state.dim,), 'names': state.names}
    feats[ACTION] = {'dtype': 'float32', 'shape': (len(cfg.action_names),), 'names': cfg.action_names}
    return feats


class EpisodeRecorder:
    """Aligns live inputs into frames and writes episodes (thread-safe; see the module docstring).

    Args:
        cfg: dataset, fps and freshness.
        state: the observation.state layout.
        writer: an open DatasetWriter to use (tests); by default one is created or opened at `cfg.root` on the
            first `start()`.
    """

    def __init__(self, cfg: RecorderConfig | None = None, state: StateConfig | None = None,
                 writer: DatasetWriter | None = None) -> None:
        self.cfg = cfg or RecorderConfig()
        self.proprio = ProprioAssembler(state)
        self.features = recorder_features(self.cfg, self.proprio.cfg)
        self._writer = writer
        if writer is not None:
            self._check_features(writer)
        self._lock = threading.RLock()
        self._images: dict[str, tuple[np.ndarray, float]] = {}
        self._action: tuple[np.ndarray, float] | None = None
        self._instruction = self.cfg.instruction
        self._recording = False
        self._frames = 0
        self.skipped: collections.Counter[str] = collections.Counter()  # reason -> ticks skipped while recording
        self.saved: list[int] = []  # episode indices saved by this recorder

    # ----------------------------------------------------------------------------------------------- inputs
    def on_image(self, camera: str, frame: np.ndarray, stamp: float) -> None:
        """An RGB uint8 frame (H, W, 3) of `camera` taken at `stamp` s; frames of other cameras are ignored."""
        if camera not in self.cfg.cameras:
            return
        image = preprocess_frame(frame, self.cfg.image_width, self.cfg.image_height, self.cfg.center_crop)
        with self._lock:
            self._images[camera] = (image, float(stamp))

    def on_joint_state(self, names: Any, positions: np.ndarray, stamp: float) -> None:
        """Joint positions (any subset of joints, by name)."""
        self.proprio.on_joint_state(names, positions, stamp)

    def on_pose(self, position: np.ndarray, quaternion: np.ndarray, stamp: float) -> None:
        """The measured TCP pose (base frame; quaternion x, y, z, w)."""
        self.proprio.on_pose(position, quaternion, stamp)

    def on_action(self, action: np.ndarray, stamp: float) -> None:
        """The command in force from `stamp` on, (len(action_names),).

        Raises:
            ValueError: wrong length or non-finite values.
        """
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if action.size != len(self.cfg.action_names) or not np.all(np.isfinite(action)):
            raise ValueError(f'an action needs {len(self.cfg.action_names)} finite values '
                             f'({list(self.cfg.action_names)}), got {action.tolist()}')
        with self._lock:
            self._action = (action, float(stamp))

    def set_instruction(self, text: str) -> None:
        """The task of the frames from now on ('' keeps the previous one)."""
        if text:
            with self._lock:
                self._instruction = str(text)

    # ---------------------------------------------------------------------------------------------- episodes
    @property
    def recording(self) -> bool:
        return self._recording

    @property
    def frames(self) -> int:
        """Frames in the episode being recorded."""
        return self._frames

    def _check_features(self, writer: DatasetWriter) -> None:
        def schema(features: dict[str, dict[str, Any]], keys: Any) -> dict[str, tuple[str, tuple[int, ...]]]:
            # mp4 and PNG datasets hold the same frames: compare cameras by shape only
            return {k: ('image' if k.startswith(OBS_IMAGE_PREFIX) else str(features[k]['dtype']),
                        tuple(int(s) for s in features[k]['shape'])) for k in keys}

        ours, theirs = schema(self.features, self.features), schema(writer.features, writer.frame_keys)
        if ours != theirs:
            raise ValueError(f'dataset {str(writer.root)!r} has features {theirs}, the recorder writes {ours}; '
                             'record into another root')

    def _open_writer(self) -> DatasetWriter:
        root = Path(self.cfg.root)
        if (root / 'meta' / 'info.json').is_file():
            writer = DatasetWriter.open(root)
            try:
                self._check_features(writer)
            except ValueError:
                writer.finalize()
                raise
            return writer
        return DatasetWriter.create(root, self.cfg.fps, self.features, video=self.cfg.video,
                                    robot_type=self.cfg.robot_type, codebase_version=self.cfg.codebase_version)

    def start(self) -> None:
        """Begin an episode (the dataset is created or opened on the first call).

        Raises:
            RuntimeError: already recording.
            ValueError: an existing dataset at root has other features.
        """
        with self._lock:
            if self._recording:
                raise RuntimeError('already recording an episode; stop or discard it first')
            if self._writer is None:
                self._writer = self._open_writer()
            self._recording, self._frames = True, 0
            self.skipped.clear()
            logger.info('recording episode %d into %s', self._writer.num_episodes, self._writer.root)

    def _staleness(self, now: float) -> str | None:
        limit = self.cfg.max_age
        for camera in self.cfg.cameras:
            if camera not in self._images:
                return f'no image from {camera}'
            if now - self._images[camera][1] > limit:
                return f'image {camera} older than {limit:g}s'
        missing = self.proprio.missing()
        if missing:
            return f'no state ({", ".join(missing)})'
        if self._action is None:
            return 'no action'
        if now - self._action[1] > limit:
            return f'action older than {limit:g}s'
        if not self._instruction:
            return 'no instruction'
        return None

    def tick(self, now: float) -> bool:
        """Write one frame from the inputs in force at `now` (s) if recording and fresh; True when written."""
        with self._lock:
            if not self._recording:
                return False
            reason = self._staleness(now)
            state = self.proprio.state()
            if reason is None and now - state[1] > self.cfg.max_age:
                reason = f'state older than {self.cfg.max_age:g}s'
            if reason is not None:
                if not self.skipped:
                    logger.warning('recorder skipped a tick at %.3f: %s (further skips are counted)', now, reason)
                self.skipped[reason] += 1
                return False
            frame = {OBS_IMAGE_PREFIX + c: self._images[c][0] for c in self.cfg.cameras}
            frame[OBS_STATE] = state[0]
            frame[ACTION] = self._action[0]
            self._writer.add_frame(frame, task=self._instruction)
            self._frames += 1
            return True

    def stop(self) -> int | None:
        """End the episode: saved when it has `min_frames` frames (returns its index), else discarded (None).

        Raises:
            RuntimeError: not recording.
        """
        with self._lock:
            if not self._recording:
                raise RuntimeError('not recording; start an episode first')
            self._recording = False
            if self._frames < self.cfg.min_frames:
                logger.warning('episode has %d frames (< min_frames %d); discarded; skipped ticks: %s',
                               self._frames, self.cfg.min_frames, dict(self.skipped))
                self._writer.discard_episode()
                return None
            index = self._writer.save_episode()
            self.saved.append(index)
            if self.skipped:
                logger.info('episode %d: %d frames, skipped ticks %s', index, self._frames, dict(self.skipped))
            return index

    def discard(self) -> None:
        """Drop the episode being recorded (nothing happens when not recording)."""
        with self._lock:
            if self._recording:
                self._recording = False
                self._writer.discard_episode()
                logger.info('discarded the episode in progress (%d frames)', self._frames)

    def close(self) -> None:
        """Discard an unfinished episode and finalize the dataset (exact stats, lock released)."""
        with self._lock:
            self.discard()
            if self._writer is not None:
                self._writer.finalize()
                self._writer = None

    def __enter__(self) -> EpisodeRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
