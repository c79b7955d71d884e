"""Fine-tuning a checkpoint keeps its action statistics on request (`ModelSourceConfig.norm_stats='checkpoint'`).

Recomputed from a narrow new dataset they rescale what the pretrained head outputs: the shipped prior's yaw range
shrank 50x on a few ood_shape demos, and its fine-tuning loss started at 0.34 instead of 0.07 (docs/results/prior.md).
"""

import numpy as np
import pytest

from maps_vla.data.dataset import Dataset
from maps_vla.data.writer import DatasetWriter
from maps_vla.train.configuration_train import ModelSourceConfig
from maps_vla.train.trainer import build_policy

_IMAGE = {'dtype': 'image', 'shape': (28, 28, 3), 'names': ['height', 'width', 'channels']}
_FEATURES = {
    'observation.images.third_person': _IMAGE,
    'action': {'dtype': 'float32', 'shape': (7,), 'names': ['dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper']},
}


def _dataset(root, scale: float) -> Dataset:
    rng = np.random.default_rng(0)
    with DatasetWriter.create(root, fps=10, features=_FEATURES, video=False) as writer:
        for _ in range(6):
            action = (rng.uniform(-1, 1, size=7) * scale).astype(np.float32)
            writer.add_frame({'observation.images.third_person': rng.integers(0, 256, (28, 28, 3), dtype=np.uint8),
                              'action': action}, task='pick up the cube')
        writer.save_episode()
    return Dataset(root)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp('norm')
    policy = build_policy(ModelSourceConfig(preset='tiny', use_state=False), _dataset(root / 'wide', 1.0), 0)
    policy.save_pretrained(root / 'policy')
    return root / 'policy', policy.norm_stats


def test_checkpoint_keeps_its_statistics_or_takes_the_datasets(checkpoint, tmp_path):
    folder, pretrained = checkpoint
    narrow = _dataset(tmp_path / 'narrow', 0.1)
    kept = build_policy(ModelSourceConfig(checkpoint=str(folder), norm_stats='checkpoint'), narrow, 0).norm_stats
    assert kept == pretrained
    recomputed = build_policy(ModelSourceConfig(checkpoint=str(folder)), narrow, 0).norm_stats
    assert max(recomputed.action_q99[:6]) < 0.11 < min(pretrained.action_q99[:6])  # the narrow data's range


def test_unknown_source_is_an_error():
    with pytest.raises(ValueError, match="norm_stats must be one of \\('dataset', 'checkpoint'\\), got 'prior'"):
        ModelSourceConfig(norm_stats='prior')
