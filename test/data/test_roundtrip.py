"""Write -> read round trips in PNG (exact) and video (PSNR-bounded) mode, timestamps, and sample() chunks."""

import json

import numpy as np
import pytest

from maps_vla.data import ACTION_MASK, Dataset, DatasetWriter, VideoConfig, psnr
from maps_vla.data.video import VideoEncoder, read_video, read_video_frames


def _stack(frames, key):
    return np.stack([f[key] for f in frames])


@pytest.mark.parametrize('version', ['v2.1', 'v3.0'])
def test_png_round_trip_is_exact(write_dataset, helpers, version):
    root, episodes = write_dataset(video=False, lengths=(5, 7), tasks=['pick', 'place'], codebase_version=version)
    ds = Dataset(root)
    assert len(ds) == 12 and ds.num_episodes == 2 and ds.tasks == ['pick', 'place']
    assert ds.info['codebase_version'] == version and ds.info['video_path'] is None
    assert 'image_path' not in ds.info and not (root / 'images').exists()  # frames inside the Parquet files
    for i, frames in enumerate(episodes):
        ep = ds.get_episode(i)
        for key in helpers.CAMERAS + ('observation.state', 'action'):
            expected = _stack(frames, key)
            assert ep[key].dtype == expected.dtype
            np.testing.assert_array_equal(ep[key], expected, err_msg=key)
        assert ep['task'] == [['pick', 'place'][i]] * len(frames)
        np.testing.assert_array_equal(ep['task_index'][:, 0], i)
        np.testing.assert_array_equal(ep['frame_index'][:, 0], np.arange(len(frames)))
        np.testing.assert_array_equal(ep['episode_index'][:, 0], i)
    np.testing.assert_array_equal(np.concatenate([ds.get_episode(i)['index'] for i in range(2)])[:, 0], np.arange(12))


def test_timestamps_are_frame_index_over_fps(write_dataset):
    root, _ = write_dataset(video=False, lengths=(40,))
    ts = Dataset(root).get_episode(0)['timestamp'][:, 0]
    assert ts.dtype == np.float32
    np.testing.assert_array_equal(ts, (np.arange(40) / 10).astype(np.float32))
    np.testing.assert_allclose(np.diff(ts.astype(np.float64)), 0.1, atol=1e-6)  # LeRobot tolerates 1e-4 s


def test_video_round_trip_psnr_and_exact_arrays(write_dataset, helpers):
    root, episodes = write_dataset(video=True, lengths=(8, 11), codebase_version='v2.1')
    ds = Dataset(root)
    info = json.loads((root / 'meta' / 'info.json').read_text())
    assert info['total_videos'] == 4 and info['features'][helpers.CAMERAS[0]]['dtype'] == 'video'
    assert info['features'][helpers.CAMERAS[0]]['info']['video.codec'] == 'h264'
    for i, frames in enumerate(episodes):
        ep = ds.get_episode(i)
        for key in ('observation.state', 'action'):
            np.testing.assert_array_equal(ep[key], _stack(frames, key))
        for key in helpers.CAMERAS:
            video = root / f'videos/chunk-000/{key}/episode_{i:06d}.mp4'
            assert len(read_video(video, 10)) == len(frames)  # same frame count back
            assert ep[key].shape == _stack(frames, key).shape
            assert psnr(ep[key], _stack(frames, key)) > 28.0, key  # crf 18 yuv420p; tiny frames lose most


@pytest.mark.parametrize('pix_fmt, bound', [('yuv420p', 40.0), ('yuv444p', 44.0)])
def test_video_psnr_at_policy_resolution(helpers, tmp_path, pix_fmt, bound):
    rng = np.random.default_rng(0)
    frames = np.stack([helpers.smooth_image(rng, 224, 224) for _ in range(6)])
    encoder = VideoEncoder(tmp_path / 'v.mp4', 10, 224, 224, VideoConfig(pix_fmt=pix_fmt))
    for frame in frames:
        encoder.add(frame)
    encoder.close()
    decoded = read_video(tmp_path / 'v.mp4', 10)
    assert decoded.shape == frames.shape
    assert bound < psnr(decoded, frames) < float('inf')


def test_lossless_video_is_exact(write_dataset, helpers):
    root, episodes = write_dataset(video=True, lengths=(6,), video_config=VideoConfig.lossless())
    ep = Dataset(root).get_episode(0)
    for key in helpers.CAMERAS:
        np.testing.assert_array_equal(ep[key], _stack(episodes[0], key))


def test_random_access_frames_match_full_decode(write_dataset, helpers):
    root, _ = write_dataset(video=True, lengths=(12,), codebase_version='v2.1')
    path = root / f'videos/chunk-000/{helpers.CAMERAS[0]}/episode_000000.mp4'
    full = read_video(path, 10)
    np.testing.assert_array_equal(read_video_frames(path, 10, [7, 0, 11, 7]), full[[7, 0, 11, 7]])
    with pytest.raises(IndexError, match='12'):
        read_video_frames(path, 10, [12])


