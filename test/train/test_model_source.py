"""Options of fine-tuning from a checkpoint (`ModelSourceConfig`).

It keeps its action statistics on request (`norm_stats='checkpoint'`): recomputed from a narrow new dataset they rescale what the pretrained head outputs: the shipped prior's yaw range
shrank 50x on a few ood_shape demos, and its fine-tuning loss started at 0.34 instead of 0.07 (docs/results/prior.md).
"""

import numpy as np
import pytest
import torch

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


def test_expert_attention_is_switched_on_the_same_weights(tmp_path):
    data = _dataset(tmp_path / 'data', 1.0)
    causal = build_policy(ModelSourceConfig(preset='tiny', head='action_expert', use_state=False), data, 0)
    causal.save_pretrained(tmp_path / 'expert')
    source = ModelSourceConfig(checkpoint=str(tmp_path / 'expert'), expert_attention='bidirectional')
    switched = build_policy(source, data, 0)
    assert switched.config.head.expert_attention == 'bidirectional'
    assert switched.action_head.bidirectional and not causal.action_head.bidirectional
    before, after = causal.state_dict(), switched.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert switched.norm_stats == causal.norm_stats

    build_policy(ModelSourceConfig(preset='tiny', head='l1_regression', use_state=False), data, 0).save_pretrained(
        tmp_path / 'l1')
    with pytest.raises(ValueError, match="needs an action_expert head; the checkpoint .* has 'l1_regression'"):
        build_policy(ModelSourceConfig(checkpoint=str(tmp_path / 'l1'), expert_attention='bidirectional'), data, 0)
    with pytest.raises(ValueError, match="expert_attention must be None, 'causal' or 'bidirectional'"):
        ModelSourceConfig(expert_attention='full')

