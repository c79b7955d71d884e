"""Fixtures: the fake env of test/mocks/fake_env.py (loaded by path: pytest runs in importlib mode)."""

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
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


_SRC = Path(__file__).resolve().parents[2] / 'src'

# Appends one episode to an existing dataset, then dies: 'mid_episode' after 3 frames (killed by the parent), or
# '<stage>' by SIGKILLing itself when the writer's logger (argv[3]) logs that stage of save_episode.
_KILLED_WRITER = textwrap.dedent('''
    import logging, os, signal, sys, time
    import numpy as np
    from maps_vla.data import DatasetWriter

    root, mode, logger = sys.argv[1], sys.argv[2], sys.argv[3]

    class KillAt(logging.Handler):
        def emit(self, record):
            if record.args and record.args[-1] == mode:
                os.kill(os.getpid(), signal.SIGKILL)

    log = logging.getLogger(logger)
    log.setLevel(logging.DEBUG)
    log.addHandler(KillAt())
    writer = DatasetWriter.open(root)
    rng = np.random.default_rng(5)
    for i in range(4):
        frame = {}
        for key in writer.frame_keys:
            ft = writer.features[key]
            frame[key] = (rng.integers(0, 256, ft['shape'], dtype=np.uint8) if ft['dtype'] == 'video'
                          else rng.normal(size=ft['shape']).astype(ft['dtype']))
        writer.add_frame(frame, task='new task')
        if mode == 'mid_episode' and i == 2:
            print('READY', flush=True)
            time.sleep(60)
    writer.save_episode()
    print('SAVED', flush=True)
''')


def kill_writer(root, mode, logger):
    """Run `_KILLED_WRITER` on `root` until it is SIGKILLed at `mode`; asserts it died before saving."""
    env = {**os.environ, 'PYTHONPATH': str(_SRC)}
    proc = subprocess.Popen([sys.executable, '-c', _KILLED_WRITER, str(root), mode, logger],
                            stdout=subprocess.PIPE, text=True, env=env)
    if mode == 'mid_episode':
        assert proc.stdout.readline().strip() == 'READY'
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and 'SAVED' not in out, (proc.returncode, out)


@pytest.fixture(scope='session')
def helpers():
    """FEATURES, CAMERAS, make_episode(rng, length, task), smooth_image(rng, h, w) and
    kill_writer(root, mode, logger) for the tests."""
    return types.SimpleNamespace(FEATURES=FEATURES, CAMERAS=CAMERAS, make_episode=make_episode,
                                 smooth_image=smooth_image, kill_writer=kill_writer)
