"""Stats against numpy: per episode, pooled, exact after finalize, and images per channel in [0, 1]."""

import json

import numpy as np
import pytest

from maps_vla.data import Dataset, DatasetWriter
from maps_vla.data.stats import QUANTILES, aggregate_stats, histogram_stats, image_histogram, numeric_stats


def _numpy_stats(x):
    return {'min': x.min(0), 'max': x.max(0), 'mean': x.mean(0), 'std': x.std(0),
            **{name: np.quantile(x, q, axis=0) for name, q in QUANTILES.items()}}


def test_histogram_stats_equal_numpy_on_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 7, 9, 3)).astype(np.uint8)
    images[..., 2] //= 4  # a skewed channel
    stats = histogram_stats(sum(image_histogram(im) for im in images), frames=5)
    pixels = images.reshape(-1, 3).astype(np.float64) / 255.0
    for name, value in _numpy_stats(pixels).items():
        assert stats[name].shape == (3, 1, 1)
        np.testing.assert_allclose(stats[name][:, 0, 0], value, rtol=1e-12, atol=1e-12, err_msg=name)
    assert stats['count'].tolist() == [5]


def test_aggregate_pools_mean_std_exactly():
    rng = np.random.default_rng(1)
    parts = [rng.normal(i, 1 + i, (n, 4)) for i, n in enumerate((5, 17, 9))]
    pooled = aggregate_stats([{'x': numeric_stats(p)} for p in parts])['x']
    everything = np.concatenate(parts)
    for name in ('min', 'max', 'mean', 'std'):
        np.testing.assert_allclose(pooled[name], _numpy_stats(everything)[name], rtol=1e-12, err_msg=name)
    assert pooled['count'].tolist() == [31]


def test_dataset_stats_match_numpy(write_dataset, helpers):
    root, episodes = write_dataset(video=False, lengths=(7, 12, 5))
    ds = Dataset(root)
    # Per-episode stats (episodes_stats.jsonl) are exact for every stat.
    for ep_stats, frames in zip(ds.episode_stats(), episodes):
        actions = np.stack([f['action'] for f in frames]).astype(np.float64)
        for name, value in _numpy_stats(actions).items():
            np.testing.assert_allclose(ep_stats['action'][name], value, rtol=1e-6, atol=1e-7, err_msg=name)
        assert ep_stats['action']['count'].tolist() == [len(frames)]
    # stats.json after finalize: exact over all frames, quantiles included.
    frames = [f for ep in episodes for f in ep]
    for key in ('action', 'observation.state'):
        values = np.stack([f[key] for f in frames]).astype(np.float64)
        for name, value in _numpy_stats(values).items():
            np.testing.assert_allclose(ds.stats[key][name], value, rtol=1e-6, atol=1e-7, err_msg=f'{key} {name}')
    np.testing.assert_allclose(ds.stats['timestamp']['max'], [1.1], rtol=1e-6)
    # Cameras: per channel in [0, 1]; min/max/mean/std exact over all pixels of all frames.
    key = helpers.CAMERAS[0]
    pixels = np.stack([f[key] for f in frames]).reshape(-1, 3).astype(np.float64) / 255.0
    for name in ('min', 'max', 'mean', 'std'):
        np.testing.assert_allclose(ds.stats[key][name][:, 0, 0], _numpy_stats(pixels)[name], rtol=1e-9,
                                   err_msg=name)
    stats_json = json.loads((root / 'meta' / 'stats.json').read_text())
    assert set(stats_json['action']) == {'min', 'max', 'mean', 'std', 'count', 'q01', 'q10', 'q50', 'q90', 'q99'}
    assert np.asarray(stats_json[key]['mean']).shape == (3, 1, 1)


def test_stats_json_is_pooled_before_finalize(tmp_path, helpers):
    rng = np.random.default_rng(2)
    writer = DatasetWriter.create(tmp_path / 'ds', 10, helpers.FEATURES, video=False)
    frames = []
    for length in (4, 9):
        for frame in helpers.make_episode(rng, length):
            writer.add_frame(frame)
            frames.append(frame)
        writer.save_episode()
    actions = np.stack([f['action'] for f in frames]).astype(np.float64)
    stats = json.loads((tmp_path / 'ds' / 'meta' / 'stats.json').read_text())['action']
    np.testing.assert_allclose(stats['mean'], actions.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats['std'], actions.std(0), rtol=1e-6)
    assert stats['count'] == [13]
    writer.finalize()
    stats = json.loads((tmp_path / 'ds' / 'meta' / 'stats.json').read_text())['action']
    np.testing.assert_allclose(stats['q01'], np.quantile(actions, 0.01, axis=0), rtol=1e-6)


def test_numeric_stats_rejects_empty():
    with pytest.raises(ValueError, match='non-empty'):
        numeric_stats(np.zeros((0, 3)))


def test_reopening_keeps_the_exact_stats(write_dataset):
    root, _ = write_dataset(video=False, lengths=(6, 8))
    before = (root / 'meta' / 'stats.json').read_bytes()
    writer = DatasetWriter.open(root)
    assert (root / 'meta' / 'stats.json').read_bytes() == before  # not replaced by pooled quantiles
    writer.finalize()
