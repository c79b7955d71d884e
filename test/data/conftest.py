"""Fixtures: the fake env of test/mocks/fake_env.py (loaded by path: pytest runs in importlib mode)."""

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from maps_vla.data import DatasetWriter




CAMERAS = ('observation.images.third_person', 'observation.images.wrist')
FEATURES = {
    CAMERAS[0]: {'dtype': 'video', 'shape': (32, 48, 3), 'names': ['height', 'width', 'channels']},
    CAMERAS[1]: {'dtype': 'video', 'shape': (24, 32, 3), 'names': ['height', 'width', 'channels']},
    'observation.state': {'dtype': 'float32', 'shape': (5,), 'names': ['a', 'b', 'c', 'd', 'e']},
    'action': {'dtype': 'float32', 'shape': (3,), 'names': ['x', 'y', 'z']},
    'task': {'dtype': 'string', 'shape': (1,), 'names': None},
}


def smooth_image(rng, h, w):
    """Gradients with a coloured square: compresses like a rendered scene, unlike noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.integers(0, 80)
    img = np.stack([xx * 120 // w + base, yy * 120 // h + base, np.full_like(xx, base + 40)], -1).astype(np.uint8)
    y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
    img[y:y + 8, x:x + 8] = rng.integers(0, 256, 3)
    return img


def make_episode(rng, length, task='pick the cube'):
    """`length` frames for FEATURES."""
    frames = []
    for _ in range(length):
        frames.append({
            CAMERAS[0]: smooth_image(rng, 32, 48), CAMERAS[1]: smooth_image(rng, 24, 32),
            'observation.state': rng.normal(size=5).astype(np.float32),
            'action': rng.normal(size=3).astype(np.float32), 'task': task,
        })
    return frames


@pytest.fixture
def write_dataset(tmp_path):
    """write_dataset(video=True, lengths=(6, 9), tasks=None, **create_kwargs) -> (root, episodes as frame lists)."""

    def write(video=True, lengths=(6, 9), tasks=None, seed=0, **kwargs):
        rng = np.random.default_rng(seed)
        root = tmp_path / ('video' if video else 'png')
        episodes = []
        with DatasetWriter.create(root, 10, FEATURES, video=video, **kwargs) as writer:
            for i, length in enumerate(lengths):
                frames = make_episode(rng, length, tasks[i] if tasks else 'pick the cube')
                for frame in frames:
                    writer.add_frame(frame)
                writer.save_episode()
                episodes.append(frames)
        return root, episodes

    return write


@pytest.fixture(scope='session')
def helpers():
    """FEATURES, CAMERAS, make_episode(rng, length, task), smooth_image(rng, h, w) for the tests."""
    return types.SimpleNamespace(FEATURES=FEATURES, CAMERAS=CAMERAS, make_episode=make_episode,
                                 smooth_image=smooth_image)
