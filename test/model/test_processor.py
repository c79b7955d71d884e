"""VLAProcessor: images (per-backbone statistics, resize, crop), prompts, q01/q99 normalization."""

import json

import numpy as np
import pytest
import torch

from maps_vla.model.vla.configuration_vla import IMAGENET_MEAN, IMAGENET_MEAN_BF16, IMAGENET_STD_BF16
from maps_vla.model.vla.processor_vla import NormStats, VLAProcessor
from maps_vla.model.vla.tokenization_vla import CHAR_TOKENIZER_SIZE, build_char_tokenizer


@pytest.fixture
def processor(make_tiny):
    cfg = make_tiny()
    stats = NormStats([-2, -1, 0, 0, 0, 0, 0], [2, 3, 1, 1, 1, 1, 1], [True] * 6 + [False], [0] * 8, [2] * 8)
    return VLAProcessor(cfg, build_char_tokenizer(), stats)


def test_bf16_rounded_dino_stats_are_the_bf16_values_of_imagenet():
    exact = torch.tensor(IMAGENET_MEAN)
    assert torch.equal(exact.to(torch.bfloat16).float(), torch.tensor(IMAGENET_MEAN_BF16))
    assert IMAGENET_MEAN_BF16 != IMAGENET_MEAN
    assert IMAGENET_STD_BF16 == (0.228515625, 0.2236328125, 0.224609375)


def test_images_are_normalized_per_backbone(processor):
    image = torch.full((1, 3, 28, 28), 255, dtype=torch.uint8)  # already the model size: no resampling
    out = processor.preprocess_images(image)
    assert out.shape == (1, 6, 28, 28) and out.dtype == torch.float32
    mean, std = torch.tensor(IMAGENET_MEAN_BF16), torch.tensor(IMAGENET_STD_BF16)
    torch.testing.assert_close(out[0, :3, 0, 0], (1 - mean) / std)
    torch.testing.assert_close(out[0, 3:, 0, 0], torch.ones(3))  # SigLIP: (1 - 0.5) / 0.5


def test_uint8_and_float_images_agree_and_resize(processor):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 2, 3, 50, 70), generator=g, dtype=torch.uint8)
    a = processor.preprocess_images(images)
    b = processor.preprocess_images(images.float() / 255)
    c = processor.preprocess_images(images.numpy())
    assert a.shape == (2, 2, 6, 28, 28)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    assert processor.preprocess_images(a) is a  # already preprocessed


def test_center_crop_keeps_the_middle(make_tiny):
    import dataclasses
    cfg = make_tiny()
    cfg = cfg.replace(vision=dataclasses.replace(cfg.vision, center_crop_scale=0.25))
    proc = VLAProcessor(cfg, build_char_tokenizer())
    image = torch.zeros(1, 3, 56, 56, dtype=torch.uint8)
    image[..., 14:42, 14:42] = 255  # the centred half-side box = a quarter of the area
    out = proc.preprocess_images(image)
    torch.testing.assert_close(out[0, 3:], torch.ones(3, 28, 28))


def test_bad_image_shape_is_rejected(processor):
    with pytest.raises(ValueError, match='RGB'):
        processor.preprocess_images(torch.zeros(1, 4, 28, 28, dtype=torch.uint8))


def test_prompt_and_tokenization(processor):
    prompt = processor.build_prompt('Pick up the Cup.')
    assert prompt == 'In: What action should the robot take to pick up the cup?\nOut:'
    ids, mask = processor.tokenize(['ab', 'abcd'])
    assert ids.shape == mask.shape == (2, 5)
    assert ids[0, 0] == processor.tokenizer.bos_token_id and mask[0].tolist() == [1, 1, 1, 0, 0]
    assert len(processor.tokenizer) == CHAR_TOKENIZER_SIZE


