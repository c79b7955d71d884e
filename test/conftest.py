"""Shared fixtures. Tests mirror src/maps_vla/ (test/maps, test/model, ...)."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: tiny models run far faster so, above all on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def fake_env():
    """The module test/mocks/fake_env.py (FakeEnv, FakeEnvConfig, make_fake_env, ReachExpert, ReachPolicy,
    StillPolicy), loaded by path because pytest runs in importlib mode."""
    name = 'maps_vla_test_fake_env'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / 'mocks' / 'fake_env.py')
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


TWIN_LENGTH = 10  # frames per episode of write_twins' datasets


@pytest.fixture
def write_twins():
    """write_twins(root, episodes) -> Dataset: a tiny dataset of TWIN_LENGTH-frame episodes, each given as (scene,
    task, action after the fork, state offset after the fork). Episodes of one scene share their first observation;
    actions part at frame 4 and states at frame 6, as when one emoji demo stops over the nearer card and its twin
    carries on."""
    import numpy as np

    from maps_vla.data.dataset import Dataset
    from maps_vla.data.writer import DatasetWriter

    features = {
        'observation.images.third_person': {'dtype': 'image', 'shape': (8, 8, 3),
                                            'names': ['height', 'width', 'channels']},
        'observation.state': {'dtype': 'float32', 'shape': (2,), 'names': ['x', 'y']},
        'action': {'dtype': 'float32', 'shape': (2,), 'names': ['dx', 'dy']},
    }

    def write(root, episodes):
        writer = DatasetWriter.create(root, fps=10, features=features, video=False)
        for scene, task, late_action, late_offset in episodes:
            image = np.full((8, 8, 3), 40 * scene, np.uint8)
            for t in range(TWIN_LENGTH):
                state = np.array([scene + 0.1 * t, late_offset if t >= 6 else 0.0], np.float32)
                action = np.array([0.1, late_action if t >= 4 else 0.0], np.float32)
                writer.add_frame({'observation.images.third_person': image, 'observation.state': state,
                                  'action': action}, task=task)
            writer.save_episode()
        writer.finalize()
        return Dataset(root)

    return write
