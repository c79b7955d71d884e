import threading
import time

import numpy as np
import pytest

from maps_vla.control.policy_runner import OBS_TIMESTAMP, PolicyRunner, PolicyRunnerConfig
from maps_vla.policy import ACTIONS, OBS_IMAGE_PREFIX, OBS_STATE, TASK, ActionSpec, BasePolicy

SPEC = ActionSpec(names=('a', 'b'), kind='joint_position', gripper_index=None, control_hz=20.0)
IMAGE = np.zeros((8, 8, 3), np.uint8)


class GatedPolicy(BasePolicy):
    """Blocks in infer() until released (a slow GPU model); records what it saw."""

    def __init__(self, block: bool = True, sleep: float = 0.0):
        self.gate = threading.Event()
        if not block:
            self.gate.set()
        self.sleep = sleep
        self.seen: list[dict] = []
        self.resets = 0
        self.started = threading.Event()

    def infer(self, obs):
        self.started.set()
        self.seen.append(obs)
        assert self.gate.wait(10)
        time.sleep(self.sleep)
        return {ACTIONS: np.full((4, 2), len(self.seen), np.float32)}

    def reset(self):
        self.resets += 1


def _feed(runner, t, instruction='go'):
    runner.on_image('third_person', IMAGE, t)
    runner.on_state(np.array([0.1, 0.2]), t + 0.01)
    if instruction:
        runner.set_instruction(instruction)


def _wait(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, 'timed out'
        time.sleep(0.002)


def test_request_never_blocks_and_one_inference_at_a_time():
    policy = GatedPolicy(block=True)
    got = []
    with PolicyRunner(policy, PolicyRunnerConfig(), SPEC, callback=got.append) as runner:
        _feed(runner, 10.0)
        t0 = time.perf_counter()
        assert runner.request(10.05)
        elapsed = time.perf_counter() - t0
        assert policy.started.wait(5)
        t0 = time.perf_counter()
        assert not runner.request(10.1)  # busy: dropped, not queued
        assert not runner.request(10.15)
        elapsed += time.perf_counter() - t0
        assert elapsed < 0.1, f'request() blocked for {elapsed:.3f}s while the policy was stuck'
        assert runner.busy and got == []
        policy.gate.set()
        _wait(lambda: len(got) == 1)
        chunk = got[0]
        assert chunk.stamp == 10.0  # the oldest part of the observation (the image)
        assert chunk.actions.shape == (4, 2) and chunk.dt == pytest.approx(0.05) and chunk.names == ('a', 'b')
        assert [c.stamp for c in runner.pop_chunks()] == [10.0] and runner.pop_chunks() == []
        stats = runner.stats()
        assert (stats.requested, stats.submitted, stats.completed, stats.dropped_busy) == (3, 1, 1, 2)
        assert stats.latency_p50 >= stats.inference_p50 > 0
    obs = policy.seen[0]
    assert obs[OBS_IMAGE_PREFIX + 'third_person'] is IMAGE and obs[TASK] == 'go'
    assert obs[OBS_STATE].dtype == np.float32 and obs[OBS_TIMESTAMP] == 10.0


def test_slow_policy_latency_percentiles():
    policy = GatedPolicy(block=False, sleep=0.03)
    with PolicyRunner(policy, PolicyRunnerConfig(), SPEC) as runner:
        for i in range(3):
            _feed(runner, float(i))
            assert runner.request(i + 0.02)
            _wait(lambda: not runner.busy)
        stats = runner.stats()
    assert stats.completed == 3
    assert 0.03 <= stats.inference_p50 <= stats.inference_p95 < 1.0
    assert stats.latency_p95 >= stats.inference_p95


@pytest.mark.parametrize('setup, now, reason', [
    (lambda r: None, 1.0, 'no image from third_person'),
    (lambda r: r.on_image('third_person', IMAGE, 0.0), 1.0, 'image third_person older than 0.5s'),
    (lambda r: r.on_image('third_person', IMAGE, 1.0), 1.0, 'no state'),
    (lambda r: (r.on_image('third_person', IMAGE, 1.0), r.on_state(np.zeros(2), 0.2)), 1.0, 'state older than 0.5s'),
    (lambda r: _feed(r, 1.0, instruction=''), 1.1, 'no instruction'),
])
def test_stale_observations_are_dropped_with_a_reason(setup, now, reason):
    policy = GatedPolicy(block=False)
    runner = PolicyRunner(policy, PolicyRunnerConfig(synchronous=True), SPEC)
    setup(runner)
    assert not runner.request(now)
    stats = runner.stats()
    assert stats.stale == 1 and stats.stale_reasons == {reason: 1} and policy.seen == []


def test_synchronous_mode_delivers_in_request():
    runner = PolicyRunner(GatedPolicy(block=False), PolicyRunnerConfig(synchronous=True), SPEC)
    _feed(runner, 5.0)
    assert runner.request(5.1)
    assert [c.stamp for c in runner.pop_chunks()] == [5.0]


def test_pause_discards_the_chunk_in_flight_and_resume():
    policy = GatedPolicy(block=True)
    got = []
    with PolicyRunner(policy, PolicyRunnerConfig(), SPEC, callback=got.append) as runner:
        _feed(runner, 1.0)
        assert runner.request(1.0)
        assert policy.started.wait(5)
        runner.pause()
        policy.gate.set()
        _wait(lambda: not runner.busy)
        assert not runner.request(1.1) and got == [] and runner.pop_chunks() == []
        runner.resume()
        _feed(runner, 2.0)
        assert runner.request(2.0)
        _wait(lambda: len(got) == 1)
        runner.reset()
        assert policy.resets == 1
        stats = runner.stats()
    assert stats.dropped_paused == 2 and stats.completed == 1


class BrokenPolicy(BasePolicy):
    def __init__(self):
        self.calls = 0

    def infer(self, obs):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError('CUDA out of memory')
        return {ACTIONS: np.zeros((3, 5))}  # wrong action dim


def test_policy_errors_are_counted_and_the_worker_survives():
    policy = BrokenPolicy()
    with PolicyRunner(policy, PolicyRunnerConfig(), SPEC) as runner:
        for t in (1.0, 2.0):
            _feed(runner, t)
            assert runner.request(t)
            _wait(lambda: not runner.busy)
        stats = runner.stats()
    assert policy.calls == 2 and stats.errors == 2 and stats.completed == 0


def test_config_and_input_validation():
    with pytest.raises(ValueError, match='max_obs_age must be a finite number > 0'):
        PolicyRunnerConfig(max_obs_age=0)
    with pytest.raises(TypeError, match='must be a BasePolicy'):
        PolicyRunner(object(), PolicyRunnerConfig(synchronous=True), SPEC)
    runner = PolicyRunner(GatedPolicy(block=False), PolicyRunnerConfig(synchronous=True), SPEC)
    with pytest.raises(ValueError, match="Unknown camera 'wrist'"):
        runner.on_image('wrist', IMAGE, 0.0)
