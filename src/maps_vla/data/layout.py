"""LeRobot dataset folders: the `features` schema, info.json, and the v2.1 layout with its JSONL metadata IO
(the v3.0 layout is in `maps_vla.data.v3`).

A v2.1 dataset folder (LeRobot codebase_version "v2.1", one file per episode):
    meta/info.json                  schema, counters, path templates
    meta/episodes.jsonl             {"episode_index", "tasks", "length"} per line; the commit log of episodes
    meta/tasks.jsonl                {"task_index", "task"} per line
    meta/episodes_stats.jsonl       {"episode_index", "stats"} per line
    meta/stats.json                 stats over all episodes (mean/std/min/max/count and q01..q99)
    data/chunk-000/episode_000000.parquet
    videos/chunk-000/<key>/episode_000000.mp4                      (video mode)
    images/<key>/episode_000000/frame_000000.png                   (PNG mode, maps_vla before v3.0 only)

LeRobot's own v2.1 image mode stores the PNGs inside the Parquet file (a struct<bytes, path> column per camera);
`Dataset` reads both.

Every write here is atomic (temp file + fsync + os.replace) or an fsynced append of one whole line, so a killed
writer leaves files that either hold the old or the new content; a torn last JSONL line is skipped on read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from maps_vla.policy import OBS_IMAGE_PREFIX

__all__ = [
    'CODEBASE_VERSION', 'V21', 'V30', 'VERSIONS', 'DEFAULT_VERSION', 'CHUNKS_SIZE', 'INFO_PATH', 'EPISODES_PATH',
    'TASKS_PATH', 'EPISODES_STATS_PATH', 'STATS_PATH', 'DATA_PATH', 'VIDEO_PATH', 'IMAGE_DIR', 'IMAGE_PATH', 'TMP_DIR',
    'DEFAULT_FEATURES',
    'normalize_features', 'image_keys', 'numeric_features', 'episode_file', 'episode_files', 'image_dir',
    'image_file', 'png_folders', 'read_info', 'write_json_atomic', 'read_jsonl', 'append_jsonl', 'fsync_dir',
    'staging_folder', 'publish_folder',
]

logger = logging.getLogger(__name__)

V21, V30 = 'v2.1', 'v3.0'
VERSIONS = (V21, V30)  # codebase versions read and written
DEFAULT_VERSION = V30  # what new datasets are written as
CODEBASE_VERSION = V21  # the version of this module's layout
CHUNKS_SIZE = 1000  # episodes per chunk folder, as LeRobot
INFO_PATH = 'meta/info.json'
EPISODES_PATH = 'meta/episodes.jsonl'
TASKS_PATH = 'meta/tasks.jsonl'
EPISODES_STATS_PATH = 'meta/episodes_stats.jsonl'
STATS_PATH = 'meta/stats.json'
DATA_PATH = 'data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet'
VIDEO_PATH = 'videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4'
IMAGE_DIR = 'images/{image_key}/episode_{episode_index:06d}'
IMAGE_PATH = IMAGE_DIR + '/frame_{frame_index:06d}.png'
TMP_DIR = '.tmp'  # episodes in progress; never read, removed when a writer opens the dataset

# Added to every dataset by the writer, in LeRobot's order and spelling.
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    'timestamp': {'dtype': 'float32', 'shape': [1], 'names': None},
    'frame_index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'episode_index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'task_index': {'dtype': 'int64', 'shape': [1], 'names': None},
}
_NUMERIC_DTYPES = ('float32', 'float64', 'int32', 'int64', 'bool')
_STRING_DTYPES = ('string', 'str')
_REQUIRED_INFO_KEYS = ('fps', 'features', 'total_episodes', 'total_frames', 'data_path')


def normalize_features(features: dict[str, dict[str, Any]], *, video: bool) -> dict[str, dict[str, Any]]:
    """Check a LeRobot `features` dict and return the one stored in info.json (defaults appended).

    Image features are those with dtype 'image'/'video' or a key starting with 'observation.images.'; they must
    have shape (H, W, 3) and get dtype 'video' or 'image' after `video`. String features (e.g. 'task') are left
    out: the task is stored per frame as 'task_index'. Numeric features must be 1-D.

    Args:
        features: key -> {'dtype', 'shape', optional 'names'}, e.g. the sim env's `env.features`.
        video: True to store cameras as mp4, False as PNG files.

    Returns:
        A new dict with JSON-ready values (shapes as lists).

    Raises:
        TypeError: `features` or an entry is not a mapping.
        ValueError: an entry lacks dtype/shape, has an unsupported dtype or shape, or redefines a default feature.
    """
    if not isinstance(features, dict):
        raise TypeError(f'features must be a dict of key -> {{dtype, shape, names}}, got {type(features).__name__}')
    out: dict[str, dict[str, Any]] = {}
    for key, ft in features.items():
        if not isinstance(ft, dict) or 'dtype' not in ft or 'shape' not in ft:
            raise ValueError(f'feature {key!r} must be a dict with "dtype" and "shape", got {ft!r}')
        dtype, shape, names = str(ft['dtype']), [int(s) for s in ft['shape']], ft.get('names')
        if key in DEFAULT_FEATURES:
            if dtype != DEFAULT_FEATURES[key]['dtype'] or shape != DEFAULT_FEATURES[key]['shape']:
                raise ValueError(f'feature {key!r} is added by the writer as {DEFAULT_FEATURES[key]}; got {ft!r}')
            continue
        if dtype in _STRING_DTYPES:
            continue
        if dtype in ('image', 'video') or key.startswith(OBS_IMAGE_PREFIX):
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f'image feature {key!r} must have shape (H, W, 3), got {tuple(shape)}')
            out[key] = {'dtype': 'video' if video else 'image', 'shape': shape,
                        'names': ['height', 'width', 'channels']}
        elif dtype in _NUMERIC_DTYPES:
            if len(shape) != 1 or shape[0] < 1:
                raise ValueError(f'feature {key!r} must be 1-D, got shape {tuple(shape)}')
            out[key] = {'dtype': dtype, 'shape': shape, 'names': list(names) if names is not None else None}
        else:
            raise ValueError(f'feature {key!r} has dtype {dtype!r}; allowed: image, video, string, '
                             f'{", ".join(_NUMERIC_DTYPES)}')
    if not any(ft['dtype'] not in ('image', 'video') for ft in out.values()):
        raise ValueError(f'features need at least one numeric feature such as "action", got {list(features)}')
    for key, ft in DEFAULT_FEATURES.items():
        out[key] = dict(ft)
    return out


def image_keys(features: dict[str, dict[str, Any]]) -> list[str]:
    """Keys of camera features (dtype 'image' or 'video'), in schema order."""
    return [k for k, ft in features.items() if ft['dtype'] in ('image', 'video')]


def numeric_features(features: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The features stored as Parquet columns (all non-camera ones, defaults included), in schema order."""
    return {k: ft for k, ft in features.items() if ft['dtype'] not in ('image', 'video')}


