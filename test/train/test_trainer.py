import dataclasses

import numpy as np
import pytest
import torch

from maps_vla.config import load_config
from maps_vla.maps.factory import FinetuneMethodConfig
from maps_vla.model.vla.modeling_vla import VLAPolicy
from maps_vla.train import distributed
from maps_vla.train.augment import AugmentConfig
from maps_vla.train.checkpointing import latest_checkpoint
from maps_vla.train.configuration_train import DataConfig, ModelSourceConfig, TrainConfig
from maps_vla.train.cotrain import is_cotrain_step
from maps_vla.train.trainer import train


def _cfg(root, out, **kw):
    base = TrainConfig(
        model=ModelSourceConfig(preset='tiny'),
        data=DataConfig(root=str(root), augment=AugmentConfig(enabled=True)),
        method=FinetuneMethodConfig(method='maps', lambda_max=1.0, lr=3e-4),
        out_dir=str(out), steps=6, batch_size=4, save_every=3, log_every=1, drift_every=3, progress=False)
    return dataclasses.replace(base, **kw)


def _weights(policy_dir):
    return {k: v.clone() for k, v in VLAPolicy.from_pretrained(policy_dir).state_dict().items()}


def test_loss_falls_and_policy_exports(tiny_dataset, tmp_path):
    cfg = _cfg(tiny_dataset, tmp_path / 'run', steps=80, save_every=80, drift_every=20,
               data=DataConfig(root=str(tiny_dataset), augment=AugmentConfig(enabled=False)))
    result = train(cfg)
    assert result.steps == 80 and len(result.losses) == 80
    assert np.mean(result.losses[-5:]) < 0.5 * np.mean(result.losses[:5])
    policy = VLAPolicy.from_pretrained(result.policy_dir)
    obs = {'observation.images.third_person': np.zeros((28, 28, 3), np.uint8),
           'observation.images.wrist': np.zeros((28, 28, 3), np.uint8),
           'observation.state': np.zeros(8, np.float32), 'task': 'push the red block'}
    actions = policy.infer(obs)['actions']
    assert actions.shape == (policy.config.chunk_size, 7) and np.isfinite(actions).all()
    assert (tmp_path / 'run' / 'tensorboard').is_dir()
    assert load_config(TrainConfig, tmp_path / 'run' / 'train_config.yaml').steps == 80


