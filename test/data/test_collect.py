"""collect_episodes with the fake env: successes saved, failures discarded, frames = observation + action."""

import numpy as np
import pytest

from maps_vla.data import Dataset, DatasetWriter, collect_episodes


class _StuckExpert:
    def reset(self):
        pass

    def get_action(self, obs):
        return np.zeros(7, dtype=np.float32)


def test_collect_saves_successful_expert_episodes(fake_env, tmp_path):
    env = fake_env.FakeEnv(fake_env.FakeEnvConfig())
    expert = fake_env.ReachExpert()
    writer = DatasetWriter.create(tmp_path / 'ds', int(env.control_hz), env.features, video=True)
    results = collect_episodes(env, expert, writer, n=3, seeds=range(100), max_steps=40)
    writer.finalize()
    assert len(results) == 3 and all(r.success for r in results)
    assert [r.episode_index for r in results] == [0, 1, 2] and expert.resets == 3
    ds = Dataset(tmp_path / 'ds')
    assert ds.num_episodes == 3 and ds.tasks == [env.instruction]
    ep = ds.get_episode(1)
    assert len(ep['action']) == results[1].steps
    # Frame t holds the observation before action t: replaying the actions from reset reproduces the states.
    obs = env.reset(results[1].seed)
    for t, action in enumerate(ep['action']):
        np.testing.assert_array_equal(ep['observation.state'][t], obs['observation.state'])
        obs, *_ = env.step(action)
    assert np.linalg.norm(obs['observation.state'][:3] - obs['observation.state'][3:6]) < env.cfg.tolerance


def test_collect_discards_failures_and_stops_when_seeds_run_out(fake_env, tmp_path, caplog):
    env = fake_env.FakeEnv(fake_env.FakeEnvConfig(max_steps=5))
    with DatasetWriter.create(tmp_path / 'ds', 10, env.features, video=False) as writer:
        results = collect_episodes(env, _StuckExpert(), writer, n=2, seeds=[1, 2, 3], max_steps=50)
        assert writer.num_episodes == 0
    assert [(r.seed, r.success, r.steps, r.episode_index) for r in results] == [(s, False, 5, None) for s in (1, 2, 3)]
    assert 'collected only 0 of 2' in caplog.text
    with DatasetWriter.open(tmp_path / 'ds') as writer:
        results = collect_episodes(env, _StuckExpert(), writer, n=1, seeds=[4], keep_failures=True)
    assert results[0].episode_index == 0 and Dataset(tmp_path / 'ds').num_episodes == 1


def test_collect_names_missing_observation_keys(fake_env, tmp_path):
    env = fake_env.FakeEnv()
    features = {**env.features, 'observation.images.top': {'dtype': 'video', 'shape': (8, 8, 3)}}
    with DatasetWriter.create(tmp_path / 'ds', 10, features, video=False) as writer:
        with pytest.raises(ValueError, match=r"lacks the dataset feature\(s\) \['observation.images.top'\]"):
            collect_episodes(env, fake_env.ReachExpert(), writer, n=1, seeds=[0])


def test_collect_with_action_noise_records_clean_expert_labels_off_its_path(fake_env, tmp_path):
    """DART: the executed translation is perturbed, the recorded action is the expert's at the recorded state."""
    env = fake_env.FakeEnv(fake_env.FakeEnvConfig())
    expert = fake_env.ReachExpert()

    def collect(name, noise):
        with DatasetWriter.create(tmp_path / name, int(env.control_hz), env.features, video=False) as writer:
            results = collect_episodes(env, expert, writer, n=1, seeds=[7], max_steps=80, action_noise=noise,
                                       progress=False)
        assert results[0].success
        return Dataset(tmp_path / name).get_episode(0)

    clean, noisy, again = collect('clean', 0.0), collect('noisy', 0.01), collect('again', 0.01)
    for t, state in enumerate(noisy['observation.state']):  # every label is the expert's action at its state
        np.testing.assert_allclose(noisy['action'][t], expert.get_action({'observation.state': state}), atol=1e-6)
    assert len(noisy['action']) != len(clean['action']) or not np.allclose(noisy['observation.state'],
                                                                          clean['observation.state'])
    np.testing.assert_array_equal(noisy['observation.state'], again['observation.state'])  # seeded by the episode
    with pytest.raises(ValueError, match='action_noise'):
        collect_episodes(env, expert, DatasetWriter.create(tmp_path / 'bad', 10, env.features, video=False), n=1,
                         seeds=[0], action_noise=-1.0)


def test_collect_all_targets_records_each_scene_once_per_named_object(tmp_path):
    """The choice variant: each seed twice, the same first picture, the two instructions."""
    from maps_vla.sim import EnvConfig, make_env, make_expert

    with make_env(EnvConfig(variant='choice', image_size=(32, 32))) as env:
        with DatasetWriter.create(tmp_path / 'ds', int(env.control_hz), env.features, video=False) as writer:
            results = collect_episodes(env, make_expert(env), writer, n=4, seeds=range(100), max_steps=150,
                                       all_targets=True, progress=False)
    assert [(r.seed, r.target) for r in results] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r.success for r in results)
    ds = Dataset(tmp_path / 'ds')
    first = [ds.get_episode(i) for i in range(4)]
    for a, b in (first[:2], first[2:]):
        np.testing.assert_array_equal(a['observation.images.third_person'][0], b['observation.images.third_person'][0])
        assert a['task'][0] != b['task'][0]  # the same picture, two instructions


def _closes(actions: np.ndarray) -> int:
    grip = actions[:, 6] > 0.5
    return int((grip[1:] & ~grip[:-1]).sum())


def test_regrasp_demos_miss_the_first_grasp_and_recover(tmp_path):
    """With regrasp_fraction the expert closes beside the cube, lifts an empty gripper, opens and grasps again."""
    from maps_vla.sim import EnvConfig, make_env, make_expert

    def collect(name, fraction):
        with make_env(EnvConfig(image_size=(32, 32))) as env:
            with DatasetWriter.create(tmp_path / name, int(env.control_hz), env.features, video=False) as writer:
                results = collect_episodes(env, make_expert(env), writer, n=3, seeds=range(100), max_steps=150,
                                           regrasp_fraction=fraction, progress=False)
        assert all(r.success for r in results)
        ds = Dataset(tmp_path / name)
        return [ds.get_episode(i)['action'] for i in range(3)]

    plain, regrasp = collect('plain', 0.0), collect('regrasp', 1.0)
    assert [_closes(a) for a in plain] == [1, 1, 1]
    assert [_closes(a) for a in regrasp] == [2, 2, 2]
    assert all(len(r) > len(p) for p, r in zip(plain, regrasp))  # the recovery takes extra steps
    with pytest.raises(ValueError, match='regrasp_fraction must be in'):
        collect_episodes(None, _StuckExpert(), None, n=1, seeds=[0], regrasp_fraction=1.5)
    with pytest.raises(ValueError, match='needs a scripted expert that can miss a grasp; got _StuckExpert'):
        collect_episodes(None, _StuckExpert(), None, n=1, seeds=[0], regrasp_fraction=0.5)