def episode_file(info: dict[str, Any], episode_index: int, video_key: str | None = None) -> str:
    """Relative path of an episode's Parquet file, or of its mp4 for `video_key`."""
    chunk = episode_index // int(info['chunks_size'])
    if video_key is None:
        return info['data_path'].format(episode_chunk=chunk, episode_index=episode_index)
    return info['video_path'].format(episode_chunk=chunk, video_key=video_key, episode_index=episode_index)


def episode_files(info: dict[str, Any], episode_index: int) -> list[str]:
    """Relative paths a v2.1 episode consists of: its Parquet file, then one mp4 (or legacy PNG folder) per camera."""
    files = [episode_file(info, episode_index)]
    for key in image_keys(info['features']):
        if info['features'][key]['dtype'] == 'video':
            files.append(episode_file(info, episode_index, key))
        elif png_folders(info):
            files.append(image_dir(key, episode_index))
    return files


def png_folders(info: dict[str, Any]) -> bool:
    """True for the PNG-folder image layout of maps_vla before v3.0 (its info.json has 'image_path'); LeRobot
    stores image frames inside the Parquet files instead."""
    return 'image_path' in info


def image_dir(image_key: str, episode_index: int) -> str:
    """Relative path of the folder of an episode's PNG frames of one camera."""
    return IMAGE_DIR.format(image_key=image_key, episode_index=episode_index)


def image_file(image_key: str, episode_index: int, frame_index: int) -> str:
    """Relative path of one PNG frame."""
    return IMAGE_PATH.format(image_key=image_key, episode_index=episode_index, frame_index=frame_index)


def read_info(root: Path) -> dict[str, Any]:
    """Read and check meta/info.json.

    Raises:
        FileNotFoundError: `root` holds no meta/info.json (not a dataset).
        ValueError: info.json is not JSON, lacks a key, or has a codebase_version other than v2.1 / v3.0.
    """
    path = root / INFO_PATH
    if not path.is_file():
        raise FileNotFoundError(f'{str(root)!r} is not a dataset: {str(path)!r} does not exist')
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'{str(path)!r} is not valid JSON: {err}') from None
    if not isinstance(info, dict):
        raise ValueError(f'{str(path)!r} must hold a JSON object, got {type(info).__name__}')
    version = info.get('codebase_version')
    if version not in VERSIONS:
        hint = (' Convert it with LeRobot\'s convert_dataset_v20_to_v21 (or convert_dataset_v21_to_v30), then '
                'use it here.' if isinstance(version, str) and version.startswith('v2') else '')
        raise ValueError(f'{str(path)!r} has codebase_version {version!r}; {" and ".join(VERSIONS)} are '
                         f'supported.{hint}')
    required = _REQUIRED_INFO_KEYS + (('chunks_size',) if version == V21 else ())
    missing = [k for k in required if k not in info]
    if missing:
        raise ValueError(f'{str(path)!r} lacks the key(s) {missing}')
    return info


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in directory `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_folder(root: Path) -> Path:
    """An empty folder beside `root` to build it in, private to this process: two processes that build the same
    folder at once (slices of one experiment run side by side) do not write into each other's files."""
    staging = root.with_name(f'{root.name}.tmp{os.getpid()}')
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def publish_folder(staging: Path, root: Path) -> Path:
    """Rename a finished `staging` folder to `root`. When another process published `root` first, its folder is
    kept and this one dropped (both were built from the same settings)."""
    try:
        staging.rename(root)
    except OSError:
        if not root.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return root


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace `path` with `obj` as JSON: readers see the old or the new file, never a torn one."""
    tmp = path.with_name(f'.{path.name}.tmp')
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=4)
        f.write('\n')
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read JSON lines; a torn last line (a writer killed mid-append) is skipped with a warning.

    Raises:
        ValueError: a line other than the last one is not valid JSON.
    """
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b'\n')
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # no newline after it: the append never finished
                logger.warning('%s: ignoring the torn last line %r', path, line[:80])
                continue
            raise ValueError(f'{str(path)!r} line {i + 1} is not valid JSON: {line[:80]!r}') from None
    return rows


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append whole lines with one write() and fsync them (the commit point of an episode)."""
    data = ''.join(json.dumps(row, separators=(', ', ': ')) + '\n' for row in rows).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
