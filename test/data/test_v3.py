"""LeRobot v3.0: the published layout (files, columns, dtypes, metadata) checked directly and by lerobot-doctor,
many episodes per file, file size limits, crash safety, and LeRobot-style v2.1 datasets (stats without quantiles,
frames inside the Parquet files)."""

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from maps_vla.data import Dataset, DatasetWriter

# LeRobot's meta/info.json keys of a v3.0 dataset (lerobot/datasets/utils.py DatasetInfo, lerobot 0.4 - 0.6)
INFO_KEYS = {'codebase_version', 'robot_type', 'total_episodes', 'total_frames', 'total_tasks', 'chunks_size',
             'data_files_size_in_mb', 'video_files_size_in_mb', 'fps', 'splits', 'data_path', 'video_path',
             'features'}


def _stack(frames, key):
    return np.stack([f[key] for f in frames])


def check_published_v3(root, features, lengths, video):
    """The dataset at `root` has LeRobot v3.0's files, columns and dtypes (one data / video file per camera)."""
    info = json.loads((root / 'meta/info.json').read_text())
    assert set(info) == INFO_KEYS
    assert info['codebase_version'] == 'v3.0' and info['chunks_size'] == 1000
    assert info['data_path'] == 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
    assert info['video_path'] == ('videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
                                  if video else None)
    assert (info['total_episodes'], info['total_frames']) == (len(lengths), sum(lengths))
    cameras = [k for k in features if k.startswith('observation.images.')]
    for key in cameras:
        assert info['features'][key]['dtype'] == ('video' if video else 'image')
    for key in ('timestamp', 'frame_index', 'episode_index', 'index', 'task_index'):
        assert key in info['features']

    tasks = pq.read_table(root / 'meta/tasks.parquet')
    assert tasks.schema.field('task_index').type == pa.int64() and tasks.schema.field('task').type == pa.string()
    assert json.loads(tasks.schema.metadata[b'pandas'])['index_columns'] == ['task']  # the task string is the index

    meta_files = sorted((root / 'meta/episodes').glob('*/*.parquet'))
    assert [str(p.relative_to(root)) for p in meta_files] == ['meta/episodes/chunk-000/file-000.parquet']
    meta = pq.read_table(meta_files[0])
    types = {f.name: f.type for f in meta.schema}
    expected = {'episode_index': pa.int64(), 'tasks': pa.list_(pa.string()), 'length': pa.int64(),
                'data/chunk_index': pa.int64(), 'data/file_index': pa.int64(), 'dataset_from_index': pa.int64(),
                'dataset_to_index': pa.int64(), 'meta/episodes/chunk_index': pa.int64(),
                'meta/episodes/file_index': pa.int64(), 'stats/action/mean': pa.list_(pa.float64()),
                'stats/action/count': pa.list_(pa.int64())}
    for key in cameras if video else []:
        expected.update({f'videos/{key}/chunk_index': pa.int64(), f'videos/{key}/file_index': pa.int64(),
                         f'videos/{key}/from_timestamp': pa.float64(), f'videos/{key}/to_timestamp': pa.float64()})
    for key in cameras:
        expected[f'stats/{key}/mean'] = pa.list_(pa.list_(pa.list_(pa.float64())))  # (3, 1, 1)
    for column, kind in expected.items():
        assert types.get(column) == kind, (column, types.get(column))
    rows = meta.to_pylist()
    ends = np.cumsum(lengths).tolist()
    assert [r['dataset_to_index'] for r in rows] == ends
    assert [r['dataset_from_index'] for r in rows] == [0] + ends[:-1]
    assert [r['length'] for r in rows] == list(lengths)

    data_files = sorted((root / 'data').rglob('*.parquet'))
    assert [str(p.relative_to(root)) for p in data_files] == ['data/chunk-000/file-000.parquet']
    data = pq.ParquetFile(data_files[0])
    assert data.metadata.num_rows == sum(lengths) and data.num_row_groups == len(lengths)  # a row group per episode
    schema = data.schema_arrow
    assert schema.field('observation.state').type == pa.list_(pa.float32(), 5)
    assert schema.field('action').type == pa.list_(pa.float32(), 3)
    assert schema.field('timestamp').type == pa.float32() and schema.field('index').type == pa.int64()
    hf = json.loads(schema.metadata[b'huggingface'])['info']['features']
    for key in cameras:
        if video:
            assert key not in schema.names
            mp4s = sorted((root / 'videos' / key).rglob('*.mp4'))
            assert [str(p.relative_to(root / 'videos' / key)) for p in mp4s] == ['chunk-000/file-000.mp4']
        else:
            assert schema.field(key).type == pa.struct([('bytes', pa.binary()), ('path', pa.string())])
            assert hf[key] == {'_type': 'Image'}
    return rows