@pytest.mark.slow
@pytest.mark.parametrize('method', ['maps', 'l2sp'])
def test_resume_continues_exactly(tiny_dataset, tmp_path, method):
    """Stopping after a checkpoint and resuming gives the same weights as one uninterrupted run."""
    m = FinetuneMethodConfig(method=method, lambda_max=1.0, lr=1e-3)
    straight = train(_cfg(tiny_dataset, tmp_path / 'straight', method=m, grad_accum=2))
    _ = train(_cfg(tiny_dataset, tmp_path / 'resumed', method=m, grad_accum=2, steps=3))
    resumed = train(_cfg(tiny_dataset, tmp_path / 'resumed', method=m, grad_accum=2))
    assert resumed.resumed_from == 3 and len(resumed.losses) == 3
    assert straight.losses[3:] == resumed.losses
    a, b = _weights(straight.policy_dir), _weights(resumed.policy_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert latest_checkpoint(tmp_path / 'resumed')[0] == 6


def test_fresh_start_without_resume_differs_from_resume(tiny_dataset, tmp_path):
    """The resume test above can fail: a run that restarts from scratch does not reproduce the straight losses."""
    first = train(_cfg(tiny_dataset, tmp_path / 'r', steps=3))
    again = train(_cfg(tiny_dataset, tmp_path / 'r', steps=6, resume=False))
    assert again.resumed_from == 0 and len(again.losses) == 6 and again.losses[:3] == first.losses


def test_cotrain_schedule_is_even_and_exact():
    picks = [s for s in range(100) if is_cotrain_step(s, 0.25)]
    assert len(picks) == 25 and np.diff(picks).max() == 4
    assert not any(is_cotrain_step(s, 0.0) for s in range(10))


def test_bad_configs_name_the_field(tmp_path):
    with pytest.raises(ValueError, match='mixed_precision'):
        TrainConfig(mixed_precision='fp8')
    with pytest.raises(ValueError, match='cotrain_root'):
        DataConfig(cotrain_ratio=0.2)
    with pytest.raises(ValueError, match='data.root is empty'):
        train(TrainConfig(out_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError):
        train(TrainConfig(out_dir=str(tmp_path), data=DataConfig(root=str(tmp_path / 'nope'))))


@pytest.mark.parametrize('ratio, vl_steps', [(0.5, 2), (1.0, 4)])  # 1.0: VLM pre-training, no robot batch
def test_cotraining_mixes_vl_batches(tiny_dataset, tmp_path, monkeypatch, ratio, vl_steps):
    import json

    import cv2

    from maps_vla.train import trainer

    vl_root = tmp_path / 'vl'
    vl_root.mkdir()
    lines = []
    for i in range(8):
        cv2.imwrite(str(vl_root / f'{i}.png'), np.full((28, 28, 3), 30 * i, np.uint8))
        lines.append(json.dumps({'image': f'{i}.png', 'question': 'which emoji is on the left card?',
                                 'answer': ['fire', 'rocket'][i % 2]}))
    (vl_root / 'vl.jsonl').write_text('\n'.join(lines) + '\n')
    served = []

    class CountingVL(trainer.VLDataset):
        def __getitem__(self, index):
            served.append(index)
            return super().__getitem__(index)

    monkeypatch.setattr(trainer, 'VLDataset', CountingVL)
    cfg = _cfg(tiny_dataset, tmp_path / 'run', steps=4, drift_every=0, log_every=2,
               data=DataConfig(root=str(tiny_dataset), cotrain_root=str(vl_root), cotrain_ratio=ratio))
    result = train(cfg)
    assert result.steps == 4 and all(np.isfinite(result.losses))
    assert len(served) == vl_steps * cfg.batch_size  # at 0.5, steps 1 and 3 are the VL steps
    # Every logged step is a VL step here (log_every 2, VL steps 2 and 4 counted from 1); the robot loss is still
    # logged, as the mean since the last log.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / 'run' / 'tensorboard'))
    events.Reload()
    logged = {tag: [e.step for e in events.Scalars(tag)] for tag in ('train/loss', 'train/vl_loss')
              if tag in events.Tags()['scalars']}
    assert logged == ({'train/loss': [2, 4], 'train/vl_loss': [2, 4]} if ratio == 0.5 else {'train/vl_loss': [2, 4]})
    if ratio == 1.0:  # no robot loss ever reached the action head
        from maps_vla.data.dataset import Dataset
        from maps_vla.train.trainer import build_policy

        start = build_policy(cfg.model, Dataset(tiny_dataset), cfg.seed).action_head.state_dict()
        end = VLAPolicy.from_pretrained(result.policy_dir).action_head.state_dict()
        assert all(torch.equal(start[k], end[k]) for k in start)


def test_lora_gives_every_trainable_tensor_a_gradient(tiny_dataset):
    # DDP stops on trainable tensors without a gradient: LoRA must skip the ViT blocks the VLA never runs.
    from maps_vla.data.dataset import Dataset
    from maps_vla.data.torch_dataset import TorchDataset
    from maps_vla.maps.factory import prepare_model
    from maps_vla.train.batching import collate_robot, dataset_cameras, robot_batch
    from maps_vla.train.trainer import build_policy

    dataset = Dataset(tiny_dataset)
    policy = build_policy(ModelSourceConfig(), dataset, 0)
    model = prepare_model(FinetuneMethodConfig(method='maps', lora=True, lora_rank=2), policy)
    frames = TorchDataset(dataset, policy.config.chunk_size)
    batch = robot_batch(collate_robot([frames[0], frames[1]]), policy.processor, dataset_cameras(dataset),
                        AugmentConfig(enabled=False), None)
    model(batch)['loss'].backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any('featurizer.encoder.layer.0.' in n and 'lora_A' in n for n in trainable)
    assert [n for n, p in trainable.items() if p.grad is None] == []


def test_state_dropout_zeroes_the_state_of_a_fraction_of_samples(tiny_dataset):
    from maps_vla.data.dataset import Dataset
    from maps_vla.data.torch_dataset import TorchDataset
    from maps_vla.train.batching import collate_robot, dataset_cameras, robot_batch
    from maps_vla.train.trainer import build_policy

    dataset = Dataset(tiny_dataset)
    policy = build_policy(ModelSourceConfig(), dataset, 0)
    frames = TorchDataset(dataset, policy.config.chunk_size)
    collated = collate_robot([frames[i] for i in range(8)])

    def states(dropout: float, enabled: bool = True) -> torch.Tensor:
        augment = AugmentConfig(enabled=enabled, state_dropout=dropout)
        return robot_batch(collated, policy.processor, dataset_cameras(dataset), augment,
                           torch.Generator().manual_seed(0))['state']

    kept, all_dropped, half = states(0.0), states(1.0), states(0.5)
    assert (kept.abs().sum(1) > 0).all() and (all_dropped == 0).all()
    zeroed = (half.abs().sum(1) == 0)
    assert 0 < int(zeroed.sum()) < 8 and torch.equal(half[~zeroed], kept[~zeroed])
    assert torch.equal(states(1.0, enabled=False), kept)  # evaluation-like batches keep the state
    with pytest.raises(ValueError, match='state_dropout'):
        AugmentConfig(state_dropout=1.5)


def test_lora_run_exports_merged_plain_weights(tiny_dataset, tmp_path):
    from maps_vla.data.dataset import Dataset
    from maps_vla.train.trainer import build_policy

    cfg = _cfg(tiny_dataset, tmp_path / 'lora', steps=3, drift_every=0,
               method=FinetuneMethodConfig(method='maps', lambda_max=1.0, lr=1e-3, lora=True, lora_rank=4))
    merged = VLAPolicy.from_pretrained(train(cfg).policy_dir).state_dict()
    initial = build_policy(cfg.model, Dataset(tiny_dataset), cfg.seed).state_dict()
    assert merged.keys() == initial.keys()  # no lora_A/lora_B/base_layer names leak into the deployable policy
    q_proj = 'language_model.model.layers.0.self_attn.q_proj.weight'
    norm = 'language_model.model.layers.0.input_layernorm.weight'
    assert not torch.equal(merged[q_proj], initial[q_proj])  # the LoRA update was merged into the linear layer
    assert torch.equal(merged[norm], initial[norm])  # LoRA trains no norms: they stay pretrained


def test_bf16_clipping_and_schedules_run(tiny_dataset, tmp_path):
    fp32 = train(_cfg(tiny_dataset, tmp_path / 'fp32', steps=1, drift_every=0))  # a previous run in the process
    assert fp32.compute_dtype == torch.float32
    cfg = _cfg(tiny_dataset, tmp_path / 'bf16', steps=3, drift_every=0, mixed_precision='bf16', grad_clip=1.0,
               lr_schedule='cosine', warmup_steps=2, grad_accum=2)
    result = train(cfg)
    assert all(np.isfinite(result.losses))
    assert result.compute_dtype == torch.bfloat16  # measured on the linear layers, not assumed from the config


def test_bf16_not_applied_stops_the_run(tiny_dataset, tmp_path, monkeypatch):
    """An accelerator that silently drops bf16 (here: autocast switched off) is caught on the first forward."""

    class NoAutocastAccelerator(distributed.Accelerator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.native_amp = False  # what prepare_model reads to wrap the forward in autocast

    monkeypatch.setattr(distributed, 'Accelerator', NoAutocastAccelerator)
    cfg = _cfg(tiny_dataset, tmp_path / 'broken', steps=1, drift_every=0, mixed_precision='bf16')
    with pytest.raises(RuntimeError, match=r"mixed_precision='bf16' asks for bfloat16 compute, but .*float32"):
        train(cfg)


def test_action_spec_records_joint_position_datasets():
    from maps_vla.policy import action_kind_from_names
    from maps_vla.train.trainer import _action_spec

    class _Joints:
        fps = 10
        features = {'action': {'names': [f'panda_joint{i}' for i in range(1, 8)] + ['gripper']}}

    spec = _action_spec(_Joints())
    assert spec.kind == 'joint_position' and spec.gripper_index == 7 and spec.control_hz == 10.0
    assert action_kind_from_names(('dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper'), 6) == 'ee_delta'
