"""Write LeRobot episode datasets one episode at a time, so that a killed writer loses at most one episode.

`DatasetWriter.create` starts a v3.0 dataset by default (`maps_vla.data.writer_v3`, which documents its commit
protocol) or a v2.1 one; `open` continues either. This module holds the frame handling both share and the v2.1
storage. In image mode (video=False) the PNG frames go inside the Parquet file, one struct<bytes, path> column per
camera, as LeRobot stores them.

A v2.1 episode is built under `<root>/.tmp/episode_NNNNNN/` (frames are encoded or written as PNG as they arrive).
`save_episode` then commits it in this order:
    1. os.replace the Parquet file, mp4s / PNG folders into place (fsynced);
    2. append any new task lines to tasks.jsonl and the episode's line to episodes_stats.jsonl;
    3. append the episode's line to episodes.jsonl (one fsynced write: the commit point);
    4. atomically rewrite stats.json, then info.json (counters) last.
A crash before 3 leaves files that no committed episode names (ignored by readers, removed when a writer opens
the folder); a crash after 3 leaves stale counters that `Dataset` recomputes and `DatasetWriter.open` rewrites.
"""

from __future__ import annotations

import collections
import dataclasses
import fcntl
import json
import logging
import os
import re
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maps_vla.data import layout as _layout
from maps_vla.data import stats as _stats
from maps_vla.data.table import episode_table, read_episode_table, write_tables
from maps_vla.data.video import VideoConfig, VideoEncoder
from maps_vla.policy import TASK

__all__ = ['DatasetConfig', 'DatasetWriter']

logger = logging.getLogger(__name__)

