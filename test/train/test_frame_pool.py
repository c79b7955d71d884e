"""Oversampling frames: the first ones of each episode (DataConfig.early_frames / early_frames_repeat) and the ones
only the instruction tells apart (DataConfig.ambiguous_frames_repeat)."""

import collections
import itertools

import logging

import numpy as np
import pytest

from maps_vla.data.dataset import Dataset, EpisodeInfo
from maps_vla.data.writer import DatasetWriter
from maps_vla.train.configuration_train import DataConfig
from maps_vla.train.frame_pool import ambiguous_frames, frame_pool
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


_FEATURES = {
    'observation.images.third_person': {'dtype': 'image', 'shape': (8, 8, 3), 'names': ['height', 'width', 'channels']},
    'observation.state': {'dtype': 'float32', 'shape': (2,), 'names': ['x', 'y']},
    'action': {'dtype': 'float32', 'shape': (2,), 'names': ['dx', 'dy']},
}
LENGTH = 10


def _write(root, episodes):
    """episodes: (scene, task, action after the fork, state offset after the fork) each; the fork: actions part at
    frame 4, states at frame 6, as when one demo stops over the nearer card and its twin carries on."""
    writer = DatasetWriter.create(root, fps=10, features=_FEATURES, video=False)
    for scene, task, late_action, late_offset in episodes:
        image = np.full((8, 8, 3), 40 * scene, np.uint8)
        for t in range(LENGTH):
            state = np.array([scene + 0.1 * t, late_offset if t >= 6 else 0.0], np.float32)
            action = np.array([0.1, late_action if t >= 4 else 0.0], np.float32)
            writer.add_frame({'observation.images.third_person': image, 'observation.state': state,
                              'action': action}, task=task)
        writer.save_episode()
    writer.finalize()
    return Dataset(root)


def test_ambiguous_frames_are_those_a_twin_with_another_instruction_shares(tmp_path):
    dataset = _write(tmp_path / 'ds', [
        (1, 'put it on the left card', 0.0, 0.0),   # episodes 0 and 1: one scene, two instructions
        (1, 'put it on the right card', 2.0, 5.0),
        (2, 'put it on the left card', 2.0, 5.0),   # another scene: no twin
        (3, 'put it on the left card', 0.0, 0.0),   # one scene, one instruction twice: not told apart by words
        (3, 'put it on the left card', 2.0, 5.0),
    ])
    # chunks of 3 actions part from frame 2 (covering frame 4); the states stay equal up to frame 5
    expected = [t for t in range(2, 6)] + [LENGTH + t for t in range(2, 6)]
    assert ambiguous_frames(dataset, chunk_size=3) == expected
    # a one-action chunk parts only where the actions do
    assert ambiguous_frames(dataset, chunk_size=1) == [4, 5, LENGTH + 4, LENGTH + 5]
    with pytest.raises(IndexError, match='episode 5 is out of range'):
        dataset.numeric_episode(5)


def test_the_pool_adds_ambiguous_and_early_repeats(tmp_path):
    dataset = _write(tmp_path / 'ds', [(1, 'left', 0.0, 0.0), (1, 'right', 2.0, 5.0)])
    counts = collections.Counter(frame_pool(dataset, chunk_size=1, early=5, early_repeat=2, ambiguous_repeat=3))
    # frame 4 is early (x2) and ambiguous (x3): 1 + 1 + 2 draws; 5 only ambiguous; 0 only early; 7 neither
    assert [counts[i] for i in (0, 4, 5, 7)] == [2, 4, 3, 1]
    assert frame_pool(dataset, chunk_size=1) is None


def test_a_pool_without_twins_warns_and_repeats_nothing(tmp_path, caplog):
    dataset = _write(tmp_path / 'ds', [(1, 'left', 0.0, 0.0), (2, 'right', 2.0, 5.0)])
    with caplog.at_level(logging.WARNING, logger='maps_vla.train.frame_pool'):
        assert frame_pool(dataset, chunk_size=3, ambiguous_repeat=4) is None
    assert 'no ambiguous frames' in caplog.text and '--all-targets' in caplog.text


def test_the_pool_order_is_the_one_earlier_runs_drew():
    # the sampler permutes the pool by position, so its order fixes every batch of a seeded run
    assert early_frame_pool(_Episodes([3, 2]), early_frames=2, repeat=3) == [0, 1, 2, 3, 4, 0, 0, 1, 1, 3, 3, 4, 4]