@pytest.mark.parametrize('version', ['v2.1', 'v3.0'])
@pytest.mark.parametrize('video', [False, True])
def test_sample_chunk_padding_mask(write_dataset, helpers, video, version):
    root, episodes = write_dataset(video=video, lengths=(5, 6), tasks=['pick', 'place'], codebase_version=version)
    ds = Dataset(root)
    actions = _stack(episodes[1], 'action')
    s = ds.sample(5 + 3, chunk_size=4)  # frame 3 of episode 1 (length 6): 3 real actions, then padding
    assert s['task'] == 'place'
    np.testing.assert_array_equal(s[ACTION_MASK], [True, True, True, False])
    np.testing.assert_array_equal(s['action'], actions[[3, 4, 5, 5]])
    np.testing.assert_array_equal(s['observation.state'], episodes[1][3]['observation.state'])
    assert s['frame_index'][0] == 3 and s['episode_index'][0] == 1 and s['index'][0] == 8
    full = ds.get_episode(1)
    for key in helpers.CAMERAS:
        np.testing.assert_array_equal(s[key], full[key][3])  # seeked frame == frame of the full decode
    first = ds.sample(0, chunk_size=3)
    assert first[ACTION_MASK].all() and first['task'] == 'pick'
    last = ds.sample(4, chunk_size=3)
    np.testing.assert_array_equal(last[ACTION_MASK], [True, False, False])
    np.testing.assert_array_equal(last['action'], np.repeat(_stack(episodes[0], 'action')[4:5], 3, axis=0))
    with pytest.raises(IndexError):
        ds.sample(11)
    with pytest.raises(ValueError, match='chunk_size'):
        ds.sample(0, chunk_size=0)


def test_torch_adapter_batches(write_dataset, helpers):
    torch = pytest.importorskip('torch')
    from maps_vla.data.torch_dataset import TorchDataset

    root, _ = write_dataset(video=False, lengths=(4, 3))
    loader = torch.utils.data.DataLoader(TorchDataset(root, chunk_size=5), batch_size=7, shuffle=False)
    batch = next(iter(loader))
    assert batch[helpers.CAMERAS[0]].shape == (7, 3, 32, 48) and batch[helpers.CAMERAS[0]].dtype == torch.float32
    assert 0.0 <= float(batch[helpers.CAMERAS[0]].min()) and float(batch[helpers.CAMERAS[0]].max()) <= 1.0
    assert batch['action'].shape == (7, 5, 3) and batch[ACTION_MASK].dtype == torch.bool
    assert batch[ACTION_MASK].sum(dim=1).tolist() == [4, 3, 2, 1, 3, 2, 1]
    assert batch['task'] == ['pick the cube'] * 7


@pytest.mark.parametrize('version', ['v2.1', 'v3.0'])
def test_resume_appends(write_dataset, helpers, version):
    root, episodes = write_dataset(video=True, lengths=(4, 5), codebase_version=version)
    rng = np.random.default_rng(7)
    with DatasetWriter.open(root) as writer:
        assert writer.num_episodes == 2 and writer.num_frames == 9
        new = helpers.make_episode(rng, 3, task='stack')
        for frame in new:
            writer.add_frame(frame)
        assert writer.save_episode() == 2
    ds = Dataset(root)
    assert ds.num_episodes == 3 and len(ds) == 12 and ds.tasks == ['pick the cube', 'stack']
    ep = ds.get_episode(2)
    np.testing.assert_array_equal(ep['index'][:, 0], [9, 10, 11])
    np.testing.assert_array_equal(ep['action'], _stack(new, 'action'))
    np.testing.assert_array_equal(ds.get_episode(0)['action'], _stack(episodes[0], 'action'))
    info = ds.info
    totals = (info['total_episodes'], info['total_frames'], info['total_tasks'], info['splits'])
    assert totals == (3, 12, 2, {'train': '0:3'})


def test_discard_episode(write_dataset, helpers, tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / 'ds'
    with DatasetWriter.create(root, 10, helpers.FEATURES) as writer:
        for frame in helpers.make_episode(rng, 3, task='discarded task'):
            writer.add_frame(frame)
        writer.discard_episode()
        assert writer.episode_frames == 0
        kept = helpers.make_episode(rng, 2)
        for frame in kept:
            writer.add_frame(frame)
        writer.save_episode()
    ds = Dataset(root)
    assert ds.num_episodes == 1 and ds.tasks == ['pick the cube']
    np.testing.assert_array_equal(ds.get_episode(0)['action'], _stack(kept, 'action'))
    assert not (root / '.tmp').exists()


def test_from_config_creates_then_resumes(tmp_path, helpers):
    from maps_vla.config import from_dict
    from maps_vla.data import DatasetConfig

    cfg = from_dict(DatasetConfig, {'root': str(tmp_path / 'ds'), 'video': True,
                                    'video_codec': {'pix_fmt': 'yuv444p', 'crf': 10}})
    rng = np.random.default_rng(0)
    for resume in (False, True):
        cfg = DatasetConfig(**{**cfg.__dict__, 'resume': resume})
        with DatasetWriter.from_config(cfg, helpers.FEATURES) as writer:
            for frame in helpers.make_episode(rng, 2):
                writer.add_frame(frame)
            writer.save_episode()
    ds = Dataset(tmp_path / 'ds')
    assert ds.num_episodes == 2
    assert ds.features[helpers.CAMERAS[0]]['info']['video.pix_fmt'] == 'yuv444p'
    with pytest.raises(ValueError, match='fps'):
        DatasetConfig(fps=0)
