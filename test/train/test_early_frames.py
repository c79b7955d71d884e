"""Oversampling the first frames of each episode (DataConfig.early_frames / early_frames_repeat)."""

import collections
import itertools

import pytest

from maps_vla.data.dataset import EpisodeInfo
from maps_vla.train.configuration_train import DataConfig
from maps_vla.train.trainer import _BatchSampler, early_frame_pool


class _Episodes:
    """The two things early_frame_pool reads of a Dataset: its length and its episodes."""

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
