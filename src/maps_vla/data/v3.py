"""The LeRobot v3.0 folder layout (LeRobot >= 0.4): many episodes per file, episode metadata in Parquet.

A v3.0 dataset folder:
    meta/info.json                                   schema, counters, path templates, file size limits
    meta/tasks.parquet                               column task_index (int64), the task string as the index 'task'
    meta/stats.json                                  stats over all frames
    meta/episodes/chunk-000/file-000.parquet         one row per episode: episode_index, tasks, length,
                                                     data/chunk_index, data/file_index, dataset_from_index,
                                                     dataset_to_index, videos/<key>/{chunk_index, file_index,
                                                     from_timestamp, to_timestamp}, stats/<feature>/<stat>,
                                                     meta/episodes/chunk_index, meta/episodes/file_index
    data/chunk-000/file-000.parquet                  frames of consecutive episodes (cameras inside in image mode)
    videos/<key>/chunk-000/file-000.mp4              frames of consecutive episodes, one after the other in time

A file is closed when adding an episode would take it past `data_files_size_in_mb` / `video_files_size_in_mb`;
`chunks_size` is the number of files per chunk folder. Episode `e`'s frames are the rows whose 'index' is in
[dataset_from_index, dataset_to_index) of its data file, and the video frames from `from_timestamp` on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from maps_vla.data import layout as _layout

__all__ = ['DATA_PATH', 'VIDEO_PATH', 'EPISODES_PATH', 'EPISODES_DIR', 'TASKS_PATH', 'CHUNKS_SIZE',
           'DATA_FILES_SIZE_IN_MB', 'VIDEO_FILES_SIZE_IN_MB', 'next_file', 'new_info', 'write_tasks', 'read_tasks',
           'episodes_table', 'read_episodes', 'stats_from_row', 'stats_columns', 'write_parquet_atomic']

DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
EPISODES_DIR = 'meta/episodes'
EPISODES_PATH = EPISODES_DIR + '/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
TASKS_PATH = 'meta/tasks.parquet'
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's default)
DATA_FILES_SIZE_IN_MB = 100  # LeRobot's defaults
VIDEO_FILES_SIZE_IN_MB = 200

_LOCATION_COLUMNS = ('data/chunk_index', 'data/file_index', 'dataset_from_index', 'dataset_to_index',
                     'meta/episodes/chunk_index', 'meta/episodes/file_index')


def next_file(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    """The (chunk, file) index after (chunk, file)."""
    return (chunk + 1, 0) if file + 1 >= chunks_size else (chunk, file + 1)


def new_info(fps: int, features: dict[str, dict[str, Any]], robot_type: str | None, video: bool, *,
             data_files_size_in_mb: int = DATA_FILES_SIZE_IN_MB,
             video_files_size_in_mb: int = VIDEO_FILES_SIZE_IN_MB) -> dict[str, Any]:
    """info.json of an empty v3.0 dataset, with exactly LeRobot's keys."""
    return {
        'codebase_version': _layout.V30, 'robot_type': robot_type, 'total_episodes': 0, 'total_frames': 0,
        'total_tasks': 0, 'chunks_size': CHUNKS_SIZE, 'data_files_size_in_mb': data_files_size_in_mb,
        'video_files_size_in_mb': video_files_size_in_mb, 'fps': fps, 'splits': {}, 'data_path': DATA_PATH,
        'video_path': VIDEO_PATH if video and _layout.image_keys(features) else None, 'features': features,
    }


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    """Write `table` to a temp file next to `path`, fsync it, and rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    with open(tmp, 'wb') as f:
        pq.write_table(table, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _layout.fsync_dir(path.parent)


def write_tasks(path: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as pandas writes LeRobot's DataFrame: column 'task_index', index 'task' (the string)."""
    pandas_meta = {
        'index_columns': ['task'], 'column_indexes': [{'name': None, 'field_name': None, 'pandas_type': 'unicode',
                                                        'numpy_type': 'object', 'metadata': {'encoding': 'UTF-8'}}],
        'columns': [{'name': 'task_index', 'field_name': 'task_index', 'pandas_type': 'int64',
                     'numpy_type': 'int64', 'metadata': None},
                    {'name': 'task', 'field_name': 'task', 'pandas_type': 'unicode', 'numpy_type': 'object',
                     'metadata': None}],
        'creator': {'library': 'pyarrow', 'version': pa.__version__}, 'pandas_version': '2.2.3',
    }
    schema = pa.schema([('task_index', pa.int64()), ('task', pa.string())],
                       metadata={'pandas': json.dumps(pandas_meta)})
    table = pa.Table.from_arrays([pa.array(range(len(tasks)), pa.int64()), pa.array(tasks, pa.string())],
                                 schema=schema)
    write_parquet_atomic(path, table)