@pytest.mark.parametrize('video', [True, False])
def test_v3_published_format_and_round_trip(write_dataset, helpers, video):
    lengths = (4, 6, 5)
    root, episodes = write_dataset(video=video, lengths=lengths, tasks=['pick', 'place', 'pick'])
    rows = check_published_v3(root, helpers.FEATURES, lengths, video)
    assert [r['tasks'] for r in rows] == [['pick'], ['place'], ['pick']]
    if video:  # many episodes per mp4, one after the other in time
        key = helpers.CAMERAS[0]
        assert [r[f'videos/{key}/from_timestamp'] for r in rows] == [0.0, 0.4, 1.0]
        assert [r[f'videos/{key}/to_timestamp'] for r in rows] == [0.4, 1.0, 1.5]
    else:  # the PNG inside the Parquet file decodes to the frame written
        table = pq.read_table(root / 'data/chunk-000/file-000.parquet', columns=[helpers.CAMERAS[1]])
        png = table.column(helpers.CAMERAS[1])[5].as_py()
        assert png['path'] == 'frame-000001.png'
        image = cv2.imdecode(np.frombuffer(png['bytes'], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        np.testing.assert_array_equal(image, episodes[1][1][helpers.CAMERAS[1]])
    ds = Dataset(root)
    assert ds.version == 'v3.0' and ds.tasks == ['pick', 'place'] and len(ds) == 15
    for i, frames in enumerate(episodes):
        ep = ds.get_episode(i)
        for key in ('observation.state', 'action'):
            np.testing.assert_array_equal(ep[key], _stack(frames, key))
        np.testing.assert_array_equal(ep['frame_index'][:, 0], np.arange(len(frames)))
        np.testing.assert_array_equal(ep['index'][:, 0], np.arange(rows[i]['dataset_from_index'],
                                                                   rows[i]['dataset_to_index']))
        for key in helpers.CAMERAS:
            if video:
                assert np.abs(ep[key].astype(int) - _stack(frames, key)).mean() < 6, key
            else:
                np.testing.assert_array_equal(ep[key], _stack(frames, key))
    # random access lands on the episode's frames inside the shared mp4 / Parquet file
    full = ds.get_episode(2)
    for frame in (4, 0, 3):
        sample = ds.sample(10 + frame)
        for key in helpers.CAMERAS:
            np.testing.assert_array_equal(sample[key], full[key][frame])
    stats = ds.stats
    assert stats['action']['count'].tolist() == [15]
    np.testing.assert_allclose(stats['action']['mean'], np.concatenate([_stack(f, 'action') for f in episodes]).mean(0),
                               rtol=1e-5)


def test_file_size_limits_start_new_files(tmp_path, helpers, monkeypatch):
    from maps_vla.data import writer_v3

    monkeypatch.setattr(writer_v3, '_MB', 3000)  # '1 MB' = 3000 bytes: each file holds an episode or two
    rng = np.random.default_rng(0)
    root, episodes = tmp_path / 'ds', []
    with DatasetWriter.create(root, 10, helpers.FEATURES, data_files_size_in_mb=1,
                              video_files_size_in_mb=1) as writer:
        for length in (3, 4, 5, 3, 4):
            episodes.append(helpers.make_episode(rng, length))
            for frame in episodes[-1]:
                writer.add_frame(frame)
            writer.save_episode()
    rows = [r for p in sorted((root / 'meta/episodes').rglob('*.parquet')) for r in pq.read_table(p).to_pylist()]
    assert len({r['data/file_index'] for r in rows}) > 1
    key = helpers.CAMERAS[0]
    assert len({r[f'videos/{key}/file_index'] for r in rows}) > 1
    assert len(list((root / 'data').rglob('*.parquet'))) == len({r['data/file_index'] for r in rows})
    ds = Dataset(root)
    for i, frames in enumerate(episodes):
        ep = ds.get_episode(i)
        np.testing.assert_array_equal(ep['action'], _stack(frames, 'action'))
        assert len(ep[key]) == len(frames)


def test_resumed_session_starts_new_files_and_keeps_packing(write_dataset, helpers):
    root, episodes = write_dataset(video=True, lengths=(3, 4))
    rng = np.random.default_rng(4)
    new = [helpers.make_episode(rng, n, task='stack') for n in (2, 5)]
    with DatasetWriter.open(root) as writer:
        for frames in new:
            for frame in frames:
                writer.add_frame(frame)
            writer.save_episode()
    rows = pq.read_table(root / 'meta/episodes/chunk-000/file-000.parquet').to_pylist()
    assert [r['data/file_index'] for r in rows] == [0, 0, 1, 1]  # LeRobot also starts a new file on resume
    key = helpers.CAMERAS[1]
    assert [r[f'videos/{key}/from_timestamp'] for r in rows] == [0.0, 0.3, 0.0, 0.2]
    ds = Dataset(root)
    assert ds.tasks == ['pick the cube', 'stack'] and ds.num_episodes == 4
    for i, frames in enumerate(episodes + new):
        np.testing.assert_array_equal(ds.get_episode(i)['action'], _stack(frames, 'action'))


def _doctor(root):
    """lerobot-doctor's report on `root`: check name -> (severity, messages)."""
    from lerobot_doctor.dataset_loader import load_local
    from lerobot_doctor.runner import run_checks

    report = run_checks(load_local(Path(root)))
    return {r.name: (r.severity.value, [m.message for m in r.messages]) for r in report.results}


@pytest.mark.parametrize('video', [True, False])
def test_lerobot_doctor_passes_what_we_write(write_dataset, video):
    pytest.importorskip('lerobot_doctor')
    root, _ = write_dataset(video=video, lengths=(12, 15, 11))
    results = _doctor(root)
    assert not [name for name, (severity, _) in results.items() if severity == 'FAIL'], results
    for name in ('Metadata & Format Compliance', 'Temporal Consistency', 'Video Integrity', 'Feature Consistency',
                 'Data Distribution', 'Portability'):
        assert results[name][0] == 'PASS', (name, results[name])
    assert 'Detected LeRobot Dataset v3 format (v3.0)' in results['Metadata & Format Compliance'][1]


def test_lerobot_doctor_catches_a_broken_dataset(write_dataset):
    """The independent check can fail: a video file with fewer frames than its episodes is reported."""
    pytest.importorskip('lerobot_doctor')
    root, _ = write_dataset(video=True, lengths=(12, 15))
    info = json.loads((root / 'meta/info.json').read_text())
    info['total_frames'] += 5
    (root / 'meta/info.json').write_text(json.dumps(info))
    assert _doctor(root)['Metadata & Format Compliance'][0] == 'FAIL'


# ------------------------------------------------------------------------------------------------ crash safety


@pytest.mark.parametrize('mode, seen, kept', [
    ('mid_episode', 2, 2), ('prepared', 2, 2), ('committed', 2, 3), ('applied', 3, 3)])
def test_v3_killed_writer_loses_at_most_the_episode_in_progress(write_dataset, helpers, mode, seen, kept):
    """`seen`: episodes a reader finds right after the kill; `kept`: after `open` repairs (a journal written
    before the kill is rolled forward). Right after the kill, before any repair, the folder is a complete
    dataset for lerobot-doctor too."""
    root, episodes = write_dataset(video=True, lengths=(3, 4))
    # a third episode in the same files first, so the killed save rewrites files that hold committed episodes
    with DatasetWriter.open(root) as writer:
        for frame in helpers.make_episode(np.random.default_rng(2), 2):
            writer.add_frame(frame)
        writer.save_episode()
    seen, kept = seen + 1, kept + 1
    helpers.kill_writer(root, mode, 'maps_vla.data.writer_v3')

    ds = Dataset(root)  # as the kill left it, no repair
    assert ds.num_episodes == seen
    for i in range(seen):
        ep = ds.get_episode(i)
        assert len(ep['action']) == len(ep[helpers.CAMERAS[0]]) == ds.episodes[i].length
    np.testing.assert_array_equal(ds.get_episode(1)['action'], _stack(episodes[1], 'action'))
    if pytest.importorskip('lerobot_doctor'):
        results = _doctor(root)
        assert not [n for n, (s, _) in results.items() if s == 'FAIL'], results
        assert results['Metadata & Format Compliance'][1][-1] == f'Episode count matches: {seen}'

    with DatasetWriter.open(root) as writer:  # repairs (rolls forward), then appends
        assert writer.num_episodes == kept
        for frame in helpers.make_episode(np.random.default_rng(9), 2):
            writer.add_frame(frame)
        assert writer.save_episode() == kept
    ds = Dataset(root)
    assert ds.num_episodes == kept + 1 and not (root / '.tmp').exists()
    indices = np.concatenate([ds.get_episode(i)['index'][:, 0] for i in range(ds.num_episodes)])
    np.testing.assert_array_equal(indices, np.arange(len(ds)))
    np.testing.assert_array_equal(ds.get_episode(0)['action'], _stack(episodes[0], 'action'))
    if kept == 4:
        assert ds.tasks == ['pick the cube', 'new task'] and ds.episodes[3].length == 4
    if pytest.importorskip('lerobot_doctor'):
        results = _doctor(root)
        assert not [n for n, (s, _) in results.items() if s == 'FAIL'], results


# ------------------------------------------------------------------------------- LeRobot-style v2.1 datasets
@pytest.mark.parametrize('version', ['v2.1', 'v3.0'])
def test_stats_without_quantiles_get_them_from_the_data(write_dataset, version):
    """LeRobot's stats hold min/max/mean/std/count only; the trainer normalises by q01/q99."""
    root, episodes = write_dataset(video=False, lengths=(20, 30), codebase_version=version)
    stats = json.loads((root / 'meta/stats.json').read_text())
    (root / 'meta/stats.json').write_text(json.dumps({k: {s: v for s, v in ft.items() if not s.startswith('q')}
                                                      for k, ft in stats.items()}))
    if version == 'v2.1':
        lines = [json.loads(line) for line in (root / 'meta/episodes_stats.jsonl').read_text().splitlines()]
        for line in lines:
            line['stats'] = {k: {s: v for s, v in ft.items() if not s.startswith('q')}
                             for k, ft in line['stats'].items()}
        (root / 'meta/episodes_stats.jsonl').write_text(''.join(json.dumps(line) + '\n' for line in lines))
    else:
        path = root / 'meta/episodes/chunk-000/file-000.parquet'
        table = pq.read_table(path)
        pq.write_table(table.select([c for c in table.column_names if not c.split('/')[-1].startswith('q')]), path)
    ds = Dataset(root)
    actions = np.concatenate([_stack(f, 'action') for f in episodes]).astype(np.float64)
    np.testing.assert_allclose(ds.stats['action']['q01'], np.quantile(actions, 0.01, axis=0))
    np.testing.assert_allclose(ds.stats['action']['q99'], np.quantile(actions, 0.99, axis=0))
    assert ds.stats['action']['count'].tolist() == [50]
    from maps_vla.train.batching import norm_stats_from_dataset

    norm = norm_stats_from_dataset(ds, use_state=True)
    np.testing.assert_allclose(norm.action_q99, np.quantile(actions, 0.99, axis=0))


def test_legacy_png_folder_datasets_still_read(write_dataset, helpers):
    """maps_vla wrote PNG files under images/ (info.json 'image_path') before v3.0; such datasets still load."""
    root, episodes = write_dataset(video=False, lengths=(3,), codebase_version='v2.1')
    info = json.loads((root / 'meta/info.json').read_text())
    info['image_path'] = 'images/{image_key}/episode_{episode_index:06d}/frame_{frame_index:06d}.png'
    (root / 'meta/info.json').write_text(json.dumps(info))
    path = root / 'data/chunk-000/episode_000000.parquet'
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(list(helpers.CAMERAS)), path)
    for key in helpers.CAMERAS:
        folder = root / 'images' / key / 'episode_000000'
        folder.mkdir(parents=True)
        for i, frame in enumerate(episodes[0]):
            cv2.imwrite(str(folder / f'frame_{i:06d}.png'), frame[key][..., ::-1])
    ep = Dataset(root).get_episode(0)
    for key in helpers.CAMERAS:
        np.testing.assert_array_equal(ep[key], _stack(episodes[0], key))


# ------------------------------------------------------------------------------------------------ video reader
@pytest.mark.parametrize('codec, options', [('libx264', {}), ('libx264', {'bf': '3', 'g': '12'}),
                                            ('libsvtav1', {})])
def test_video_reader_random_access_matches_full_decode(tmp_path, codec, options):
    """The direct packet path (x264 without B-frames, AV1 with decoder delay) and the seek fallback (B-frames)
    return the frames a full decode does, in any order, and refuse frames that are not there."""
    import av

    from maps_vla.data.video import VideoConfig, VideoEncoder, VideoReader, read_video

    if codec not in av.codecs_available:
        pytest.skip(f'{codec} not in this PyAV build')

    class Config(VideoConfig):
        def options(self):
            return {**super().options(), **options}

    config = Config(codec=codec, crf=30 if codec == 'libsvtav1' else 18,
                    preset=None if codec == 'libsvtav1' else 'veryfast')
    encoder = VideoEncoder(tmp_path / 'v.mp4', 10, 32, 32, config)
    for i in range(30):
        image = np.zeros((32, 32, 3), np.uint8)
        image[..., 0], image[i:i + 3, :, 1] = i * 8, 255
        encoder.add(image)
    encoder.close()
    full = read_video(tmp_path / 'v.mp4', 10)
    reader = VideoReader(tmp_path / 'v.mp4', 10, cache_frames=0)
    order = np.random.default_rng(0).integers(0, 30, 80).tolist() + list(range(30)) + [29, 0, 28]
    for i in order:
        np.testing.assert_array_equal(reader.frame(i), full[i], err_msg=str(i))
    np.testing.assert_array_equal(reader.frame(2, start=0.5), full[7])
    with pytest.raises(IndexError, match='no frame'):
        reader.frame(30)
    reader.close()


def test_appending_to_a_legacy_png_folder_dataset_keeps_its_layout(write_dataset, helpers):
    root, episodes = write_dataset(video=False, lengths=(3,), codebase_version='v2.1')
    info = json.loads((root / 'meta/info.json').read_text())
    info['image_path'] = 'images/{image_key}/episode_{episode_index:06d}/frame_{frame_index:06d}.png'
    (root / 'meta/info.json').write_text(json.dumps(info))
    path = root / 'data/chunk-000/episode_000000.parquet'
    pq.write_table(pq.read_table(path).drop_columns(list(helpers.CAMERAS)), path)
    for key in helpers.CAMERAS:
        folder = root / 'images' / key / 'episode_000000'
        folder.mkdir(parents=True)
        for i, frame in enumerate(episodes[0]):
            cv2.imwrite(str(folder / f'frame_{i:06d}.png'), frame[key][..., ::-1])
    new = helpers.make_episode(np.random.default_rng(3), 2)
    with DatasetWriter.open(root) as writer:
        for frame in new:
            writer.add_frame(frame)
        writer.save_episode()
    assert pq.read_schema(root / 'data/chunk-000/episode_000001.parquet').names == \
        pq.read_schema(path).names  # same columns as the old episodes: no image columns
    assert (root / 'images' / helpers.CAMERAS[0] / 'episode_000001' / 'frame_000001.png').is_file()
    ep = Dataset(root).get_episode(1)
    for key in helpers.CAMERAS:
        np.testing.assert_array_equal(ep[key], _stack(new, key))
