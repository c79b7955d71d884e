"""Read LeRobot v2.1 episode datasets written by `DatasetWriter` (or by LeRobot <= 0.3 in video mode).

Torch-free: `Dataset.sample(index, chunk_size)` gives what a VLA trains on (observation at frame t, instruction,
and the actions t .. t + chunk_size - 1 with a validity mask); `maps_vla.data.torch_dataset` wraps it for
`torch.utils.data.DataLoader`. episodes.jsonl is the source of truth: files of uncommitted episodes are ignored and
stale info.json counters (a writer killed between its last two writes) are recomputed.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maps_vla.data import layout as _layout
from maps_vla.data import stats as _stats
from maps_vla.data.table import read_episode_table
from maps_vla.data.video import read_video, read_video_frames
from maps_vla.policy import TASK

__all__ = ['Dataset', 'EpisodeInfo', 'ACTION', 'ACTION_MASK']

logger = logging.getLogger(__name__)

ACTION = 'action'
ACTION_MASK = 'action_mask'  # bool (chunk,): True for a real action, False for padding past the episode end
_CACHED_EPISODES = 4


@dataclasses.dataclass(frozen=True)
class EpisodeInfo:
    """One line of episodes.jsonl plus its place among all frames."""

    episode_index: int  # position in the dataset
    tasks: tuple[str, ...]  # instructions used in the episode, in order of first use
    length: int  # frames
    from_index: int  # global index of its first frame
    to_index: int  # global index one past its last frame


class Dataset:
    """A LeRobot v2.1 dataset folder, read-only.

    Args:
        root: the dataset folder.

    Raises:
        FileNotFoundError: `root` has no meta/info.json, or a committed episode's Parquet / mp4 file is missing.
        ValueError: info.json is invalid or of another codebase_version, or a metadata file is malformed.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.info = _layout.read_info(self.root)
        self.fps = int(self.info['fps'])
        self.features: dict[str, dict[str, Any]] = self.info['features']
        self.image_keys = _layout.image_keys(self.features)
        self._numeric = _layout.numeric_features(self.features)
        rows = _layout.read_jsonl(self.root / _layout.EPISODES_PATH)
        episodes, start = [], 0
        for i, row in enumerate(rows):
            if int(row.get('episode_index', -1)) != i or int(row.get('length', 0)) < 1:
                raise ValueError(f'{str(self.root / _layout.EPISODES_PATH)!r} line {i + 1} is not episode {i} '
                                 f'with a positive length: {row!r}')
            episodes.append(EpisodeInfo(i, tuple(row.get('tasks', ())), int(row['length']), start,
                                        start + int(row['length'])))
            start += int(row['length'])
        self.episodes: list[EpisodeInfo] = episodes
        self._starts = [ep.from_index for ep in episodes]
        task_rows = _layout.read_jsonl(self.root / _layout.TASKS_PATH)
        by_index = {int(r['task_index']): r['task'] for r in task_rows}
        self.tasks: list[str] = [by_index[i] for i in sorted(by_index)]
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(f'{str(self.root / _layout.TASKS_PATH)!r} must number tasks 0, 1, 2, ...; '
                             f'got {sorted(by_index)}')
        if (self.info['total_episodes'], self.info['total_frames']) != (len(episodes), start):
            logger.warning('%s: info.json counts %d episodes / %d frames but episodes.jsonl has %d / %d; using the '
                           'latter (a writer stopped before updating info.json)', self.root,
                           self.info['total_episodes'], self.info['total_frames'], len(episodes), start)
        for ep in episodes:
            for path in (self.root / name for name in _layout.episode_files(self.info, ep.episode_index)):
                if not path.exists():
                    raise FileNotFoundError(f'episode {ep.episode_index} is listed in {_layout.EPISODES_PATH} but '
                                            f'{str(path)!r} does not exist')
        self._cache: collections.OrderedDict[int, dict[str, np.ndarray]] = collections.OrderedDict()
        self._stats: dict[str, dict[str, np.ndarray]] | None = None

    # ---------------------------------------------------------------------------------------------- metadata
    def __len__(self) -> int:
        """Number of frames."""
        return self.episodes[-1].to_index if self.episodes else 0

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """meta/stats.json: feature -> stat -> array ((d,) numeric, (3, 1, 1) cameras)."""
        if self._stats is None:
            path = self.root / _layout.STATS_PATH
            data = json.loads(path.read_text()) if path.is_file() else {}
            stats = _stats.stats_from_json(data)
            if not stats or int(next(iter(stats.values()))['count'][0]) != len(self):
                # stats.json is rewritten after each episode; when it lags, pool the per-episode lines instead.
                stats = _stats.aggregate_stats(self.episode_stats())
            self._stats = stats
        return self._stats

    def episode_stats(self) -> list[dict[str, dict[str, np.ndarray]]]:
        """Per-episode stats from episodes_stats.jsonl, in episode order."""
        path = self.root / _layout.EPISODES_STATS_PATH
        rows = {int(r['episode_index']): r['stats'] for r in _layout.read_jsonl(path)}
        missing = [i for i in range(self.num_episodes) if i not in rows]
        if missing:
            raise ValueError(f'{str(path)!r} has no stats for episode(s) {missing}')
        return [_stats.stats_from_json(rows[i]) for i in range(self.num_episodes)]

    # ------------------------------------------------------------------------------------------------ frames
    def _numeric_columns(self, episode_index: int) -> dict[str, np.ndarray]:
        if episode_index in self._cache:
            self._cache.move_to_end(episode_index)
            return self._cache[episode_index]
        path = self.root / _layout.episode_file(self.info, episode_index)
        columns = read_episode_table(path, self._numeric)
        length = self.episodes[episode_index].length
        if len(columns['frame_index']) != length:
            raise ValueError(f'{str(path)!r} has {len(columns["frame_index"])} rows; episodes.jsonl says {length}')
        self._cache[episode_index] = columns
        if len(self._cache) > _CACHED_EPISODES:
            self._cache.popitem(last=False)
        return columns

    def _images(self, key: str, episode_index: int, frames: list[int] | None) -> np.ndarray:
        """uint8 (n, H, W, 3) frames of one camera (all when `frames` is None)."""
        length = self.episodes[episode_index].length
        if self.features[key]['dtype'] == 'video':
            path = self.root / _layout.episode_file(self.info, episode_index, key)
            images = read_video(path, self.fps) if frames is None else read_video_frames(path, self.fps, frames)
            if frames is None and len(images) != length:
                raise ValueError(f'{str(path)!r} has {len(images)} frames; episodes.jsonl says {length}')
            return images
        out = []
        for i in range(length) if frames is None else frames:
            path = self.root / _layout.image_file(key, episode_index, i)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f'image {str(path)!r} does not exist or is not readable')
            out.append(image[..., ::-1])
        return np.stack(out)

    def get_episode(self, episode_index: int) -> dict[str, Any]:
        """All frames of one episode.

        Returns:
            feature -> (T, ...) array (cameras uint8 (T, H, W, 3), numeric (T, d)), and 'task': list of T strings.

        Raises:
            IndexError: no such episode.
        """
        if not 0 <= episode_index < self.num_episodes:
            raise IndexError(f'episode {episode_index} is out of range 0..{self.num_episodes - 1}')
        out: dict[str, Any] = {k: v.copy() for k, v in self._numeric_columns(episode_index).items()}
        for key in self.image_keys:
            out[key] = self._images(key, episode_index, None)
        out[TASK] = [self.tasks[int(t)] for t in out['task_index'][:, 0]]
        return out

    def locate(self, index: int) -> tuple[int, int]:
        """(episode_index, frame_index) of global frame `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f'frame {index} is out of range 0..{len(self) - 1}')
        episode = bisect.bisect_right(self._starts, index) - 1
        return episode, index - self._starts[episode]

    def sample(self, index: int, chunk_size: int = 1) -> dict[str, Any]:
        """One training example: the observation at frame `index` and the next `chunk_size` actions.

        Args:
            index: global frame index in [0, len(self)).
            chunk_size: actions per example; those past the episode end repeat its last action.

        Returns:
            cameras: uint8 (H, W, 3); every numeric feature but 'action': its (d,) value at the frame (a (1,) one
            for shape-(1,) features such as 'timestamp'); 'task': str; 'action': (chunk_size, action_dim);
            'action_mask': bool (chunk_size,), False where the action is padding.

        Raises:
            IndexError: `index` is out of range.
            ValueError: chunk_size < 1 or the dataset has no 'action' feature.
        """
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        if ACTION not in self._numeric:
            raise ValueError(f'{str(self.root)!r} has no {ACTION!r} feature (features: {list(self.features)})')
        episode_index, frame = self.locate(index)
        columns = self._numeric_columns(episode_index)
        out: dict[str, Any] = {k: v[frame].copy() for k, v in columns.items() if k != ACTION}
        for key in self.image_keys:
            out[key] = self._images(key, episode_index, [frame])[0]
        out[TASK] = self.tasks[int(columns['task_index'][frame, 0])]
        steps = frame + np.arange(chunk_size)
        length = self.episodes[episode_index].length
        out[ACTION] = columns[ACTION][np.minimum(steps, length - 1)].copy()
        out[ACTION_MASK] = steps < length
        return out
