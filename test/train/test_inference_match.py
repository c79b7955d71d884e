"""The exported policy records the camera frame size and the crop it was trained with (issue 13, item 5)."""

import dataclasses

import numpy as np
import pytest

from maps_vla.data.writer import DatasetWriter
from maps_vla.maps.factory import FinetuneMethodConfig
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.train.augment import AugmentConfig
from maps_vla.train.configuration_train import DataConfig, ModelSourceConfig, TrainConfig
from maps_vla.train.inference_match import deployed_config, robot_augment, training_config
from maps_vla.train.trainer import train

_IMAGE = {'dtype': 'image', 'shape': (64, 64, 3), 'names': ['height', 'width', 'channels']}
_FEATURES = {
    'observation.images.third_person': _IMAGE,
    'observation.images.wrist': _IMAGE,
    'observation.state': {'dtype': 'float32', 'shape': (8,), 'names': [f's{i}' for i in range(8)]},
    'action': {'dtype': 'float32', 'shape': (7,), 'names': ['dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper']},
}


@pytest.fixture(scope='module')
def frames_64(tmp_path_factory):
    """2 episodes x 8 frames captured at 64 px (the tiny policy sees 28 px)."""
    root = tmp_path_factory.mktemp('data64') / 'ds'
    rng = np.random.default_rng(0)
    with DatasetWriter.create(root, fps=10, features=_FEATURES, video=False) as writer:
        for _ in range(2):
            for _ in range(8):
                image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
                writer.add_frame({'observation.images.third_person': image, 'observation.images.wrist': image,
                                  'observation.state': rng.normal(size=8).astype(np.float32),
                                  'action': rng.normal(size=7).astype(np.float32)}, task='pick up the cube')
            writer.save_episode()
    return root


def _train(root, out, augment, **kw):
    return train(TrainConfig(model=ModelSourceConfig(preset='tiny'), data=DataConfig(root=str(root), augment=augment),
                             method=FinetuneMethodConfig(method='fft', lr=1e-4), out_dir=str(out), steps=2,
                             batch_size=4, save_every=2, drift_every=0, health_every=0, progress=False, **kw))


def test_checkpoint_records_capture_size_and_crop(frames_64, tmp_path):
    result = _train(frames_64, tmp_path / 'run', AugmentConfig(crop_area=0.9))
    vision = VLAPolicy.from_pretrained(result.policy_dir).config.vision
    assert vision.capture_size == 64 and vision.image_size == 28
    assert vision.center_crop_scale == pytest.approx(0.9)
    step_policy = VLAPolicy.from_pretrained(tmp_path / 'run' / 'checkpoints' / 'step_0000002' / 'policy').config.vision
    assert step_policy.center_crop_scale == pytest.approx(0.9) and step_policy.capture_size == 64


def test_no_crop_without_augmentation(frames_64, tmp_path):
    result = _train(frames_64, tmp_path / 'run', AugmentConfig(enabled=False))
    vision = VLAPolicy.from_pretrained(result.policy_dir).config.vision
    assert vision.capture_size == 64 and vision.center_crop_scale == 1.0


def test_training_never_crops_twice(frames_64, tmp_path, monkeypatch):
    """While the augmentation crops, the processor does not add its centred crop, even when fine-tuning a
    checkpoint that records one; the export records it again."""
    first = _train(frames_64, tmp_path / 'a', AugmentConfig(crop_area=0.9))
    seen = []
    original = VLAPolicy.forward

    def spy(self, batch):
        seen.append(self.processor.config.vision.center_crop_scale)
        return original(self, batch)

    monkeypatch.setattr(VLAPolicy, 'forward', spy)
    second = train(TrainConfig(model=ModelSourceConfig(checkpoint=str(first.policy_dir)),
                               data=DataConfig(root=str(frames_64), augment=AugmentConfig(crop_area=0.81)),
                               method=FinetuneMethodConfig(method='fft', lr=1e-4), out_dir=str(tmp_path / 'b'),
                               steps=2, batch_size=4, drift_every=0, health_every=0, progress=False))
    assert seen == [1.0, 1.0]
    assert VLAPolicy.from_pretrained(second.policy_dir).config.vision.center_crop_scale == pytest.approx(0.81)


def test_config_pair_keeps_a_recorded_crop_when_not_augmenting(make_tiny_config):
    cfg = make_tiny_config(center_crop_scale=0.9, capture_size=96)
    off = AugmentConfig(enabled=False)
    assert training_config(cfg, off, None) == cfg  # crop at train and test alike, old capture size kept
    assert deployed_config(cfg, off) == cfg
    on = AugmentConfig(crop_area=0.8)
    trained = training_config(cfg, on, 64)
    assert (trained.vision.center_crop_scale, trained.vision.capture_size) == (1.0, 64)
    assert deployed_config(trained, on).vision.center_crop_scale == pytest.approx(0.8)


@pytest.fixture
def make_tiny_config():
    from maps_vla.model import make_policy_config

    def make(**vision):
        cfg = make_policy_config('tiny')
        return cfg.replace(vision=dataclasses.replace(cfg.vision, **vision))
    return make


def test_vl_only_runs_record_no_crop():
    """VL co-training images are never augmented: a run of VL steps only must not add a crop at inference."""
    crop = AugmentConfig(crop_area=0.9)
    vl_only = DataConfig(root='d', augment=crop, cotrain_root='vl', cotrain_ratio=1.0)
    assert not robot_augment(vl_only).enabled
    assert robot_augment(dataclasses.replace(vl_only, cotrain_ratio=0.5)) == crop
