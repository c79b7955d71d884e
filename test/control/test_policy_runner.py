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


class ValuePolicy(BasePolicy):
    """Returns whatever `actions` holds (a list: one per call, the last repeated)."""

    def __init__(self, *actions):
        self.actions = list(actions)
        self.calls = 0

    def infer(self, obs):
        self.calls += 1
        return {ACTIONS: self.actions[min(self.calls, len(self.actions)) - 1]}


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite_chunks_are_rejected_and_counted_never_delivered(bad):
    actions = np.zeros((4, 2))
    actions[2, 1] = bad
    got = []
    runner = PolicyRunner(ValuePolicy(actions, np.ones((4, 2))), PolicyRunnerConfig(synchronous=True), SPEC,
                          callback=got.append)
    _feed(runner, 1.0)
    assert runner.request(1.0)
    assert got == [] and runner.pop_chunks() == []
    stats = runner.stats()
    assert (stats.errors, stats.non_finite, stats.completed) == (1, 1, 0)
    assert runner.request(1.05)  # the runner is not stuck busy, and a finite chunk goes through
    assert len(got) == 1 and np.all(got[0].actions == 1.0)


def test_action_chunk_refuses_non_finite_actions():
    from maps_vla.control.chunk import ActionChunk

    with pytest.raises(ValueError, match=r'must be finite; 1 value\(s\) are not, the first at \(step, dim\) \(1, 0\)'):
        ActionChunk(0.0, np.array([[0.0], [np.nan]]), 0.1)


@pytest.mark.parametrize('part', ['image', 'state'])
def test_future_stamped_observations_are_invalid_and_logged(part, caplog):
    policy = GatedPolicy(block=False)
    runner = PolicyRunner(policy, PolicyRunnerConfig(synchronous=True), SPEC)
    runner.set_instruction('go')
    runner.on_image('third_person', IMAGE, 1000.0 if part == 'image' else 900.0)
    runner.on_state(np.zeros(2), 1000.0 if part == 'state' else 900.0)
    with caplog.at_level('DEBUG', logger='maps_vla.control.policy_runner'):
        assert not runner.request(900.0) and not runner.request(900.01)
    name = 'image third_person' if part == 'image' else 'state'
    assert runner.stats().stale_reasons == {f'{name} stamped ahead of the clock by more than 0.05s': 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert len(warnings) == 1 and 'ahead of the clock' in warnings[0] and '100.000 s' in warnings[0]
    assert policy.seen == []
    # within the tolerance (a little skew between machines) it is fine
    runner.on_image('third_person', IMAGE, 900.04)
    runner.on_state(np.zeros(2), 900.04)
    assert runner.request(900.0)


def test_repeated_failures_log_one_traceback_then_a_throttled_count(caplog):
    clock = [0.0]
    runner = PolicyRunner(ValuePolicy(np.zeros((3, 5))), PolicyRunnerConfig(synchronous=True, error_log_period=10.0),
                          SPEC, clock=lambda: clock[0])
    _feed(runner, 0.0)
    with caplog.at_level('ERROR', logger='maps_vla.control.policy_runner'):
        for i in range(25):  # 25 failures over 12.5 s
            clock[0] = i * 0.5
            _feed(runner, clock[0])
            runner.request(clock[0])
    records = [r for r in caplog.records if r.name == 'maps_vla.control.policy_runner']
    assert runner.stats().errors == 25
    assert len(records) == 2, [r.getMessage() for r in records]
    assert records[0].exc_info is not None and 'shape (3, 5)' in caplog.text
    assert records[1].exc_info is None and '20 more time(s)' in records[1].getMessage()


def test_simulated_latency_drops_requests_in_flight_like_the_threaded_runner():
    """Requests every 0.1 s on a policy taking 0.35 s: the threaded runner and the simulated one agree."""
    times = [round(0.1 * i, 3) for i in range(12)]
    finish = {}  # request time -> time its inference finishes
    # threaded: the policy blocks until the test releases it at the simulated finish time
    policy = GatedPolicy(block=True)
    with PolicyRunner(policy, PolicyRunnerConfig(), SPEC) as threaded:
        for t in times:
            if policy.started.is_set() and t >= finish[max(finish)] - 1e-9:
                policy.gate.set()
                _wait(lambda: not threaded.busy)
                policy.gate.clear()
                policy.started.clear()
            _feed(threaded, t)
            if threaded.request(t):
                finish[t] = t + 0.35
                assert policy.started.wait(5)
        policy.gate.set()
        _wait(lambda: not threaded.busy)
        a = threaded.stats()
    simulated = PolicyRunner(GatedPolicy(block=False), PolicyRunnerConfig(synchronous=True, latency=0.35), SPEC)
    delivered = []
    for t in times:
        _feed(simulated, t)
        simulated.request(t)
        delivered += [(t, c.stamp) for c in simulated.pop_chunks(t)]
    b = simulated.stats()
    assert (a.submitted, a.dropped_busy) == (b.submitted, b.dropped_busy) == (3, 9)
    assert delivered == [(0.4, 0.0), (0.8, 0.4)]  # each chunk arrives at the first tick after 0.35 s
    with pytest.raises(ValueError, match='needs synchronous=True'):
        PolicyRunnerConfig(latency=0.1)
