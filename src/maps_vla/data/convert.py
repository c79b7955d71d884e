"""Convert LeRobot datasets between codebase v2.1 and v3.0, both ways, without re-encoding anything.

v2.1 -> v3.0 packs consecutive episodes into data files (one row group per episode) and mp4s (packets copied one
after the other) up to the size limits; v3.0 -> v2.1 slices them back into one file per episode (an episode whose
mp4 part does not start on a keyframe is decoded and encoded again, with a warning). Frame rows, PNG bytes and
video packets are copied as they are, so decoded values are identical both ways. LeRobot ships only the
v2.1 -> v3.0 direction (`lerobot.scripts.convert_dataset_v21_to_v30`).

The result is built in a hidden sibling folder and moved to the destination when complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from maps_vla.data import layout as _layout
from maps_vla.data import stats as _stats
from maps_vla.data import v3 as _v3
from maps_vla.data.dataset import Dataset
from maps_vla.data.table import IMAGE_TYPE, write_tables
from maps_vla.data.video import VideoConfig, VideoEncoder, VideoReader, concat_videos, cut_video

__all__ = ['ConvertReport', 'convert_dataset']

logger = logging.getLogger(__name__)

_MB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ConvertReport:
    """What a conversion wrote."""

    source: str
    destination: str
    version: str  # the destination's codebase version
    episodes: int
    frames: int
    data_files: int
    video_files: int
    reencoded: int  # episode videos that had to be decoded and encoded again (v3.0 -> v2.1)

    def summary(self) -> str:
        return (f'convert {self.source} -> {self.destination} ({self.version}): {self.episodes} episodes, '
                f'{self.frames} frames, {self.data_files} data files, {self.video_files} video files'
                + (f', {self.reencoded} episode videos re-encoded' if self.reencoded else ''))


def convert_dataset(source: str | os.PathLike, destination: str | os.PathLike, version: str, *,
                    data_files_size_in_mb: int = _v3.DATA_FILES_SIZE_IN_MB,
                    video_files_size_in_mb: int = _v3.VIDEO_FILES_SIZE_IN_MB) -> ConvertReport:
    """Write `source` (v2.1 or v3.0) as a new dataset `destination` of codebase `version`.

    Args:
        source: a dataset folder.
        destination: the folder to create (must not exist, or be empty).
        version: 'v3.0' or 'v2.1' (the other one than the source's).
        data_files_size_in_mb, video_files_size_in_mb: file size limits of a v3.0 destination.

    Raises:
        FileNotFoundError, ValueError: `source` is not a valid dataset, or already is `version`.
        FileExistsError: `destination` exists and is not empty.
    """
    src = Dataset(source)
    dst = Path(destination)
    if version not in _layout.VERSIONS:
        raise ValueError(f'version must be one of {_layout.VERSIONS}, got {version!r}')
    if src.version == version:
        raise ValueError(f'{str(source)!r} already is a {version} dataset')
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f'{str(dst)!r} exists and is not empty; choose a new destination')
    if src.num_episodes == 0:
        raise ValueError(f'{str(source)!r} has no episodes to convert')
    partial = dst.with_name(f'.{dst.name}.partial')
    shutil.rmtree(partial, ignore_errors=True)
    (partial / 'meta').mkdir(parents=True)
    try:
        if version == _layout.V30:
            report = _to_v3(src, partial, data_files_size_in_mb, video_files_size_in_mb)
        else:
            report = _to_v21(src, partial)
        stats = src.root / _layout.STATS_PATH
        if stats.is_file():
            shutil.copyfile(stats, partial / _layout.STATS_PATH)
        else:
            _layout.write_json_atomic(partial / _layout.STATS_PATH,
                                      _stats.stats_to_json(_stats.aggregate_stats(src.episode_stats())))
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, dst)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    report = dataclasses.replace(report, source=str(source), destination=str(dst))
    logger.info('%s', report.summary())
    return report


# ------------------------------------------------------------------------------------------------- helpers
def _hf_metadata(features: dict[str, dict[str, Any]]) -> dict[bytes, bytes]:
    from maps_vla.data.table import _hf_feature

    hf = {k: ({'_type': 'Image'} if ft['dtype'] == 'image' else _hf_feature(ft)) for k, ft in features.items()
          if ft['dtype'] != 'video'}
    return {b'huggingface': json.dumps({'info': {'features': hf}}).encode()}


def _episode_table(src: Dataset, episode_index: int, schema: pa.Schema | None) -> pa.Table:
    """The episode's frame rows as stored (PNG bytes of legacy PNG folders are put into the table)."""
    ep = src.episodes[episode_index]
    path = src._data_path(episode_index)
    table = pq.read_table(path)
    if src.version == _layout.V30:
        index = table.column('index').to_numpy()
        first = int(np.searchsorted(index, ep.from_index))
        table = table.slice(first, ep.length)
    for key in src.image_keys:
        if src.features[key]['dtype'] == 'image' and key not in table.column_names:  # legacy PNG folders
            files = [(src.root / _layout.image_file(key, episode_index, i)).read_bytes() for i in range(ep.length)]
            names = [f'frame-{i:06d}.png' for i in range(ep.length)]
            column = pa.StructArray.from_arrays([pa.array(files, pa.binary()), pa.array(names, pa.string())],
                                                fields=list(IMAGE_TYPE))
            table = table.append_column(key, column)
    order = [k for k, ft in src.features.items() if ft['dtype'] != 'video' and k in table.column_names]
    table = table.select(order + [c for c in table.column_names if c not in order])
    table = table.replace_schema_metadata(_hf_metadata(src.features))
    return table if schema is None else table.cast(schema)


def _features(src: Dataset) -> dict[str, dict[str, Any]]:
    return json.loads(json.dumps(src.features))


def _video_config(feature: dict[str, Any]) -> VideoConfig:
    info = feature.get('info', {})
    try:
        return VideoConfig.from_feature_info(info)
    except ValueError:
        return VideoConfig()


# ------------------------------------------------------------------------------------------------ v2.1 -> v3.0
def _to_v3(src: Dataset, out: Path, data_mb: int, video_mb: int) -> ConvertReport:
    info = _v3.new_info(src.fps, _features(src), src.info.get('robot_type'),
                        any(src.features[k]['dtype'] == 'video' for k in src.image_keys),
                        data_files_size_in_mb=data_mb, video_files_size_in_mb=video_mb)
    chunks = int(info['chunks_size'])
    rows: list[dict[str, Any]] = [{'episode_index': ep.episode_index, 'tasks': list(ep.tasks), 'length': ep.length}
                                  for ep in src.episodes]

    # data files: consecutive episodes until the next would pass the size limit
    location, tables, size, schema, data_files = (0, 0), [], 0, None, 0
    for ep in src.episodes:
        episode_size = src._data_path(ep.episode_index).stat().st_size
        if tables and size + episode_size >= data_mb * _MB:
            write_tables(out / info['data_path'].format(chunk_index=location[0], file_index=location[1]), tables)
            data_files += 1
            location, tables, size = _v3.next_file(*location, chunks), [], 0
        if not tables:
            (out / info['data_path'].format(chunk_index=location[0], file_index=location[1])).parent.mkdir(
                parents=True, exist_ok=True)
        table = _episode_table(src, ep.episode_index, schema)
        schema = schema or table.schema
        tables.append(table)
        size += episode_size
        rows[ep.episode_index].update({'data/chunk_index': location[0], 'data/file_index': location[1],
                                       'dataset_from_index': ep.from_index, 'dataset_to_index': ep.to_index})
    write_tables(out / info['data_path'].format(chunk_index=location[0], file_index=location[1]), tables)
    data_files += 1

    # videos: the packets of consecutive episodes, one after the other
    video_files = 0
    for key in [k for k in src.image_keys if src.features[k]['dtype'] == 'video']:
        location, group, size = (0, 0), [], 0
        groups: list[tuple[tuple[int, int], list[int]]] = []
        for ep in src.episodes:
            episode_size = src._video_path(key, ep.episode_index).stat().st_size
            if group and size + episode_size >= video_mb * _MB:
                groups.append((location, group))
                location, group, size = _v3.next_file(*location, chunks), [], 0
            group.append(ep.episode_index)
            size += episode_size
        groups.append((location, group))
        for location, group in groups:
            path = out / info['video_path'].format(video_key=key, chunk_index=location[0], file_index=location[1])
            path.parent.mkdir(parents=True, exist_ok=True)
            lengths = [src.episodes[i].length for i in group]
            starts = concat_videos([src._video_path(key, i) for i in group], path, lengths, src.fps)
            for i, start, length in zip(group, starts, lengths, strict=True):
                rows[i].update({f'videos/{key}/chunk_index': location[0], f'videos/{key}/file_index': location[1],
                                f'videos/{key}/from_timestamp': start,
                                f'videos/{key}/to_timestamp': (round(start * src.fps) + length) / src.fps})
            video_files += 1

    for row, stats in zip(rows, src.episode_stats(), strict=True):
        row.update(_v3.stats_columns(stats))
        row.update({'meta/episodes/chunk_index': 0, 'meta/episodes/file_index': 0})
    _v3.write_parquet_atomic(out / _v3.EPISODES_PATH.format(chunk_index=0, file_index=0), _v3.episodes_table(rows))
    _v3.write_tasks(out / _v3.TASKS_PATH, src.tasks)
    n = src.num_episodes
    info.update(total_episodes=n, total_frames=len(src), total_tasks=len(src.tasks), splits={'train': f'0:{n}'})
    _layout.write_json_atomic(out / _layout.INFO_PATH, info)
    return ConvertReport('', '', _layout.V30, n, len(src), data_files, video_files, 0)


# ------------------------------------------------------------------------------------------------ v3.0 -> v2.1
def _to_v21(src: Dataset, out: Path) -> ConvertReport:
    features = _features(src)
    video_keys = [k for k in src.image_keys if features[k]['dtype'] == 'video']
    n = src.num_episodes
    info = {
        'codebase_version': _layout.V21, 'robot_type': src.info.get('robot_type'), 'total_episodes': n,
        'total_frames': len(src), 'total_tasks': len(src.tasks), 'total_videos': n * len(video_keys),
        'total_chunks': -(-n // _layout.CHUNKS_SIZE), 'chunks_size': _layout.CHUNKS_SIZE, 'fps': src.fps,
        'splits': {'train': f'0:{n}'}, 'data_path': _layout.DATA_PATH,
        'video_path': _layout.VIDEO_PATH if video_keys else None, 'features': features,
    }
    schema, reencoded = None, 0
    for ep in src.episodes:
        path = out / _layout.episode_file(info, ep.episode_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = _episode_table(src, ep.episode_index, schema)
        schema = schema or table.schema
        write_tables(path, [table])
        for key in video_keys:
            target = out / _layout.episode_file(info, ep.episode_index, key)
            target.parent.mkdir(parents=True, exist_ok=True)
            start = float(src._rows[ep.episode_index][f'videos/{key}/from_timestamp'])
            if not cut_video(src._video_path(key, ep.episode_index), target, start, ep.length, src.fps):
                logger.warning('episode %d of %r does not start on a keyframe of %s: encoding it again',
                               ep.episode_index, key, src._video_path(key, ep.episode_index))
                _reencode(src._video_path(key, ep.episode_index), target, start, ep.length, src.fps,
                          features[key])
                reencoded += 1
    _layout.append_jsonl(out / _layout.EPISODES_PATH, [{'episode_index': ep.episode_index, 'tasks': list(ep.tasks),
                                                         'length': ep.length} for ep in src.episodes])
    _layout.append_jsonl(out / _layout.TASKS_PATH, [{'task_index': i, 'task': t} for i, t in enumerate(src.tasks)])
    _layout.append_jsonl(out / _layout.EPISODES_STATS_PATH,
                         [{'episode_index': i, 'stats': _stats.stats_to_json(s)}
                          for i, s in enumerate(src.episode_stats())])
    _layout.write_json_atomic(out / _layout.INFO_PATH, info)
    return ConvertReport('', '', _layout.V21, n, len(src), n, n * len(video_keys), reencoded)


def _reencode(path: Path, target: Path, start: float, length: int, fps: int, feature: dict[str, Any]) -> None:
    height, width, _ = feature['shape']
    reader = VideoReader(path, fps)
    encoder = VideoEncoder(target, fps, height, width, _video_config(feature))
    try:
        for i in range(length):
            encoder.add(reader.frame(i, start))
    finally:
        encoder.close()
        reader.close()
