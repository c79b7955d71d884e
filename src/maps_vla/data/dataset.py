"""Read LeRobot v2.1 and v3.0 datasets written by `DatasetWriter` or by LeRobot (<= 0.3 for v2.1, >= 0.4 for v3.0).

Torch-free: `Dataset.sample(index, chunk_size)` gives what a VLA trains on (observation at frame t, instruction,
and the actions t .. t + chunk_size - 1 with a validity mask); `maps_vla.data.torch_dataset` wraps it for
`torch.utils.data.DataLoader`. The episode metadata (episodes.jsonl, meta/episodes/) is the source of truth: files
or rows of uncommitted episodes are ignored and stale info.json counters (a writer killed between its last two
writes) are recomputed.
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
import pyarrow.parquet as pq

from maps_vla.data import layout as _layout
from maps_vla.data import stats as _stats
from maps_vla.data import v3 as _v3
from maps_vla.data.table import table_columns
from maps_vla.data.video import VideoReader
from maps_vla.policy import TASK

__all__ = ['Dataset', 'EpisodeInfo', 'ACTION', 'ACTION_MASK']

logger = logging.getLogger(__name__)

ACTION = 'action'
ACTION_MASK = 'action_mask'  # bool (chunk,): True for a real action, False for padding past the episode end
_CACHED_FILES = 64  # data files whose columns are kept (memory-mapped)
_OPEN_VIDEOS = 64  # mp4 decoders kept open per process


@dataclasses.dataclass(frozen=True)
class EpisodeInfo:
    """One line of episodes.jsonl plus its place among all frames."""

    episode_index: int  # position in the dataset
    tasks: tuple[str, ...]  # instructions used in the episode, in order of first use
    length: int  # frames
    from_index: int  # global index of its first frame
    to_index: int  # global index one past its last frame


class Dataset:
    """A LeRobot dataset folder (codebase v2.1 or v3.0), read-only.

    Cameras may be mp4 files (one per episode in v2.1, many episodes per file in v3.0, found by their
    `from_timestamp`), PNG files inside the Parquet files (LeRobot's image mode), or PNG folders (maps_vla's image
    mode before v3.0). Video decoders stay open between samples (`VideoReader`, one set per process), so reading
    frames in order, as `EpisodeOrderSampler` does, decodes each frame about once.

    Args:
        root: the dataset folder.

    Raises:
        FileNotFoundError: `root` has no meta/info.json, or a committed episode's Parquet / mp4 file is missing.
        ValueError: info.json is invalid or of another codebase_version, or a metadata file is malformed.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.info = _layout.read_info(self.root)
        self.version: str = self.info['codebase_version']
        self.fps = int(self.info['fps'])
        self.features: dict[str, dict[str, Any]] = self.info['features']
        self.image_keys = _layout.image_keys(self.features)
        self._numeric = _layout.numeric_features(self.features)
        self._rows: list[dict[str, Any]] = []  # v3.0: the meta/episodes rows (without stats)
        if self.version == _layout.V30:
            self._load_v3()
        else:
            self._load_v21()
        self._starts = [ep.from_index for ep in self.episodes]
        start = len(self)
        if (self.info['total_episodes'], self.info['total_frames']) != (len(self.episodes), start):
            logger.warning('%s: info.json counts %d episodes / %d frames but the episode metadata has %d / %d; using '
                           'the latter (a writer stopped before updating info.json)', self.root,
                           self.info['total_episodes'], self.info['total_frames'], len(self.episodes), start)
        self._stats: dict[str, dict[str, np.ndarray]] | None = None
        self._reset_caches()

    def _load_v21(self) -> None:
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
        task_rows = _layout.read_jsonl(self.root / _layout.TASKS_PATH)
        by_index = {int(r['task_index']): r['task'] for r in task_rows}
        if sorted(by_index) != list(range(len(by_index))):
            raise ValueError(f'{str(self.root / _layout.TASKS_PATH)!r} must number tasks 0, 1, 2, ...; '
                             f'got {sorted(by_index)}')
        self.tasks: list[str] = [by_index[i] for i in sorted(by_index)]
        for ep in episodes:
            for path in (self.root / name for name in _layout.episode_files(self.info, ep.episode_index)):
                if not path.exists():
                    raise FileNotFoundError(f'episode {ep.episode_index} is listed in {_layout.EPISODES_PATH} but '
                                            f'{str(path)!r} does not exist')

    def _load_v3(self) -> None:
        self._rows = _v3.read_episodes(self.root)
        self.episodes = [EpisodeInfo(i, tuple(r.get('tasks') or ()), int(r['length']), int(r['dataset_from_index']),
                                     int(r['dataset_to_index'])) for i, r in enumerate(self._rows)]
        self.tasks = _v3.read_tasks(self.root)
        for i in range(len(self._rows)):
            for path in [self._data_path(i)] + [self._video_path(k, i) for k in self.image_keys
                                                if self.features[k]['dtype'] == 'video']:
                if not path.is_file():
                    raise FileNotFoundError(f'episode {i} is listed in {_v3.EPISODES_DIR} but {str(path)!r} does '
                                            'not exist')

    def _reset_caches(self) -> None:
        self._pid = os.getpid()
        self._cache: collections.OrderedDict[Any, dict[str, Any]] = collections.OrderedDict()
        self._readers: collections.OrderedDict[Path, VideoReader] = collections.OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state['_cache'], state['_readers'] = collections.OrderedDict(), collections.OrderedDict()
        return state

    # ---------------------------------------------------------------------------------------------- metadata
    def __len__(self) -> int:
        """Number of frames."""
        return self.episodes[-1].to_index if self.episodes else 0

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        """meta/stats.json: feature -> stat -> array ((d,) numeric, (3, 1, 1) cameras).

        Statistics written without quantiles (LeRobot's min/max/mean/std/count) get q01, q10, q50, q90 and q99 of
        the numeric features computed here from all frames, so normalisation by quantiles works on any dataset.
        """
        if self._stats is None:
            path = self.root / _layout.STATS_PATH
            data = json.loads(path.read_text()) if path.is_file() else {}
            stats = _stats.stats_from_json(data)
            count = stats.get(ACTION, next(iter(stats.values()), {})).get('count')
            if not stats or count is None or int(np.ravel(count)[0]) != len(self):
                # stats.json is rewritten after each episode; when it lags, pool the per-episode stats instead.
                stats = _stats.aggregate_stats(self.episode_stats())
            missing = [k for k in self._numeric if k in stats and not set(_stats.QUANTILES) <= set(stats[k])]
            if missing and len(self):
                logger.info('%s: computing the quantiles %s of %s from the data (the stats lack them)', self.root,
                            list(_stats.QUANTILES), missing)
                columns = [self._numeric_columns(i) for i in range(self.num_episodes)]
                for key in missing:
                    exact = _stats.numeric_stats(np.concatenate([c[key] for c in columns]))
                    stats[key].update({q: exact[q] for q in _stats.QUANTILES})
            self._stats = stats
        return self._stats

    def episode_stats(self) -> list[dict[str, dict[str, np.ndarray]]]:
        """Per-episode stats (episodes_stats.jsonl in v2.1, the stats/ columns of meta/episodes in v3.0)."""
        if self.version == _layout.V30:
            rows = _v3.read_episodes(self.root, with_stats=True)
            return [_v3.stats_from_row(r) for r in rows]
        path = self.root / _layout.EPISODES_STATS_PATH
        rows = {int(r['episode_index']): r['stats'] for r in _layout.read_jsonl(path)}
        missing = [i for i in range(self.num_episodes) if i not in rows]
        if missing:
            raise ValueError(f'{str(path)!r} has no stats for episode(s) {missing}')
        return [_stats.stats_from_json(rows[i]) for i in range(self.num_episodes)]

    # ------------------------------------------------------------------------------------------------ frames
    def _data_path(self, episode_index: int) -> Path:
        if self.version == _layout.V30:
            row = self._rows[episode_index]
            return self.root / self.info['data_path'].format(chunk_index=int(row['data/chunk_index']),
                                                             file_index=int(row['data/file_index']))
        return self.root / _layout.episode_file(self.info, episode_index)

    def _video_path(self, key: str, episode_index: int) -> Path:
        if self.version == _layout.V30:
            row = self._rows[episode_index]
            return self.root / self.info['video_path'].format(video_key=key,
                                                              chunk_index=int(row[f'videos/{key}/chunk_index']),
                                                              file_index=int(row[f'videos/{key}/file_index']))
        return self.root / _layout.episode_file(self.info, episode_index, key)

    def _file_table(self, path: Path) -> dict[str, Any]:
        """A data file's numeric columns, its Arrow image columns and its first 'index' (kept for a few files)."""
        if os.getpid() != self._pid:  # a DataLoader worker: decoders and caches are not shared across processes
            self._reset_caches()
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        if not path.is_file():
            raise FileNotFoundError(f'episode file {str(path)!r} does not exist')
        names = pq.read_schema(path).names
        in_table = [k for k in self.image_keys if self.features[k]['dtype'] == 'image' and k in names]
        table = pq.read_table(path, columns=[k for k in list(self._numeric) + in_table if k in names],
                              memory_map=True)
        entry = {'columns': table_columns(table, self._numeric, repr(str(path))),
                 'images': {k: table.column(k) for k in in_table}}
        entry['first'] = int(entry['columns']['index'][0, 0]) if len(table) else 0
        self._cache[path] = entry
        if len(self._cache) > _CACHED_FILES:
            self._cache.popitem(last=False)
        return entry

    def _rows_of(self, episode_index: int) -> tuple[dict[str, Any], int]:
        """The episode's data file entry and the row of its first frame in that file."""
        entry = self._file_table(self._data_path(episode_index))
        ep = self.episodes[episode_index]
        first = ep.from_index - entry['first'] if self.version == _layout.V30 else 0
        n = len(entry['columns']['index'])
        if first < 0 or first + ep.length > n or (n and int(entry['columns']['index'][first, 0]) != ep.from_index):
            raise ValueError(f'{str(self._data_path(episode_index))!r} does not hold the frames '
                             f'[{ep.from_index}, {ep.to_index}) of episode {episode_index} in its rows')
        if self.version != _layout.V30 and n != ep.length:
            raise ValueError(f'{str(self._data_path(episode_index))!r} has {n} rows; episodes.jsonl says '
                             f'{ep.length}')
        return entry, first

    def _numeric_columns(self, episode_index: int) -> dict[str, np.ndarray]:
        entry, first = self._rows_of(episode_index)
        length = self.episodes[episode_index].length
        return {k: v[first:first + length] for k, v in entry['columns'].items()}

    def _reader(self, path: Path) -> VideoReader:
        if os.getpid() != self._pid:
            self._reset_caches()
        reader = self._readers.get(path)
        if reader is None:
            reader = self._readers[path] = VideoReader(path, self.fps)
            if len(self._readers) > _OPEN_VIDEOS:
                self._readers.popitem(last=False)[1].close()
        else:
            self._readers.move_to_end(path)
        return reader

    def _images(self, key: str, episode_index: int, frames: list[int] | None) -> np.ndarray:
        """uint8 (n, H, W, 3) frames of one camera (all when `frames` is None)."""
        length = self.episodes[episode_index].length
        frames = list(range(length)) if frames is None else frames
        if self.features[key]['dtype'] == 'video':
            path = self._video_path(key, episode_index)
            start = (float(self._rows[episode_index][f'videos/{key}/from_timestamp'])
                     if self.version == _layout.V30 else 0.0)
            reader = self._reader(path)
            return np.stack([reader.frame(i, start) for i in frames])
        entry, first = self._rows_of(episode_index)
        out = []
        for i in frames:
            if key in entry['images']:
                value = entry['images'][key][first + i].as_py()
                data = value.get('bytes') if value else None
                if data is None:
                    raise ValueError(f'{str(self._data_path(episode_index))!r}: camera {key!r} of frame {i} holds no '
                                     f'image bytes (path {value and value.get("path")!r})')
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                where = f'{str(self._data_path(episode_index))!r} row {first + i} column {key!r}'
            else:
                where = str(self.root / _layout.image_file(key, episode_index, i))
                image = cv2.imread(where, cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f'image {where} does not exist or is not a readable image')
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

    def numeric_episode(self, episode_index: int) -> dict[str, np.ndarray]:
        """The numeric columns of one episode ('observation.state', 'action', ...), (T, d) each; no images decoded.

        Raises:
            IndexError: no such episode.
        """
        if not 0 <= episode_index < self.num_episodes:
            raise IndexError(f'episode {episode_index} is out of range 0..{self.num_episodes - 1}')
        return {k: v.copy() for k, v in self._numeric_columns(episode_index).items()}

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