def test_action_normalization_round_trip(processor):
    g = torch.Generator().manual_seed(1)
    low, high = torch.tensor(processor.norm_stats.action_q01), torch.tensor(processor.norm_stats.action_q99)
    raw = low + (high - low) * torch.rand(5, 8, 7, generator=g)
    raw[..., 6] = torch.rand(5, 8, generator=g)  # gripper: not normalized
    normalized = processor.normalize_actions(raw)
    assert normalized[..., :6].abs().max() <= 1
    torch.testing.assert_close(normalized[..., 6], raw[..., 6])
    torch.testing.assert_close(processor.unnormalize_actions(normalized), raw)
    ends = processor.unnormalize_actions(torch.tensor([[-1.0] * 7, [1.0] * 7]))
    torch.testing.assert_close(ends[:, :6], torch.stack([low, high])[:, :6])


def test_out_of_range_values_are_clipped(processor):
    assert processor.normalize_actions(torch.full((7,), 100.0))[:6].eq(1).all()
    assert processor.normalize_state(torch.full((8,), -5.0)).eq(-1).all()
    torch.testing.assert_close(processor.normalize_state(torch.ones(8)), torch.zeros(8))


def test_norm_stats_from_dataset_statistics_and_json(tmp_path):
    entry = {'action': {'q01': [0.0, -1.0], 'q99': [1.0, 1.0], 'mask': [True, False], 'mean': [0, 0]},
             'proprio': {'q01': [0.0], 'q99': [2.0]}, 'num_transitions': 10}
    stats = NormStats.from_dataset_statistics({'libero': entry})
    assert stats.action_mask == (True, False) and stats.state_q99 == (2.0,)
    with pytest.raises(ValueError, match='several datasets'):
        NormStats.from_dataset_statistics({'a': entry, 'b': entry})
    with pytest.raises(ValueError, match="'c' not found"):
        NormStats.from_dataset_statistics({'a': entry, 'b': entry}, 'c')
    stats.save(tmp_path / 'n.json')
    assert NormStats.load(tmp_path / 'n.json') == stats
    assert json.loads((tmp_path / 'n.json').read_text())['action']['mask'] == [True, False]
    with pytest.raises(ValueError, match='q99 < q01'):
        NormStats([1.0], [0.0])
    with pytest.raises(FileNotFoundError, match='missing.json'):
        NormStats.load(tmp_path / 'missing.json')


def test_processor_checks_stats_dimensions(make_tiny):
    with pytest.raises(ValueError, match='action_dim'):
        VLAProcessor(make_tiny(), build_char_tokenizer(), NormStats([0.0], [1.0]))
    assert np.allclose(VLAProcessor(make_tiny(), build_char_tokenizer()).norm_stats.action_q99, 1.0)


def test_inference_center_crop_matches_the_training_crop(make_tiny):
    """The processor's centred crop (inference) sees what the training pipeline sees: augment.center_crop's box of
    the same area (the deterministic counterpart of the random crop), resized to the ViT side."""
    import dataclasses

    import torch.nn.functional as F

    from maps_vla.train.augment import _crop_resize, center_crop

    cfg = make_tiny()

    def preprocess(images, scale):
        vision = dataclasses.replace(cfg.vision, center_crop_scale=scale)
        return VLAProcessor(cfg.replace(vision=vision), build_char_tokenizer()).preprocess_images(images)

    g = torch.Generator().manual_seed(0)
    frames = F.interpolate(torch.rand(4, 3, 16, 16, generator=g), size=(64, 64), mode='bilinear')  # 64 px camera
    inference = preprocess(frames, 0.9)
    training = preprocess(center_crop(frames, 0.9), 1.0)  # crop 61 px, resized back to 64, then to 28
    assert (inference - training).abs().mean() < 0.05  # only resampling differs
    corner, shifted = torch.zeros(4, dtype=torch.long), torch.full((4,), 2)
    for wrong in (frames, _crop_resize(frames, corner, corner, 61), _crop_resize(frames, shifted, shifted, 61)):
        assert (inference - preprocess(wrong, 1.0)).abs().mean() > 0.1  # no crop, or a box off by a pixel
