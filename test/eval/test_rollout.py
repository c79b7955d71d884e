"""rollout(): chunk execution, outcomes, video frames; the expert adapter and the random floor."""

import numpy as np
import pytest

from maps_vla.control.smoothing import ensemble_weights
from maps_vla.eval import ExpertPolicy, Outcome, RandomPolicy, rollout
from maps_vla.policy import ACTIONS, EE_DELTA_ACTION, BasePolicy


def test_reaching_policy_succeeds(fake_env):
    env = fake_env.FakeEnv()
    result = rollout(env, fake_env.ReachPolicy(), seed=3, max_steps=40)
    assert result.outcome is Outcome.SUCCESS and result.success
    assert result.inferences == result.steps and result.frames is None
    assert result.instruction == env.instruction


def test_still_policy_times_out(fake_env):
    env = fake_env.FakeEnv(fake_env.FakeEnvConfig(max_steps=100))
    policy = fake_env.StillPolicy()
    result = rollout(env, policy, seed=0, max_steps=12)
    assert result.outcome is Outcome.TIMEOUT and result.steps == 12 and policy.resets == 1
    result = rollout(fake_env.FakeEnv(fake_env.FakeEnvConfig(max_steps=7)), policy, seed=0, max_steps=50)
    assert result.outcome is Outcome.TIMEOUT and result.steps == 7  # the env truncated


def test_terminated_without_success_is_failure(fake_env):
    class Crashing(fake_env.FakeEnv):
        def step(self, action):
            obs, r, _, trunc, info = super().step(action)
            return obs, r, self.steps == 3, trunc, info

    result = rollout(Crashing(), fake_env.StillPolicy(), seed=0, max_steps=20)
    assert result.outcome is Outcome.FAILURE and result.steps == 3


def test_episode_keeps_the_last_steps_info(fake_env):
    # task facts in the step info (the emoji task's placed_card) reach the result: execution vs recognition
    class Placing(fake_env.FakeEnv):
        def step(self, action):
            obs, r, _, trunc, info = super().step(action)
            return obs, r, self.steps == 4, trunc, {**info, 'placed_card': self.steps - 2}

    result = rollout(Placing(), fake_env.StillPolicy(), seed=0, max_steps=20)
    assert result.outcome is Outcome.FAILURE and result.info == {'success': False, 'placed_card': 2}
    assert rollout(fake_env.FakeEnv(), fake_env.StillPolicy(), seed=0, max_steps=2).info == {'success': False}


@pytest.mark.parametrize('chunk, execute, expected_inferences', [(4, None, 3), (4, 2, 5), (4, 1, 10), (3, 8, 4)])
def test_chunks_execute_open_loop(fake_env, chunk, execute, expected_inferences):
    env = fake_env.FakeEnv(fake_env.FakeEnvConfig(max_steps=100))
    policy = fake_env.StillPolicy(chunk=chunk)  # never succeeds: runs exactly max_steps
    result = rollout(env, policy, seed=0, max_steps=10, execute_steps=execute)
    assert result.steps == 10 and result.inferences == expected_inferences


