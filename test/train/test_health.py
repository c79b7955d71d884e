"""The image-dependence health check (issue 13, item 2a): a policy that ignores its cameras is caught."""

import logging

import numpy as np
import pytest
import torch

from maps_vla.maps.factory import FinetuneMethodConfig
from maps_vla.model import make_policy, make_policy_config
from maps_vla.model.vla.processor_vla import NormStats
from maps_vla.train.augment import AugmentConfig
from maps_vla.train.configuration_train import DataConfig, ModelSourceConfig, TrainConfig
from maps_vla.train.health import HealthMonitor, HealthReport, measure_dependence
from maps_vla.train.trainer import train

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def policy_and_batch():
    cfg = make_policy_config('tiny')
    torch.manual_seed(0)
    policy = make_policy(cfg, norm_stats=NormStats.identity(cfg.action_dim, cfg.proprio_dim))
    g = torch.Generator().manual_seed(0)
    b, k = 4, cfg.chunk_size
    mask = torch.ones(b, k, dtype=torch.bool)
    mask[-1, -3:] = False
    batch = {'images': torch.rand(b, cfg.num_views, 3, 28, 28, generator=g), 'task': ['pick up the cube'] * b,
             'state': torch.rand(b, cfg.proprio_dim, generator=g) * 2 - 1,
             'actions': torch.rand(b, k, cfg.action_dim, generator=g) * 2 - 1, 'action_mask': mask}
    return policy, batch


def _blind(policy):
    """Disconnect the vision path: the projector's last layer outputs zeros whatever the images."""
    with torch.no_grad():
        policy.projector.fc3.weight.zero_()
        policy.projector.fc3.bias.zero_()
    return policy


def test_a_seeing_policy_passes(policy_and_batch):
    policy, batch = policy_and_batch
    report = measure_dependence(policy, batch, step=7)
    assert report.step == 7 and report.state_dependence is not None and report.action_spread > 0.3
    assert report.image_dependence > 0.1 * report.action_spread
    assert not report.vision_ignored and report.warning() is None


def test_a_blind_policy_is_flagged(policy_and_batch):
    import copy
    policy, batch = policy_and_batch
    blind = _blind(copy.deepcopy(policy))
    report = measure_dependence(blind, batch)
    assert report.image_dependence < 1e-6 and report.state_dependence > 1e-4  # the state still moves it
    assert report.vision_ignored and 'vision is ignored' in report.warning()


def test_spread_and_thresholds_from_numbers():
    assert HealthReport(0, 0.04, None, 0.5).vision_ignored  # < 10 % of the action spread
    assert HealthReport(0, 0.06, 1.0, 0.5).vision_ignored  # < 10 % of the state dependence
    assert not HealthReport(0, 0.06, 0.5, 0.5).vision_ignored
    assert not HealthReport(0, 0.0, None, None).vision_ignored  # nothing to compare with
    deaf = HealthReport(0, 0.3, None, 0.5, instruction_dependence=0.04)
    assert deaf.instruction_ignored and not deaf.vision_ignored
    assert deaf.warning().startswith('the instruction is ignored') and 'vision' not in deaf.warning()
    assert not HealthReport(0, 0.3, None, 0.5, instruction_dependence=0.06).instruction_ignored
    assert not HealthReport(0, 0.3, None, 0.5).instruction_ignored  # one instruction: nothing measured
    both = HealthReport(0, 0.01, None, 0.5, instruction_dependence=0.0).warning().splitlines()
    assert both[0].startswith('vision is ignored') and both[1].startswith('the instruction is ignored')


def test_spread_ignores_padded_chunk_steps(policy_and_batch):
    policy, batch = policy_and_batch
    padded = dict(batch, actions=batch['actions'].clone())
    padded['actions'][-1, -3:] = 100.0  # padding past the episode end: masked out
    assert measure_dependence(policy, padded).action_spread == pytest.approx(
        measure_dependence(policy, batch).action_spread)


def test_modes_and_rng_are_left_as_they_were(policy_and_batch):
    policy, batch = policy_and_batch
    policy.train()
    policy.vision_backbone.featurizer.eval()  # a submodule deliberately in eval mode stays so
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    measure_dependence(policy, batch)
    torch.testing.assert_close(torch.rand(3), expected)
    assert policy.training and policy.projector.training and not policy.vision_backbone.featurizer.training
    policy.eval()


