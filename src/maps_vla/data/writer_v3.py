"""Write LeRobot v3.0 datasets episode by episode, so that a killed writer loses at most the episode in progress.

Episodes are packed as LeRobot packs them: a writer session appends episode after episode to one data file and one
mp4 per camera until a file would pass the size limit of info.json, then starts the next file; a resumed session
starts new files (as LeRobot does). LeRobot itself buffers and only writes complete metadata in `finalize()`, so a
killed LeRobot recording loses every episode of the session; here every saved episode is committed on its own:

    1. everything the episode changes is prepared under `<root>/.tmp/commit/`: the data file with the episode
       appended (a new Parquet file: the old row groups plus one for the episode), each mp4 with the episode's
       packets appended (remuxed, not re-encoded), meta/tasks.parquet if a task is new, the meta/episodes file
       with the episode's row, stats.json and info.json with the new counters;
    2. a journal listing the renames (prepared file -> its place) is written atomically: the commit point;
    3. the renames are done in that order (data, videos, tasks, meta/episodes, stats, info); the journal is removed.

A crash before 2 leaves the dataset as it was (the prepared files are deleted by the next `open`). A crash after 2
is rolled forward by the next `open`, which redoes the renames of the journal; until then the folder is the
dataset before the episode, except during the few milliseconds of renames in step 3 (our reader still sees a
consistent dataset then: meta/episodes is renamed after the files it points to). So whenever a writer is killed
outside those milliseconds, the folder is a complete LeRobot v3.0 dataset.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from maps_vla.data import layout as _layout
from maps_vla.data import stats as _stats
from maps_vla.data import v3 as _v3
from maps_vla.data.table import read_episode_table, write_tables
from maps_vla.data.video import concat_videos
from maps_vla.data.writer import DatasetWriter, _fsync_file

__all__ = ['DatasetWriterV3']

logger = logging.getLogger(__name__)

_COMMIT_DIR = 'commit'
_JOURNAL = 'journal.json'
_MB = 1024 * 1024


class DatasetWriterV3(DatasetWriter):
    """A `DatasetWriter` storing LeRobot v3.0 (see the module docstring); build it with `DatasetWriter.create` /
    `open`."""

    def _load_committed(self) -> None:
        rows = _v3.read_episodes(self.root, with_stats=True)
        self._episodes = rows
        self._tasks = {task: i for i, task in enumerate(_v3.read_tasks(self.root))}
        self._episode_stats = [_v3.stats_from_row(row) for row in rows]
        self._data_file: tuple[int, int] | None = None  # the session's data file (chunk, file), None: start one
        self._video_files: dict[str, tuple[int, int, int]] = {}  # key -> (chunk, file, frames of time used)

    # -------------------------------------------------------------------------------------------- locations
    def _new_file(self, prefix: str) -> tuple[int, int]:
        """(chunk, file) after the last one any committed episode uses for `prefix` ('data' or 'videos/<key>')."""
        used = [(int(r[f'{prefix}/chunk_index']), int(r[f'{prefix}/file_index'])) for r in self._episodes
                if r.get(f'{prefix}/chunk_index') is not None]
        return _v3.next_file(*max(used), int(self.info['chunks_size'])) if used else (0, 0)

    def _path(self, template: str, location: tuple[int, ...], video_key: str | None = None) -> Path:
        kwargs = {'video_key': video_key} if video_key is not None else {}
        return self.root / template.format(chunk_index=location[0], file_index=location[1], **kwargs)

    def _meta_file(self) -> tuple[int, int]:
        if not self._episodes:
            return 0, 0
        last = self._episodes[-1]
        location = (int(last['meta/episodes/chunk_index']), int(last['meta/episodes/file_index']))
        path = self._path(_v3.EPISODES_PATH, location)
        if path.is_file() and path.stat().st_size >= int(self.info['data_files_size_in_mb']) * _MB:
            return _v3.next_file(*location, int(self.info['chunks_size']))
        return location

    # ------------------------------------------------------------------------------------------------ saving
    def save_episode(self) -> int:
        """`DatasetWriter.save_episode` through the v3.0 journal (the module docstring gives the order of writes)."""
        index, length, new_tasks, columns, ep_stats = self._finish_episode()
        commit = self.root / _layout.TMP_DIR / _COMMIT_DIR
        shutil.rmtree(commit, ignore_errors=True)
        commit.mkdir(parents=True)
        moves: list[tuple[Path, Path]] = []
        row: dict[str, Any] = {'episode_index': index, 'tasks': list(dict.fromkeys(self._ep_tasks)), 'length': length}

        # data: append the episode's row group to the session's file, or start the next file
        table = self._episode_table(columns, length)
        episode_file = commit / 'episode.parquet'
        write_tables(episode_file, [table])
        data_file = self._data_file
        limit = int(self.info['data_files_size_in_mb']) * _MB
        if data_file is not None and (self._path(self.info['data_path'], data_file).stat().st_size
                                      + episode_file.stat().st_size < limit):
            old = pq.ParquetFile(self._path(self.info['data_path'], data_file))
            groups = [old.read_row_group(i) for i in range(old.num_row_groups)]
            old.close()
            write_tables(commit / 'data.parquet', groups + [table])
            moves.append((commit / 'data.parquet', self._path(self.info['data_path'], data_file)))
        else:
            data_file = (self._new_file('data') if data_file is None else
                         _v3.next_file(*data_file, int(self.info['chunks_size'])))
            moves.append((episode_file, self._path(self.info['data_path'], data_file)))
        row.update({'data/chunk_index': data_file[0], 'data/file_index': data_file[1],
                    'dataset_from_index': self._num_frames, 'dataset_to_index': self._num_frames + length})

        # videos: append the episode's packets to the session's mp4 of each camera, or start the next file
        video_files = dict(self._video_files)
        for key in self._image_keys if self._video else []:
            episode_mp4 = self._ep_dir / f'{key}.mp4'
            current = video_files.get(key)
            limit = int(self.info['video_files_size_in_mb']) * _MB
            current_path = self._path(self.info['video_path'], current, key) if current is not None else None
            if current_path is not None and current_path.stat().st_size + episode_mp4.stat().st_size < limit:
                joined = commit / f'{key}.mp4'
                start = concat_videos([current_path, episode_mp4], joined, [current[2], length], self.fps)[1]
                _fsync_file(joined)
                location = current[:2]
                moves.append((joined, current_path))
            else:
                location = (self._new_file(f'videos/{key}') if current is None else
                            _v3.next_file(*current[:2], int(self.info['chunks_size'])))
                start = 0.0
                moves.append((episode_mp4, self._path(self.info['video_path'], location, key)))
            frames_end = int(round(start * self.fps)) + length
            video_files[key] = (location[0], location[1], frames_end)
            row.update({f'videos/{key}/chunk_index': location[0], f'videos/{key}/file_index': location[1],
                        f'videos/{key}/from_timestamp': start, f'videos/{key}/to_timestamp': frames_end / self.fps})

        if new_tasks:
            _v3.write_tasks(commit / 'tasks.parquet', sorted(self._tasks, key=self._tasks.__getitem__))
            moves.append((commit / 'tasks.parquet', self.root / _v3.TASKS_PATH))
        row.update(_v3.stats_columns(ep_stats))
        meta_file = self._meta_file()
        row.update({'meta/episodes/chunk_index': meta_file[0], 'meta/episodes/file_index': meta_file[1]})
        rows = [r for r in self._episodes
                if (int(r['meta/episodes/chunk_index']), int(r['meta/episodes/file_index'])) == meta_file]
        _v3.write_parquet_atomic(commit / 'episodes.parquet', _v3.episodes_table(rows + [row]))
        moves.append((commit / 'episodes.parquet', self._path(_v3.EPISODES_PATH, meta_file)))
        stats = _stats.aggregate_stats(self._episode_stats + [ep_stats])
        _layout.write_json_atomic(commit / 'stats.json', _stats.stats_to_json(stats))
        moves.append((commit / 'stats.json', self.root / _layout.STATS_PATH))
        info = self._counted_info(self.num_episodes + 1, self._num_frames + length)
        _layout.write_json_atomic(commit / 'info.json', info)
        moves.append((commit / 'info.json', self.root / _layout.INFO_PATH))
        logger.debug('save_episode %d: %s', index, 'prepared')

        journal = {'episode_index': index,
                   'moves': [[str(src.relative_to(self.root)), str(dst.relative_to(self.root))] for src, dst in moves]}
        _layout.write_json_atomic(commit / _JOURNAL, journal)
        logger.debug('save_episode %d: %s', index, 'committed')
        _apply_journal(self.root)
        shutil.rmtree(commit, ignore_errors=True)
        logger.debug('save_episode %d: %s', index, 'applied')

        self._episodes.append(row)
        self._episode_stats.append(ep_stats)
        self._num_frames += length
        self._data_file, self._video_files, self.info = data_file, video_files, info
        shutil.rmtree(self._ep_dir, ignore_errors=True)
        self._reset_buffer()
        logger.info('saved episode %d (%d frames) to %s', index, length, self.root)
        return index

    def _counted_info(self, episodes: int, frames: int) -> dict[str, Any]:
        """info.json with these counters (LeRobot v3.0 keys only)."""
        return {**self.info, 'total_episodes': episodes, 'total_frames': frames, 'total_tasks': len(self._tasks),
                'splits': {'train': f'0:{episodes}'} if episodes else {}}

    def _write_meta(self, stats: dict[str, dict[str, np.ndarray]] | None = None) -> None:
        """stats.json, then info.json with counters from the committed episodes (repairs and `finalize`)."""
        stats = stats if stats is not None else _stats.aggregate_stats(self._episode_stats)
        _layout.write_json_atomic(self.root / _layout.STATS_PATH, _stats.stats_to_json(stats))
        self.info = self._counted_info(self.num_episodes, self._num_frames)
        _layout.write_json_atomic(self.root / _layout.INFO_PATH, self.info)

    def _numeric_tables(self) -> list[dict[str, np.ndarray]]:
        numeric = _layout.numeric_features(self.features)
        files = dict.fromkeys((int(r['data/chunk_index']), int(r['data/file_index'])) for r in self._episodes)
        return [read_episode_table(self._path(self.info['data_path'], f), numeric) for f in files]

    # ------------------------------------------------------------------------------------------------ repair
    @staticmethod
    def _repair(root: Path, info: dict[str, Any]) -> None:
        """Roll a committed journal forward, drop prepared files and files no committed episode names."""
        if (root / _layout.TMP_DIR / _COMMIT_DIR / _JOURNAL).is_file():
            logger.warning('%s: completing the commit of an episode that a killed writer left half-applied', root)
            _apply_journal(root)
        shutil.rmtree(root / _layout.TMP_DIR, ignore_errors=True)
        rows = _v3.read_episodes(root)
        named = set()
        for row in rows:
            named.add(info['data_path'].format(chunk_index=row['data/chunk_index'], file_index=row['data/file_index']))
            named.add(_v3.EPISODES_PATH.format(chunk_index=row['meta/episodes/chunk_index'],
                                               file_index=row['meta/episodes/file_index']))
            for key in _layout.image_keys(info['features']):
                if info['features'][key]['dtype'] == 'video':
                    named.add(info['video_path'].format(video_key=key, chunk_index=row[f'videos/{key}/chunk_index'],
                                                        file_index=row[f'videos/{key}/file_index']))
        for folder, pattern in (('data', '*/*.parquet'), ('videos', '*/*/*.mp4'), (_v3.EPISODES_DIR, '*/*.parquet')):
            for path in sorted((root / folder).glob(pattern)) if (root / folder).is_dir() else []:
                if str(path.relative_to(root)) not in named:
                    logger.warning('removing %s, which no committed episode uses', path)
                    path.unlink()
        missing = sorted(name for name in named if not (root / name).is_file())
        if missing:
            raise FileNotFoundError(f'{str(root)!r}: committed episodes use the missing file(s) {missing}')


def _apply_journal(root: Path) -> None:
    """Do (or redo) the renames of `.tmp/commit/journal.json`, in order, then remove the journal."""
    journal_path = root / _layout.TMP_DIR / _COMMIT_DIR / _JOURNAL
    journal = json.loads(journal_path.read_text())
    for src, dst in journal['moves']:
        source, target = root / src, root / dst
        if source.exists():  # a rename already done by a killed writer is skipped
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            _layout.fsync_dir(target.parent)
    journal_path.unlink()
    _layout.fsync_dir(journal_path.parent)