def read_tasks(root: Path) -> list[str]:
    """Tasks by task_index from meta/tasks.parquet ([] when there is none).

    Raises:
        ValueError: the file lacks the columns or does not number tasks 0, 1, 2, ...
    """
    path = root / TASKS_PATH
    if not path.is_file():
        return []
    table = pq.read_table(path)
    names = table.column_names
    task_column = 'task' if 'task' in names else '__index_level_0__'
    if 'task_index' not in names or task_column not in names:
        raise ValueError(f'{str(path)!r} must have the columns task_index and task, got {names}')
    by_index = dict(zip(table.column('task_index').to_pylist(), table.column(task_column).to_pylist()))
    if sorted(by_index) != list(range(len(by_index))):
        raise ValueError(f'{str(path)!r} must number tasks 0, 1, 2, ...; got {sorted(by_index)}')
    return [by_index[i] for i in range(len(by_index))]


def stats_columns(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Per-episode stats as meta/episodes columns 'stats/<feature>/<stat>' (nested lists)."""
    return {f'stats/{key}/{name}': np.asarray(value).tolist() for key, ft in stats.items()
            for name, value in ft.items()}


def stats_from_row(row: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of `stats_columns` for one meta/episodes row."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for column, value in row.items():
        if column.startswith('stats/') and value is not None:
            key, name = column[len('stats/'):].rsplit('/', 1)
            out.setdefault(key, {})[name] = np.asarray(value, dtype=np.int64 if name == 'count' else np.float64)
    return out


def _column_type(column: str, value: Any) -> pa.DataType:
    if column == 'tasks':
        return pa.list_(pa.string())
    if column.endswith('_timestamp'):
        return pa.float64()
    if column.startswith('stats/'):
        depth, inner = 0, value
        while isinstance(inner, list):
            depth, inner = depth + 1, inner[0] if inner else 0.0
        kind: pa.DataType = pa.int64() if column.endswith('/count') else pa.float64()
        for _ in range(depth):
            kind = pa.list_(kind)
        return kind
    return pa.int64()


def episodes_table(rows: list[dict[str, Any]]) -> pa.Table:
    """meta/episodes rows -> an Arrow table (int64 indices, float64 timestamps and stats, list<string> tasks)."""
    columns = list(rows[0])
    schema = pa.schema([(c, _column_type(c, rows[0][c])) for c in columns])
    return pa.Table.from_pylist(rows, schema=schema)


def read_episodes(root: Path, *, with_stats: bool = False) -> list[dict[str, Any]]:
    """All meta/episodes rows in episode order, checked to be episodes 0, 1, 2, ... with contiguous frames.

    Raises:
        ValueError: a row lacks a column, or the episodes or their frame ranges are not contiguous.
    """
    folder = root / EPISODES_DIR
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob('*/*.parquet')) if folder.is_dir() else []:
        table = pq.read_table(path)
        if not with_stats:
            table = table.select([c for c in table.column_names if not c.startswith('stats/')])
        missing = [c for c in ('episode_index', 'length') + _LOCATION_COLUMNS[:4] if c not in table.column_names]
        if missing:
            raise ValueError(f'{str(path)!r} lacks the column(s) {missing}')
        rows.extend(table.to_pylist())
    rows.sort(key=lambda r: int(r['episode_index']))
    start = 0
    for i, row in enumerate(rows):
        if int(row['episode_index']) != i or int(row['length']) < 1 or int(row['dataset_from_index']) != start \
                or int(row['dataset_to_index']) != start + int(row['length']):
            raise ValueError(f'{str(folder)!r}: row {i} is not episode {i} with a positive length and frames '
                             f'[{start}, {start} + length): {({k: row.get(k) for k in _LOCATION_COLUMNS[2:4]})}, '
                             f'episode_index {row["episode_index"]}, length {row["length"]}')
        start += int(row['length'])
    return rows