_LOCK_FILE = '.writer.lock'
_PNG_THREADS = 4
_PNG_BACKLOG = 64  # PNG jobs in flight before add_frame waits (bounds memory when frames come faster than disk)
_EPISODE_FILE = re.compile(r'episode_(\d{6})(\.parquet|\.mp4)?$')


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Where and how a collection run writes its episodes."""

    root: str = 'datasets/demos'  # dataset folder; created by a new run, appended to with resume
    fps: int = 10  # frames per second = the env's control rate
    video: bool = True  # cameras as mp4 (True) or as lossless PNG files (False)
    video_codec: VideoConfig = dataclasses.field(default_factory=VideoConfig)  # mp4 settings when video=True
    robot_type: str = 'franka'  # info.json robot_type
    resume: bool = False  # append to an existing dataset at `root` instead of creating one
    png_compression: int = 1  # PNG zlib level 0..9: 1 writes fast, 9 about 10 % smaller
    codebase_version: str = _layout.DEFAULT_VERSION  # LeRobot format of a new dataset: 'v3.0' or 'v2.1'

    def __post_init__(self) -> None:
        if self.codebase_version not in _layout.VERSIONS:
            raise ValueError(f'DatasetConfig.codebase_version must be one of {_layout.VERSIONS}, '
                             f'got {self.codebase_version!r}')
        if self.fps <= 0:
            raise ValueError(f'DatasetConfig.fps must be > 0, got {self.fps}')
        if not 0 <= self.png_compression <= 9:
            raise ValueError(f'DatasetConfig.png_compression must be in 0..9, got {self.png_compression}')


class DatasetWriter:
    """Appends episodes to a LeRobot dataset folder; build it with `create`, `open` or `from_config` (v2.1
    datasets get this class, v3.0 ones its subclass `DatasetWriterV3`).

    Only one writer may hold a folder (an flock on `<root>/.writer.lock`, released by the kernel if the process
    dies). Use it as a context manager, or call `finalize()` at the end; an exception inside the `with` block
    discards the unsaved episode.
    """

    def __init__(self, root: Path, info: dict[str, Any], *, video_config: VideoConfig | None,
                 png_compression: int, lock_fd: int) -> None:
        self.root, self.info = root, info
        self.fps = int(info['fps'])
        self.features: dict[str, dict[str, Any]] = info['features']
        self._image_keys = _layout.image_keys(self.features)
        self._video = any(self.features[k]['dtype'] == 'video' for k in self._image_keys)
        self._frame_keys = [k for k in self.features if k not in _layout.DEFAULT_FEATURES]
        self._video_config = video_config
        self._png_params = [cv2.IMWRITE_PNG_COMPRESSION, png_compression]
        # PNG encoding and fsync release the GIL: a few threads keep up with several cameras (as LeRobot does).
        self._png_pool = None if self._video or not self._image_keys else ThreadPoolExecutor(_PNG_THREADS)
        self._png_jobs: collections.deque[Future] = collections.deque()
        self._lock_fd: int | None = lock_fd
        self._load_committed()
        self._num_frames = sum(int(ep['length']) for ep in self._episodes)
        self._reset_buffer()

    def _load_committed(self) -> None:
        """Read the committed episodes, tasks and per-episode stats (v2.1: the JSONL files)."""
        root = self.root
        self._episodes = _layout.read_jsonl(root / _layout.EPISODES_PATH)
        self._tasks = {row['task']: int(row['task_index']) for row in _layout.read_jsonl(root / _layout.TASKS_PATH)}
        rows = {int(r['episode_index']): r for r in _layout.read_jsonl(root / _layout.EPISODES_STATS_PATH)}
        self._episode_stats = [_stats.stats_from_json(rows[i]['stats']) for i in range(len(self._episodes))]

    # ----------------------------------------------------------------------------------------------- building
    @classmethod
    def create(cls, root: str | os.PathLike, fps: int, features: dict[str, dict[str, Any]], *, video: bool = True,
               robot_type: str = 'franka', video_config: VideoConfig | None = None,
               png_compression: int = 1, codebase_version: str = _layout.DEFAULT_VERSION,
               data_files_size_in_mb: int = 100, video_files_size_in_mb: int = 200) -> DatasetWriter:
        """Start a new, empty dataset at `root` (LeRobot v3.0 by default, or v2.1).

        Args:
            root: folder to create (it may exist if empty).
            fps: frames per second (integer, as LeRobot; timestamps are frame_index / fps).
            features: LeRobot features of one frame, e.g. `env.features` (see `layout.normalize_features`).
            video: cameras as mp4 (True) or PNG files inside the Parquet files (False), as LeRobot stores them.
            robot_type: stored in info.json.
            video_config: mp4 settings; default `VideoConfig()` (H.264, crf 18).
            png_compression: PNG zlib level for video=False.
            codebase_version: 'v3.0' (many episodes per file, LeRobot >= 0.4) or 'v2.1' (one file per episode,
                LeRobot <= 0.3).
            data_files_size_in_mb, video_files_size_in_mb: v3.0 only: a file is closed before it grows past this.

        Raises:
            FileExistsError: `root` exists and is not empty (use `open` to append; `--resume` on the CLI).
            ValueError: bad fps, features, version or file sizes.
        """
        root = Path(root)
        if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
            raise ValueError(f'fps must be a positive integer, got {fps!r}')
        if codebase_version not in _layout.VERSIONS:
            raise ValueError(f'codebase_version must be one of {_layout.VERSIONS}, got {codebase_version!r}')
        if min(data_files_size_in_mb, video_files_size_in_mb) <= 0:
            raise ValueError(f'file sizes must be > 0 MB, got {data_files_size_in_mb}, {video_files_size_in_mb}')
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f'{str(root)!r} exists and is not empty; append to it with DatasetWriter.open '
                                  '(--resume on the command line) or choose a new folder')
        norm = _layout.normalize_features(features, video=video)
        video_config = video_config or VideoConfig()
        for key in _layout.image_keys(norm):
            if video:
                height, width, _ = norm[key]['shape']
                video_config.check_size(height, width)
                norm[key]['info'] = video_config.feature_info(fps, height, width)
        if codebase_version == _layout.V30:
            from maps_vla.data.v3 import new_info

            klass = _writer_class(codebase_version)
            info = new_info(fps, norm, robot_type, video, data_files_size_in_mb=data_files_size_in_mb,
                            video_files_size_in_mb=video_files_size_in_mb)
            empty_files: tuple[str, ...] = ()
        else:
            klass = cls
            info = {
                'codebase_version': _layout.V21, 'robot_type': robot_type, 'total_episodes': 0,
                'total_frames': 0, 'total_tasks': 0, 'total_videos': 0, 'total_chunks': 0,
                'chunks_size': _layout.CHUNKS_SIZE, 'fps': fps, 'splits': {}, 'data_path': _layout.DATA_PATH,
                'video_path': _layout.VIDEO_PATH if video and _layout.image_keys(norm) else None,
                'features': norm,
            }
            empty_files = (_layout.EPISODES_PATH, _layout.TASKS_PATH, _layout.EPISODES_STATS_PATH)
        (root / 'meta').mkdir(parents=True, exist_ok=True)
        lock_fd = cls._lock(root)
        for name in empty_files:
            (root / name).touch()
        _layout.write_json_atomic(root / _layout.STATS_PATH, {})
        _layout.write_json_atomic(root / _layout.INFO_PATH, info)
        logger.info('created dataset %s (%s, %s, %d fps, cameras %s)', root, codebase_version,
                    'mp4' if video else 'images in parquet', fps, _layout.image_keys(norm))
        return klass(root, info, video_config=video_config if video else None, png_compression=png_compression,
                     lock_fd=lock_fd)

    @classmethod
    def open(cls, root: str | os.PathLike, *, video_config: VideoConfig | None = None,
             png_compression: int = 1) -> DatasetWriter:
        """Reopen a dataset to append episodes, repairing what a killed writer left behind.

        Removes `.tmp/`, torn last JSONL lines, files of uncommitted episodes and stats lines without an episode,
        then rewrites info.json and stats.json from episodes.jsonl if their counters disagree.

        Args:
            root: an existing dataset folder.
            video_config: mp4 settings for new episodes; default: those recorded in info.json.
            png_compression: PNG zlib level for PNG datasets.

        Raises:
            FileNotFoundError, ValueError: `root` is not a valid v2.1 dataset (see `layout.read_info`), or a
                committed episode's file is missing.
            RuntimeError: another writer holds the folder.
        """
        root = Path(root)
        info = _layout.read_info(root)
        cls = _writer_class(info['codebase_version'])
        lock_fd = cls._lock(root)
        try:
            cls._repair(root, info)
        except BaseException:
            os.close(lock_fd)
            raise
        keys = _layout.image_keys(info['features'])
        if video_config is None and keys and info['features'][keys[0]]['dtype'] == 'video':
            video_config = VideoConfig.from_feature_info(info['features'][keys[0]].get('info', {}))
        writer = cls(root, info, video_config=video_config, png_compression=png_compression, lock_fd=lock_fd)
        if writer._meta_is_stale():
            logger.warning('%s: info.json / stats.json lag behind episodes.jsonl; rewriting them', root)
            writer._write_meta()
        logger.info('opened dataset %s to append after %d episodes', root, writer.num_episodes)
        return writer

    @classmethod
    def from_config(cls, cfg: DatasetConfig, features: dict[str, dict[str, Any]]) -> DatasetWriter:
        """`open(cfg.root)` when cfg.resume, else `create(cfg.root, ...)`."""
        if cfg.resume:
            return cls.open(cfg.root, video_config=cfg.video_codec, png_compression=cfg.png_compression)
        return cls.create(cfg.root, cfg.fps, features, video=cfg.video, robot_type=cfg.robot_type,
                          video_config=cfg.video_codec, png_compression=cfg.png_compression,
                          codebase_version=cfg.codebase_version)

    @staticmethod
    def _lock(root: Path) -> int:
        fd = os.open(root / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f'another DatasetWriter is writing to {str(root)!r}') from None
        return fd

    @staticmethod
    def _repair(root: Path, info: dict[str, Any]) -> None:
        shutil.rmtree(root / _layout.TMP_DIR, ignore_errors=True)
        for name in (_layout.EPISODES_PATH, _layout.TASKS_PATH, _layout.EPISODES_STATS_PATH):
            _truncate_torn_line(root / name)
        episodes = _layout.read_jsonl(root / _layout.EPISODES_PATH)
        indices = [int(ep['episode_index']) for ep in episodes]
        if indices != list(range(len(indices))):
            raise ValueError(f'{str(root / _layout.EPISODES_PATH)!r} must list episodes 0, 1, 2, ...; got {indices}')
        stats_path = root / _layout.EPISODES_STATS_PATH
        rows = _layout.read_jsonl(stats_path)
        kept = {int(r['episode_index']): r for r in rows if int(r['episode_index']) < len(episodes)}
        if len(kept) != len(episodes):
            missing = sorted(set(range(len(episodes))) - set(kept))
            raise ValueError(f'{str(stats_path)!r} has no stats for episode(s) {missing}')
        if len(rows) != len(kept):
            tmp = stats_path.with_name(f'.{stats_path.name}.tmp')
            tmp.unlink(missing_ok=True)
            _layout.append_jsonl(tmp, [kept[i] for i in range(len(episodes))])
            os.replace(tmp, stats_path)
            _layout.fsync_dir(stats_path.parent)
        for folder in ('data', 'videos', 'images'):
            for path in sorted((root / folder).rglob('episode_*')) if (root / folder).is_dir() else []:
                match = _EPISODE_FILE.search(path.name)
                if match and int(match.group(1)) >= len(episodes) and path.exists():
                    logger.warning('removing %s of an episode that was never committed', path)
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
        for i in range(len(episodes)):
            for name in _layout.episode_files(info, i):
                if not (root / name).exists():
                    raise FileNotFoundError(f'episode {i} is committed but {str(root / name)!r} is missing')

    # ------------------------------------------------------------------------------------------------ state
    @property
    def num_episodes(self) -> int:
        """Committed episodes."""
        return len(self._episodes)

    @property
    def num_frames(self) -> int:
        """Frames of the committed episodes."""
        return self._num_frames

    @property
    def frame_keys(self) -> list[str]:
        """Keys `add_frame` expects (every feature but the defaults the writer fills in)."""
        return list(self._frame_keys)

    @property
    def episode_frames(self) -> int:
        """Frames added to the episode in progress."""
        return len(self._ep_tasks)

    def _reset_buffer(self) -> None:
        self._ep_dir: Path | None = None
        self._ep_columns: dict[str, list[np.ndarray]] = {k: [] for k in self._frame_keys if k not in self._image_keys}
        self._ep_tasks: list[str] = []
        self._ep_hist = {k: np.zeros((3, 256), dtype=np.int64) for k in self._image_keys}
        self._encoders: dict[str, VideoEncoder] = {}

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError(f'the DatasetWriter for {str(self.root)!r} is finalized; use DatasetWriter.open')

    # ------------------------------------------------------------------------------------------------ frames
    def add_frame(self, frame: dict[str, Any], task: str | None = None) -> None:
        """Add one frame to the episode in progress.

        Args:
            frame: one value per feature: cameras uint8 (H, W, 3) RGB, numeric features arrays of their shape
                (a scalar for shape (1,)). A 'task' entry is allowed and used when `task` is None.
            task: the language instruction of this frame.

        Raises:
            ValueError: a feature is missing, unknown, of the wrong shape or not finite, or no task is given.
            TypeError: a camera frame is not uint8 or the task is not a string.
            RuntimeError: the writer is finalized.
        """
        self._check_open()
        task = frame.get(TASK) if task is None else task
        if not isinstance(task, str) or not task:
            raise TypeError(f'task must be a non-empty string (argument or frame["task"]), got {task!r}')
        given, expected = set(frame) - {TASK}, set(self._frame_keys)
        if given != expected:
            raise ValueError(f'frame keys {sorted(given)} differ from the features: missing '
                             f'{sorted(expected - given)}, unknown {sorted(given - expected)}')
        values = {}
        for key in self._frame_keys:
            ft, value = self.features[key], np.asarray(frame[key])
            shape = tuple(ft['shape'])
            if key in self._image_keys:
                if value.dtype != np.uint8:
                    raise TypeError(f'camera frame {key!r} must be uint8 RGB, got {value.dtype}')
                if value.shape != shape:
                    raise ValueError(f'camera frame {key!r} must have shape {shape}, got {value.shape}')
            else:
                value = value.reshape(1) if value.shape == () and shape == (1,) else value
                if value.shape != shape:
                    raise ValueError(f'feature {key!r} must have shape {shape}, got {value.shape}')
                if value.dtype.kind == 'f' and not np.isfinite(value).all():
                    raise ValueError(f'feature {key!r} has non-finite values: {value}')
                value = value.astype(ft['dtype'])
            values[key] = value
        if self._ep_dir is None:
            self._start_episode()
        frame_index = self.episode_frames
        for key, value in values.items():
            if key in self._image_keys:
                self._ep_hist[key] += _stats.image_histogram(value)
                if self._video:
                    self._encoders[key].add(value)
                else:
                    path = self._ep_dir / 'images' / key / f'frame_{frame_index:06d}.png'
                    bgr = np.ascontiguousarray(value[..., ::-1])  # a copy: the caller may reuse its buffer
                    self._png_jobs.append(self._png_pool.submit(_write_png, path, bgr, self._png_params,
                                                                _layout.png_folders(self.info)))
                    if len(self._png_jobs) > _PNG_BACKLOG:
                        self._png_jobs.popleft().result()
            else:
                self._ep_columns[key].append(value)
        self._ep_tasks.append(task)

    def _start_episode(self) -> None:
        ep_dir = self.root / _layout.TMP_DIR / f'episode_{self.num_episodes:06d}'
        shutil.rmtree(ep_dir, ignore_errors=True)
        ep_dir.mkdir(parents=True)
        try:
            for key in self._image_keys:
                if self._video:
                    height, width, _ = self.features[key]['shape']
                    self._encoders[key] = VideoEncoder(ep_dir / f'{key}.mp4', self.fps, height, width,
                                                       self._video_config or VideoConfig())
                else:
                    (ep_dir / 'images' / key).mkdir(parents=True)
        except BaseException:
            for encoder in self._encoders.values():
                encoder.close()
            self._encoders.clear()
            shutil.rmtree(ep_dir, ignore_errors=True)
            raise
        self._ep_dir = ep_dir

    def _wait_png_jobs(self) -> None:
        """Block until every PNG of the episode is written and fsynced; re-raise the first failure."""
        jobs, self._png_jobs = self._png_jobs, collections.deque()
        errors = [job.exception() for job in jobs]
        if any(errors):
            raise next(e for e in errors if e is not None)

    def discard_episode(self) -> None:
        """Drop the episode in progress (its frames and files)."""
        try:
            self._wait_png_jobs()
        except Exception as err:  # the episode is dropped anyway
            logger.debug('ignoring a PNG write error of a discarded episode: %s', err)
        for encoder in self._encoders.values():
            encoder.close()
        if self._ep_dir is not None:
            shutil.rmtree(self._ep_dir, ignore_errors=True)
        self._reset_buffer()

    def _finish_episode(self) -> tuple[int, int, list[dict[str, Any]], dict[str, np.ndarray], dict[str, Any]]:
        """Close the encoders / PNG writes of the episode in progress and build its columns and stats.

        Returns:
            (episode index, length, new task rows, numeric columns, per-episode stats in schema order).
        """
        self._check_open()
        length = self.episode_frames
        if length == 0:
            raise RuntimeError('save_episode() needs at least one add_frame() since the last save or discard')
        index = self.num_episodes
        new_tasks = []
        for task in dict.fromkeys(self._ep_tasks):
            if task not in self._tasks:
                self._tasks[task] = len(self._tasks)
                new_tasks.append({'task_index': self._tasks[task], 'task': task})
        frames = np.arange(length)
        columns = {key: np.stack(v) for key, v in self._ep_columns.items()}
        columns.update({
            'timestamp': (frames / self.fps).astype(np.float32)[:, None],
            'frame_index': frames[:, None], 'episode_index': np.full((length, 1), index),
            'index': (self._num_frames + frames)[:, None],
            'task_index': np.array([self._tasks[t] for t in self._ep_tasks])[:, None],
        })
        numeric = _layout.numeric_features(self.features)
        ep_stats = {k: _stats.numeric_stats(columns[k]) for k in numeric}
        ep_stats.update({k: _stats.histogram_stats(self._ep_hist[k], length) for k in self._image_keys})
        ep_stats = {k: ep_stats[k] for k in self.features}  # schema order

        for key, encoder in self._encoders.items():
            encoder.close()
            if encoder.frames != length:
                raise RuntimeError(f'{key!r} encoded {encoder.frames} frames for an episode of {length}')
            _fsync_file(encoder.path)
        self._wait_png_jobs()
        return index, length, new_tasks, columns, ep_stats

    def _episode_table(self, columns: dict[str, np.ndarray], length: int) -> Any:
        """The episode's Parquet table: numeric columns, and the PNG files of image cameras (image mode; a dataset
        of maps_vla's old PNG-folder layout keeps it for new episodes)."""
        inside = not self._video and not _layout.png_folders(self.info)
        images = {key: [(self._ep_dir / 'images' / key / f'frame_{i:06d}.png').read_bytes() for i in range(length)]
                  for key in self._image_keys if inside}
        stored = {k: ft for k, ft in self.features.items() if ft['dtype'] == 'image' and inside
                  or ft['dtype'] not in ('image', 'video')}
        return episode_table(columns, stored, images, [f'frame-{i:06d}.png' for i in range(length)])

    def save_episode(self) -> int:
        """Commit the episode in progress (see the module docstring for the order of writes).

        Returns:
            The new episode's index.

        Raises:
            RuntimeError: no frame was added, or the writer is finalized.
        """
        index, length, new_tasks, columns, ep_stats = self._finish_episode()
        write_tables(self._ep_dir / 'data.parquet', [self._episode_table(columns, length)])
        moves = [(self._ep_dir / 'data.parquet', self.root / _layout.episode_file(self.info, index))]
        for key in self._image_keys:
            if self._video:
                moves.append((self._ep_dir / f'{key}.mp4', self.root / _layout.episode_file(self.info, index, key)))
            elif _layout.png_folders(self.info):
                moves.append((self._ep_dir / 'images' / key, self.root / _layout.image_dir(key, index)))
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_dir():
                shutil.rmtree(dst)
            os.replace(src, dst)
            _layout.fsync_dir(dst.parent)
        logger.debug('save_episode %d: %s', index, 'files_moved')

        if new_tasks:
            _layout.append_jsonl(self.root / _layout.TASKS_PATH, new_tasks)
        _layout.append_jsonl(self.root / _layout.EPISODES_STATS_PATH,
                             [{'episode_index': index, 'stats': _stats.stats_to_json(ep_stats)}])
        logger.debug('save_episode %d: %s', index, 'stats_appended')
        episode = {'episode_index': index, 'tasks': list(dict.fromkeys(self._ep_tasks)), 'length': length}
        _layout.append_jsonl(self.root / _layout.EPISODES_PATH, [episode])
        logger.debug('save_episode %d: %s', index, 'committed')

        self._episodes.append(episode)
        self._episode_stats.append(ep_stats)
        self._num_frames += length
        self._write_meta()
        logger.debug('save_episode %d: %s', index, 'info_written')
        shutil.rmtree(self._ep_dir, ignore_errors=True)
        self._reset_buffer()
        logger.info('saved episode %d (%d frames) to %s', index, length, self.root)
        return index

    def _meta_is_stale(self) -> bool:
        totals = (self.info['total_episodes'], self.info['total_frames'], self.info['total_tasks'])
        if totals != (self.num_episodes, self.num_frames, len(self._tasks)):
            return True
        path = self.root / _layout.STATS_PATH
        stats = json.loads(path.read_text()) if path.is_file() else {}
        counts = {tuple(ft.get('count', ())) for ft in stats.values()}
        return counts != ({(self.num_frames,)} if self.num_episodes else set())

    def _write_meta(self, stats: dict[str, dict[str, np.ndarray]] | None = None) -> None:
        """stats.json, then info.json with counters from the committed episodes."""
        stats = stats if stats is not None else _stats.aggregate_stats(self._episode_stats)
        _layout.write_json_atomic(self.root / _layout.STATS_PATH, _stats.stats_to_json(stats))
        n = self.num_episodes
        n_videos = len(self._image_keys) if self._video else 0
        self.info.update(total_episodes=n, total_frames=self._num_frames, total_tasks=len(self._tasks),
                         total_videos=n * n_videos, total_chunks=-(-n // int(self.info['chunks_size'])),
                         splits={'train': f'0:{n}'} if n else {})
        _layout.write_json_atomic(self.root / _layout.INFO_PATH, self.info)

    def move(self, root: str | os.PathLike) -> None:
        """Rename the dataset folder to `root` between episodes (e.g. from a temporary path once it holds an
        episode, so that a run that saves nothing leaves nothing behind).

        Raises:
            RuntimeError: an episode is in progress or the writer is finalized.
            FileExistsError: `root` exists and is not empty.
        """
        self._check_open()
        if self.episode_frames:
            raise RuntimeError('move() between episodes only; save or discard the episode in progress first')
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f'{str(root)!r} exists and is not empty')
        root.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.root, root)
        _layout.fsync_dir(root.parent)
        logger.info('moved dataset %s to %s', self.root, root)
        self.root = root

    # ----------------------------------------------------------------------------------------------- closing
    def finalize(self) -> None:
        """Write stats.json with exact quantiles of the numeric features over all frames, and release the folder.

        Raises:
            RuntimeError: an episode is in progress (save or discard it first).
        """
        if self._lock_fd is None:
            return
        if self.episode_frames:
            raise RuntimeError(f'finalize() with {self.episode_frames} unsaved frames; call save_episode() or '
                               'discard_episode() first')
        stats = _stats.aggregate_stats(self._episode_stats)
        numeric = _layout.numeric_features(self.features)
        if self._episodes:
            tables = self._numeric_tables()
            stats.update({k: _stats.numeric_stats(np.concatenate([t[k] for t in tables])) for k in numeric})
        self._write_meta({k: stats[k] for k in self.features} if stats else stats)
        shutil.rmtree(self.root / _layout.TMP_DIR, ignore_errors=True)
        if self._png_pool is not None:
            self._png_pool.shutdown()
        os.close(self._lock_fd)
        self._lock_fd = None
        logger.info('finalized %s: %d episodes, %d frames', self.root, self.num_episodes, self.num_frames)

    def _numeric_tables(self) -> list[dict[str, np.ndarray]]:
        """The numeric columns of every committed episode's (or data file's) frames."""
        numeric = _layout.numeric_features(self.features)
        return [read_episode_table(self.root / _layout.episode_file(self.info, i), numeric)
                for i in range(self.num_episodes)]

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard_episode()
        self.finalize()


def _writer_class(version: str) -> type[DatasetWriter]:
    if version == _layout.V30:
        from maps_vla.data.writer_v3 import DatasetWriterV3

        return DatasetWriterV3
    return DatasetWriter


def _write_png(path: Path, bgr: np.ndarray, params: list[int], fsync: bool) -> None:
    """Write one PNG; fsync it only when the file itself is kept (PNGs bound for a Parquet file are read back
    before the episode's commit, which fsyncs the Parquet file)."""
    if not cv2.imwrite(str(path), bgr, params):
        raise RuntimeError(f'could not write {str(path)!r}')
    if fsync:
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    with open(path, 'rb') as f:
        os.fsync(f.fileno())


def _truncate_torn_line(path: Path) -> None:
    """Cut a last line that has no newline (an append cut short), so the next append starts a fresh line."""
    if not path.is_file():
        path.touch()
        return
    data = path.read_bytes()
    if data and not data.endswith(b'\n'):
        logger.warning('%s: removing the torn last line %r', path, data[data.rfind(b'\n') + 1:][:80])
        with open(path, 'r+b') as f:
            f.truncate(data.rfind(b'\n') + 1)
            os.fsync(f.fileno())
