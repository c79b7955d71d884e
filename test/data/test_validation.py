"""Clear errors for folders that are not datasets, missing files, wrong versions and bad frames."""

import json

import numpy as np
import pytest

from maps_vla.data import Dataset, DatasetWriter, VideoConfig


def test_not_a_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"is not a dataset: .*meta/info\.json"):
        Dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match=r'meta/info\.json'):
        DatasetWriter.open(tmp_path / 'missing')


def test_missing_parquet_names_the_file(write_dataset):
    root, _ = write_dataset(video=False, lengths=(3, 3), codebase_version='v2.1')
    (root / 'data/chunk-000/episode_000001.parquet').unlink()
    with pytest.raises(FileNotFoundError, match=r'data/chunk-000/episode_000001\.parquet'):
        Dataset(root)
    with pytest.raises(FileNotFoundError, match=r'episode_000001\.parquet'):
        DatasetWriter.open(root)


def test_missing_video_names_the_file(write_dataset, helpers):
    root, _ = write_dataset(video=True, lengths=(3,), codebase_version='v2.1')
    (root / f'videos/chunk-000/{helpers.CAMERAS[1]}/episode_000000.mp4').unlink()
    with pytest.raises(FileNotFoundError, match=r'wrist/episode_000000\.mp4'):
        Dataset(root)


@pytest.mark.parametrize('version', ['v1.6', 'v2.0', 'v4.0', None])
def test_wrong_version_names_info_json(write_dataset, version):
    root, _ = write_dataset(video=False, lengths=(2,))
    info = json.loads((root / 'meta/info.json').read_text())
    info['codebase_version'] = version
    (root / 'meta/info.json').write_text(json.dumps(info))
    with pytest.raises(ValueError, match=rf"info\.json' has codebase_version {version!r}"):
        Dataset(root)


def test_corrupt_info_json(write_dataset):
    root, _ = write_dataset(video=False, lengths=(2,))
    (root / 'meta/info.json').write_text('{"codebase_version": "v2.1", ')
    with pytest.raises(ValueError, match=r'info\.json.* is not valid JSON'):
        Dataset(root)


def test_create_refuses_a_non_empty_folder(write_dataset, helpers):
    root, _ = write_dataset(video=False, lengths=(2,))
    with pytest.raises(FileExistsError, match='DatasetWriter.open'):
        DatasetWriter.create(root, 10, helpers.FEATURES)


def test_one_writer_per_folder(tmp_path, helpers):
    writer = DatasetWriter.create(tmp_path / 'ds', 10, helpers.FEATURES)
    with pytest.raises(RuntimeError, match='another DatasetWriter'):
        DatasetWriter.open(tmp_path / 'ds')
    writer.finalize()
    DatasetWriter.open(tmp_path / 'ds').finalize()


def test_bad_frames_and_calls(tmp_path, helpers):
    rng = np.random.default_rng(0)
    frame = helpers.make_episode(rng, 1)[0]
    with DatasetWriter.create(tmp_path / 'ds', 10, helpers.FEATURES) as writer:
        with pytest.raises(RuntimeError, match='at least one add_frame'):
            writer.save_episode()
        with pytest.raises(ValueError, match=r"missing \['action'\]"):
            writer.add_frame({k: v for k, v in frame.items() if k != 'action'})
        with pytest.raises(ValueError, match=r"unknown \['extra'\]"):
            writer.add_frame({**frame, 'extra': 1})
        with pytest.raises(ValueError, match=r"'action' must have shape \(3,\)"):
            writer.add_frame({**frame, 'action': np.zeros(4)})
        with pytest.raises(TypeError, match='uint8'):
            writer.add_frame({**frame, helpers.CAMERAS[0]: frame[helpers.CAMERAS[0]].astype(np.float32)})
        with pytest.raises(ValueError, match='non-finite'):
            writer.add_frame({**frame, 'action': np.array([0, np.nan, 0])})
        with pytest.raises(TypeError, match='task'):
            writer.add_frame({k: v for k, v in frame.items() if k != 'task'})
        assert writer.episode_frames == 0
    with pytest.raises(RuntimeError, match='finalized'):
        writer.add_frame(frame)


@pytest.mark.parametrize('features, match', [
    ({'action': {'dtype': 'float32'}}, 'must be a dict with "dtype" and "shape"'),
    ({'action': {'dtype': 'float32', 'shape': (2, 3)}}, 'must be 1-D'),
    ({'action': {'dtype': 'float16', 'shape': (2,)}}, "dtype 'float16'"),
    ({'observation.images.a': {'dtype': 'video', 'shape': (8, 8, 1)}}, r'shape \(H, W, 3\)'),
    ({'observation.images.a': {'dtype': 'video', 'shape': (8, 8, 3)}}, 'at least one numeric'),
    ({'action': {'dtype': 'float32', 'shape': (2,)}, 'timestamp': {'dtype': 'float64', 'shape': (1,)}},
     'added by the writer'),
])
def test_bad_features(tmp_path, features, match):
    with pytest.raises(ValueError, match=match):
        DatasetWriter.create(tmp_path / 'ds', 10, features)


def test_bad_config_values(tmp_path, helpers):
    with pytest.raises(ValueError, match='fps must be a positive integer'):
        DatasetWriter.create(tmp_path / 'ds', 7.5, helpers.FEATURES)
    with pytest.raises(ValueError, match="codec 'nope'"):
        VideoConfig(codec='nope')
    odd = {**helpers.FEATURES, helpers.CAMERAS[0]: {'dtype': 'video', 'shape': (31, 48, 3)}}
    with pytest.raises(ValueError, match='yuv444p'):
        DatasetWriter.create(tmp_path / 'odd', 10, odd)
    DatasetWriter.create(tmp_path / 'odd444', 10, odd, video_config=VideoConfig(pix_fmt='yuv444p')).finalize()