def test_one_instruction_has_no_instruction_dependence(policy_and_batch):
    policy, batch = policy_and_batch
    report = measure_dependence(policy, batch)
    assert report.instruction_dependence is None and 'instruction' not in report.summary()


def test_instruction_dependence_counts_only_the_samples_whose_words_changed(policy_and_batch):
    policy, batch = policy_and_batch
    words = dict(batch, task=['put it on the cat', 'put it on the cat', 'put it on the dog', 'put it on the dog'])
    report = measure_dependence(policy, words, seed=5)
    # rolled by one: samples 0 and 2 get the other instruction, 1 and 3 keep theirs
    rolled = dict(words, task=[words['task'][-1], *words['task'][:-1]])
    policy.eval()
    with torch.no_grad():
        torch.manual_seed(5)
        base = policy.predict_action_chunk(words, normalized=True)
        torch.manual_seed(5)
        moved = policy.predict_action_chunk(rolled, normalized=True)
    expected = (moved - base).abs()[[0, 2]].mean()  # no padded steps in samples 0 and 2
    assert report.instruction_dependence == pytest.approx(float(expected), rel=1e-5)
    assert report.instruction_dependence > 0 and 'instruction dependence' in report.summary()


def test_instruction_dependence_from_token_ids(policy_and_batch):
    policy, batch = policy_and_batch
    prompts = [policy.processor.build_prompt(t) for t in ['put it on the cat', 'put it on the dog'] * 2]
    ids, mask = policy.processor.tokenize(prompts)
    inputs = {k: v for k, v in batch.items() if k != 'task'}
    report = measure_dependence(policy, dict(inputs, input_ids=ids, attention_mask=mask))
    same = measure_dependence(policy, dict(inputs, input_ids=ids[[0, 0, 0, 0]], attention_mask=mask[[0, 0, 0, 0]]))
    assert report.instruction_dependence > 0 and same.instruction_dependence is None


def test_one_sample_cannot_be_swapped(policy_and_batch):
    policy, batch = policy_and_batch
    one = {k: v[:1] for k, v in batch.items()}
    assert measure_dependence(policy, one) is None


def test_monitor_warns_once_at_the_end(policy_and_batch, caplog):
    import copy
    policy, batch = policy_and_batch
    monitor = HealthMonitor(_blind(copy.deepcopy(policy)), every=2)
    monitor.observe(batch)
    monitor.after_step(1)
    assert monitor.reports == []
    monitor.after_step(2)
    with caplog.at_level(logging.INFO, logger='maps_vla.train.health'):
        final = monitor.finish(2)  # already measured at this step: reused
    assert len(monitor.reports) == 1 and final is monitor.reports[0]
    assert any(r.levelno == logging.WARNING and 'vision is ignored' in r.message for r in caplog.records)
    assert HealthMonitor(policy, every=0).finish(5) is None


def _cfg(root, out, **kw):
    return TrainConfig(model=ModelSourceConfig(preset='tiny'),
                       data=DataConfig(root=str(root), augment=AugmentConfig(enabled=True)),
                       method=FinetuneMethodConfig(method='maps', lambda_max=1.0, lr=3e-4), out_dir=str(out),
                       steps=4, batch_size=4, save_every=4, log_every=1, drift_every=0, progress=False, **kw)


def test_trainer_logs_health_without_changing_training(tiny_dataset, tmp_path):
    on = train(_cfg(tiny_dataset, tmp_path / 'on', health_every=2))
    off = train(_cfg(tiny_dataset, tmp_path / 'off', health_every=0))
    assert on.losses == off.losses  # the check draws no data and no random numbers from the run
    assert off.health is None
    assert on.health.step == 4 and np.isfinite(on.health.image_dependence) and on.health.state_dependence >= 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / 'on' / 'tensorboard'))
    events.Reload()
    for tag in ('health/image_dependence', 'health/state_dependence', 'health/action_spread'):  # one instruction
        assert [e.step for e in events.Scalars(tag)] == [2, 4]


def test_negative_health_every_is_refused():
    with pytest.raises(ValueError, match='health_every'):
        TrainConfig(health_every=-1)