def test_open_loop_chunk_still_reaches(fake_env):
    result = rollout(fake_env.FakeEnv(), fake_env.ReachPolicy(chunk=8), seed=5, max_steps=40)
    assert result.success and result.inferences == -(-result.steps // 8)


class _Recording:
    """Wraps a FakeEnv and keeps every action it is sent."""

    def __init__(self, env):
        self.env, self.sent = env, []
        self.action_spec, self.instruction = env.action_spec, env.instruction

    def reset(self, seed):
        return self.env.reset(seed)

    def step(self, action):
        self.sent.append(np.asarray(action, dtype=np.float64).copy())
        return self.env.step(action)


class _Numbered(BasePolicy):
    """Chunk n (0-based call count) holds n + 10 i in every dim at step i; the gripper is 0.4 or 0.6 alternately."""

    def __init__(self, chunk):
        self.chunk, self.calls = chunk, 0

    def reset(self):
        self.calls = 0

    def infer(self, obs):
        a = np.repeat((self.calls + 10.0 * np.arange(self.chunk))[:, None], 7, axis=1) * 1e-3
        a[:, 6] = 0.6 if self.calls % 2 else 0.4
        self.calls += 1
        return {ACTIONS: a.astype(np.float32)}


def test_smoothing_none_matches_open_loop_chunks(fake_env):
    sent = {}
    for smoothing in (None, 'none'):
        env = _Recording(fake_env.FakeEnv(fake_env.FakeEnvConfig(max_steps=100)))
        result = rollout(env, _Numbered(4), seed=0, max_steps=10, execute_steps=3, smoothing=smoothing)
        assert result.steps == 10 and result.inferences == 4
        sent[smoothing] = np.stack(env.sent)
    np.testing.assert_allclose(sent['none'][:, :6], sent[None][:, :6], atol=1e-9)
    np.testing.assert_array_equal(sent['none'][:, 6], np.round(sent[None][:, 6]))  # the smoother thresholds


def test_temporal_ensemble_averages_the_chunks_covering_each_step(fake_env):
    env = _Recording(fake_env.FakeEnv(fake_env.FakeEnvConfig(max_steps=100)))
    result = rollout(env, _Numbered(3), seed=0, max_steps=6, smoothing='temporal_ensemble')
    assert result.inferences == 6  # re-inferred every step by default
    weights = ensemble_weights(3, 0.01)
    # step 4 is covered by chunks 2 (its action 2), 3 (action 1) and 4 (action 0), oldest first
    expected = weights @ np.array([2 + 20.0, 3 + 10.0, 4 + 0.0]) * 1e-3
    np.testing.assert_allclose(env.sent[4][:6], expected, rtol=1e-5)
    np.testing.assert_allclose(env.sent[0][:6], 0.0, atol=1e-9)  # only chunk 0 covers step 0
    gripper = weights @ np.array([0.4, 0.6, 0.4])
    assert env.sent[4][6] == (1.0 if gripper >= 0.5 else 0.0)
    every_other = _Recording(fake_env.FakeEnv(fake_env.FakeEnvConfig(max_steps=100)))
    assert rollout(every_other, _Numbered(3), 0, 6, execute_steps=2, smoothing='temporal_ensemble').inferences == 3


def test_unknown_smoothing_is_an_error(fake_env):
    with pytest.raises(ValueError, match="smoothing must be None or one of .*'temporal_ensemble'.*got 'ensemble'"):
        rollout(fake_env.FakeEnv(), fake_env.StillPolicy(), seed=0, max_steps=5, smoothing='ensemble')


def test_video_has_one_frame_per_step_plus_reset(fake_env):
    env = fake_env.FakeEnv()
    result = rollout(env, fake_env.ReachPolicy(), seed=1, max_steps=40, record_video=True)
    assert result.frames.shape == (result.steps + 1, 32, 48, 3) and result.frames.dtype == np.uint8
    np.testing.assert_array_equal(result.frames[0], env.reset(1)[fake_env.THIRD])
    wrist = rollout(env, fake_env.ReachPolicy(), seed=1, max_steps=40, record_video=True, video_key=fake_env.WRIST)
    assert not np.array_equal(wrist.frames, result.frames)


def test_wrong_action_shape_is_an_error(fake_env):
    class Wrong(BasePolicy):
        def infer(self, obs):
            return {ACTIONS: np.zeros((2, 6), np.float32)}

    with pytest.raises(ValueError, match=r'shape \(2, 6\); expected \(chunk, 7\)'):
        rollout(fake_env.FakeEnv(), Wrong(), seed=0, max_steps=5)
    with pytest.raises(ValueError, match='execute_steps'):
        rollout(fake_env.FakeEnv(), fake_env.StillPolicy(), seed=0, max_steps=5, execute_steps=0)


def test_expert_adapter(fake_env):
    expert = fake_env.ReachExpert()
    policy = ExpertPolicy(expert)
    assert policy.infer(fake_env.FakeEnv().reset(0))[ACTIONS].shape == (1, 7)
    result = rollout(fake_env.FakeEnv(), policy, seed=2, max_steps=40)
    assert result.success and expert.resets == 1
    with pytest.raises(TypeError, match='get_action'):
        ExpertPolicy(object())


def test_random_policy_is_seeded_and_bounded(fake_env):
    a = RandomPolicy(EE_DELTA_ACTION, seed=4, chunk_size=5).infer({})[ACTIONS]
    b = RandomPolicy(EE_DELTA_ACTION, seed=4, chunk_size=5).infer({})[ACTIONS]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 7) and a.dtype == np.float32
    assert np.abs(a[:, :6]).max() <= 0.02 and set(np.unique(a[:, 6])) <= {0.0, 1.0}
    result = rollout(fake_env.FakeEnv(), RandomPolicy(EE_DELTA_ACTION, seed=0), seed=0, max_steps=40)
    assert result.outcome is Outcome.TIMEOUT


def test_policy_without_actions_key(fake_env):
    class NoActions(BasePolicy):
        def infer(self, obs):
            return {'action': np.zeros((1, 7), np.float32)}

    with pytest.raises(ValueError, match="got keys \\['action'\\]"):
        rollout(fake_env.FakeEnv(), NoActions(), seed=0, max_steps=5)
