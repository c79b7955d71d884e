"""maps_vla.data.twins: one scene recorded once per instruction, and the frames only the instruction tells apart."""

import pytest

from maps_vla.data.twins import ambiguous_frames, scene_twins

LENGTH = 10  # test/conftest.py's TWIN_LENGTH

EPISODES = [
    (1, 'put it on the left card', 0.0, 0.0),   # episodes 0 and 1: one scene, two instructions
    (1, 'put it on the right card', 2.0, 5.0),
    (2, 'put it on the left card', 2.0, 5.0),   # another scene: no twin
    (3, 'put it on the left card', 0.0, 0.0),   # one scene, one instruction twice: not told apart by words
    (3, 'put it on the left card', 2.0, 5.0),
    (1, 'put it on the far card', 2.0, 5.0),    # scene 1 again, later and with a third instruction
]


def test_twins_are_a_scenes_episodes_with_more_than_one_instruction(tmp_path, write_twins):
    dataset = write_twins(tmp_path / 'ds', EPISODES)
    assert scene_twins(dataset) == [[0, 1, 5]]


def test_ambiguous_frames_are_those_a_twin_with_another_instruction_shares(tmp_path, write_twins):
    dataset = write_twins(tmp_path / 'ds', EPISODES[:5])
    # chunks of 3 actions part from frame 2 (covering frame 4); the states stay equal up to frame 5
    expected = [t for t in range(2, 6)] + [LENGTH + t for t in range(2, 6)]
    assert ambiguous_frames(dataset, chunk_size=3) == expected
    # a one-action chunk parts only where the actions do
    assert ambiguous_frames(dataset, chunk_size=1) == [4, 5, LENGTH + 4, LENGTH + 5]
    with pytest.raises(IndexError, match='episode 5 is out of range'):
        dataset.numeric_episode(5)


def test_a_third_instruction_adds_its_own_fork(tmp_path, write_twins):
    dataset = write_twins(tmp_path / 'ds', EPISODES)
    # episode 5 parts from episode 0 as episode 1 does, and from episode 1 nowhere (same actions and states)
    assert ambiguous_frames(dataset, chunk_size=1) == [4, 5, LENGTH + 4, LENGTH + 5, 5 * LENGTH + 4, 5 * LENGTH + 5]


def test_a_dataset_without_state_is_refused_naming_the_key(tmp_path):
    import numpy as np

    from maps_vla.data.dataset import Dataset
    from maps_vla.data.writer import DatasetWriter

    features = {'action': {'dtype': 'float32', 'shape': (1,), 'names': ['a']}}
    writer = DatasetWriter.create(tmp_path / 'ds', fps=10, features=features, video=False)
    writer.add_frame({'action': np.zeros(1, np.float32)}, task='t')
    writer.save_episode()
    writer.finalize()
    with pytest.raises(ValueError, match="lacks \\['observation.state'\\]"):
        ambiguous_frames(Dataset(tmp_path / 'ds'), chunk_size=1)
