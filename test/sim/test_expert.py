"""The scripted experts succeed on >= 90 % of seeded episodes of every task variant (full figures: README)."""

import pytest

from maps_vla.sim import TASK_VARIANTS, EnvConfig, make_env, make_expert

_CASES = [(task, variant) for task, variants in TASK_VARIANTS.items() for variant in variants]
_EPISODES = 15


def _success_rate(task, variant, control_hz=10.0, episodes=_EPISODES):
    env = make_env(EnvConfig(task=task, variant=variant, render=False, control_hz=control_hz))
    expert = make_expert(env)
    successes = 0
    for seed in range(episodes):
        obs = env.reset(seed=seed)
        expert.reset()
        while True:
            obs, _, terminated, truncated, info = env.step(expert.get_action(obs))
            if terminated or truncated:
                break
        successes += info['success']
    return successes / episodes


@pytest.mark.slow
@pytest.mark.parametrize('task,variant', _CASES)
def test_expert_succeeds(task, variant):
    assert _success_rate(task, variant) >= 0.9


@pytest.mark.slow
def test_expert_succeeds_at_20_hz():
    assert _success_rate('pick_place', 'train', control_hz=20.0, episodes=5) >= 0.8


def test_expert_needs_ee_delta_actions():
    env = make_env(EnvConfig(action_kind='joint_position', render=False))
    with pytest.raises(ValueError, match='ee_delta'):
        make_expert(env)
