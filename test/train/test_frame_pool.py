"""Oversampling frames: the first ones of each episode (DataConfig.early_frames / early_frames_repeat) and the ones
only the instruction tells apart (DataConfig.ambiguous_frames_repeat; found by test/data/test_twins.py's code)."""

import collections
import itertools

import logging

import pytest

from maps_vla.data.dataset import EpisodeInfo
from maps_vla.train.configuration_train import DataConfig
from maps_vla.train.frame_pool import frame_pool
from maps_vla.train.trainer import _BatchSampler


def early_frame_pool(dataset, early_frames, repeat):
    return frame_pool(dataset, chunk_size=1, early=early_frames, early_repeat=repeat)


class _Episodes:
    """The two things frame_pool reads for early frames of a Dataset: its length and its episodes."""

    def __init__(self, lengths):
        starts = list(itertools.accumulate([0] + lengths))
        self.episodes = [EpisodeInfo(i, (), n, starts[i], starts[i + 1]) for i, n in enumerate(lengths)]

    def __len__(self):
        return self.episodes[-1].to_index


def test_the_pool_repeats_the_first_frames_of_every_episode():
    pool = early_frame_pool(_Episodes([5, 2, 4]), early_frames=3, repeat=4)
    counts = collections.Counter(pool)
    # episode 0: frames 0-4 (0, 1, 2 early); episode 1: frames 5-6 (both early, shorter than 3); episode 2: 7-10
    assert [counts[i] for i in range(11)] == [4, 4, 4, 1, 1, 4, 4, 4, 4, 4, 1]


def test_no_pool_without_repeats():
    assert early_frame_pool(_Episodes([5]), early_frames=0, repeat=4) is None
    assert early_frame_pool(_Episodes([5]), early_frames=3, repeat=1) is None


def test_batches_draw_the_pool_and_stay_a_function_of_seed_and_step():
    pool = early_frame_pool(_Episodes([10] * 20), early_frames=2, repeat=5)  # 40 early frames x 5 + 160 others
    batches = list(itertools.islice(iter(_BatchSampler(200, 8, seed=3, start=0, rank=0, world=1, pool=pool)), 90))
    drawn = collections.Counter(i for b in batches for i in b)
    early = sum(n for i, n in drawn.items() if i % 10 < 2)
    assert early / sum(drawn.values()) == pytest.approx(200 / 360, abs=0.05)
    resumed = iter(_BatchSampler(200, 8, seed=3, start=50, rank=0, world=1, pool=pool))
    assert next(resumed) == batches[50]


def test_without_a_pool_every_index_comes_once_per_epoch():
    epoch = list(itertools.islice(iter(_BatchSampler(24, 8, seed=0, start=0, rank=0, world=1)), 3))
    assert sorted(i for b in epoch for i in b) == list(range(24))


def test_config_rejects_negative_early_frames():
    with pytest.raises(ValueError, match='early_frames'):
        DataConfig(early_frames=-1)
    with pytest.raises(ValueError, match='early_frames_repeat'):
        DataConfig(early_frames=3, early_frames_repeat=0)


def test_config_rejects_ambiguous_frames_repeat_below_one():
    with pytest.raises(ValueError, match='ambiguous_frames_repeat'):
        DataConfig(ambiguous_frames_repeat=0)


def test_the_pool_adds_ambiguous_and_early_repeats(tmp_path, write_twins):
    dataset = write_twins(tmp_path / 'ds', [(1, 'left', 0.0, 0.0), (1, 'right', 2.0, 5.0)])
    counts = collections.Counter(frame_pool(dataset, chunk_size=1, early=5, early_repeat=2, ambiguous_repeat=3))
    # frame 4 is early (x2) and ambiguous (x3): 1 + 1 + 2 draws; 5 only ambiguous; 0 only early; 7 neither
    assert [counts[i] for i in (0, 4, 5, 7)] == [2, 4, 3, 1]
    assert frame_pool(dataset, chunk_size=1) is None


def test_a_pool_without_twins_warns_and_repeats_nothing(tmp_path, caplog, write_twins):
    dataset = write_twins(tmp_path / 'ds', [(1, 'left', 0.0, 0.0), (2, 'right', 2.0, 5.0)])
    with caplog.at_level(logging.WARNING, logger='maps_vla.train.frame_pool'):
        assert frame_pool(dataset, chunk_size=3, ambiguous_repeat=4) is None
    assert 'no ambiguous frames' in caplog.text and '--all-targets' in caplog.text


def test_the_pool_order_is_the_one_earlier_runs_drew():
    # the sampler permutes the pool by position, so its order fixes every batch of a seeded run
    assert early_frame_pool(_Episodes([3, 2]), early_frames=2, repeat=3) == [0, 1, 2, 3, 4, 0, 0, 1, 1, 3, 3, 4, 4]
