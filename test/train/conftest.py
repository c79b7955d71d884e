import numpy as np
import pytest

from maps_vla.data.writer import DatasetWriter

_IMAGE = {'dtype': 'image', 'shape': (28, 28, 3), 'names': ['height', 'width', 'channels']}
FEATURES = {
    'observation.images.third_person': _IMAGE,
    'observation.images.wrist': _IMAGE,
    'observation.state': {'dtype': 'float32', 'shape': (8,), 'names': [f's{i}' for i in range(8)]},
    'action': {'dtype': 'float32', 'shape': (7,), 'names': ['dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper']},
}


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory):
    """4 episodes x 16 frames, PNG frames; each task has its own action pattern, so a policy can learn it."""
    root = tmp_path_factory.mktemp('data') / 'ds'
    rng = np.random.default_rng(0)
    writer = DatasetWriter.create(root, fps=10, features=FEATURES, video=False)
    for episode in range(4):
        task = ['push the red block', 'open the drawer'][episode % 2]
        phase = rng.uniform(0, 2 * np.pi)
        for t in range(16):
            state = np.sin(phase + 0.3 * t + np.arange(8)).astype(np.float32)
            sign = 1.0 if episode % 2 == 0 else -1.0
            action = np.concatenate([sign * 0.02 * np.arange(1, 7), [float(t > 8)]]).astype(np.float32)
            action[:6] += rng.normal(0, 0.002, 6)
            image = np.full((28, 28, 3), int(127 + 100 * state[0]), np.uint8)
            writer.add_frame({'observation.images.third_person': image, 'observation.images.wrist': 255 - image,
                              'observation.state': state, 'action': action}, task=task)
        writer.save_episode()
    writer.finalize()
    return root
