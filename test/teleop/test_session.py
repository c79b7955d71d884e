"""A teleop session in the MuJoCo sim driven by synthetic key events: recorded frames, actions, tasks, reopening."""

import numpy as np
import pytest

from maps_vla.data import Dataset, DatasetWriter
from maps_vla.sim import EnvConfig, make_env
from maps_vla.teleop import KeyboardConfig, KeyboardDevice, SessionConfig, TeleopSession

SPEED, ROT = 0.01, 0.05


class ScriptedKeys:
    """A KeySource that hands out one batch of keys per control step (each `read` is one step)."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.reads = 0

    def open(self):
        pass

    def read(self):
        self.reads += 1
        return list(self.steps.pop(0)) if self.steps else ['q']

    def close(self):
        pass


@pytest.fixture(scope='module')
def env():
    with make_env(EnvConfig(image_size=(48, 48), episode_seconds=3.0)) as env:
        yield env


def _session(env, writer, keys, **config):
    device = KeyboardDevice(KeyboardConfig(pos_speed=SPEED, rot_speed=ROT), sources=[ScriptedKeys(keys)])
    device.connect()
    return TeleopSession(env, device, writer, SessionConfig(realtime=False, **config))


def test_keys_drive_the_arm_and_episodes_are_recorded(env, tmp_path):
    instruction = {seed: env.reset(seed)['task'] for seed in (5, 6)}
    first_state_6 = env.reset(6)['observation.state']
    keys = [[], ['enter'], ['w'], ['w', 'a'], ['r'], ['space'], ['j'], ['s', 'w'], ['enter'],  # episode 0, seed 5
            ['enter'], ['d'], ['b'],  # seed 6 started, then re-recorded: dropped, same scene again
            ['enter'], ['f'], ['enter'],  # episode 1, seed 6
            ['enter'], ['x'],  # seed 7 started and discarded
            ['q']]
    root = tmp_path / 'ds'
    with DatasetWriter.create(root, fps=10, features=env.features, video=False) as writer:
        session = _session(env, writer, keys, seed=5)
        result = session.run()
    assert result.saved == {0: 5, 1: 6} and result.discarded == 2 and result.frames == 9
    assert session.seed == 8  # the discard moved on to a new scene

    ds = Dataset(root)
    assert ds.num_episodes == 2 and [ep.length for ep in ds.episodes] == [7, 2]
    ep0, ep1 = ds.get_episode(0), ds.get_episode(1)
    z = [0.0] * 6
    expected0 = np.array([[*z, 0], [SPEED, 0, 0, 0, 0, 0, 0], [SPEED, SPEED, 0, 0, 0, 0, 0], [0, 0, SPEED, 0, 0, 0, 0],
                          [*z, 1], [0, 0, 0, 0, 0, ROT, 1], [*z, 1]], dtype=np.float32)
    np.testing.assert_allclose(ep0['action'], expected0, atol=1e-7)
    np.testing.assert_allclose(ep1['action'], [[*z, 0], [0, 0, -SPEED, 0, 0, 0, 0]], atol=1e-7)
    assert ep0['task'] == [instruction[5]] * 7 and ep1['task'] == [instruction[6]] * 2
    # Frame t holds the observation before action t. The servos lag a step, so compare where the TCP settled
    # (3 steps after the last translation) with where it started: w, w+a, r = 2 cm in x, 1 cm in y and z.
    state = ep0['observation.state']
    np.testing.assert_allclose(state[6, :3] - state[1, :3], [2 * SPEED, SPEED, SPEED], atol=2e-3)
    assert ep0['observation.images.third_person'].shape == (7, 48, 48, 3)
    # Re-recording restarted the same scene: the saved episode starts where a fresh reset(6) starts.
    np.testing.assert_allclose(ep1['observation.state'][0], first_state_6, atol=1e-6)

    with DatasetWriter.open(root) as writer:  # --resume appends
        assert _session(env, writer, [['enter'], ['w'], ['enter']], seed=20, num_episodes=1).run().saved == {2: 20}
    assert Dataset(root).num_episodes == 3


def test_env_end_saves_success_drops_failure_unless_kept(env, tmp_path):
    root = tmp_path / 'ds'
    steps = round(env.cfg.episode_seconds * env.cfg.control_hz)
    with DatasetWriter.create(root, fps=10, features=env.features, video=True) as writer:
        # Idle steps do not count; recording without touching anything runs into the time limit.
        result = _session(env, writer, [[], ['enter']] + [[]] * (steps + 2) + [['q']], seed=1).run()
        assert result.saved == {} and result.discarded == 1
        result = _session(env, writer, [['enter']] + [[]] * steps + [['q']], seed=1, keep_failures=True).run()
        assert result.saved == {0: 1} and result.frames == steps
    assert Dataset(root).episodes[0].length == steps


def test_quit_while_recording_drops_the_episode_and_realtime_paces(env, tmp_path):
    now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    with DatasetWriter.create(tmp_path / 'ds', fps=10, features=env.features, video=False) as writer:
        device = KeyboardDevice(sources=[ScriptedKeys([['enter'], ['w'], ['q']])])
        device.connect()
        session = TeleopSession(env, device, writer, SessionConfig(seed=3), clock=lambda: now[0], sleep=sleep)
        result = session.run()
        assert writer.num_episodes == 0 and writer.episode_frames == 0
    assert result.saved == {} and result.discarded == 1
    assert len(sleeps) == 2 and all(s == pytest.approx(0.1) for s in sleeps)  # the fake clock never advances itself


def test_session_rejects_joint_position_envs(tmp_path):
    with make_env(EnvConfig(image_size=(32, 32), action_kind='joint_position', render=False)) as env:
        with DatasetWriter.create(tmp_path / 'ds', 10, env.features, video=False) as writer:
            with pytest.raises(ValueError, match='EE-delta'):
                TeleopSession(env, KeyboardDevice(sources=[ScriptedKeys([])]), writer)
