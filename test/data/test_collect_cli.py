"""`maps-vla collect` (with the fake env in place of the sim): --resume continues after the last recorded seed,
the 'already exists' error names --resume, and a run that saves nothing leaves nothing and exits non-zero."""

import numpy as np
import pytest

import maps_vla.sim as sim
from maps_vla.cli import main
from maps_vla.data import Dataset
from maps_vla.data.collect import last_seed


@pytest.fixture
def fake_sim(fake_env, monkeypatch):
    """maps_vla.sim.make_env / make_expert -> the fake env and its reach expert; records the seeds reset."""
    seeds = []

    class Env(fake_env.FakeEnv):
        def reset(self, seed):
            seeds.append(int(seed))
            return super().reset(seed)

    monkeypatch.setattr(sim, 'make_env', lambda cfg: Env(fake_env.FakeEnvConfig()))
    monkeypatch.setattr(sim, 'make_expert', lambda env: fake_env.ReachExpert())
    return seeds


def _states(root):
    ds = Dataset(root)
    return [ds.get_episode(i)['observation.state'][0] for i in range(ds.num_episodes)]


def test_resume_continues_after_the_last_recorded_seed(fake_sim, tmp_path):
    out = tmp_path / 'demos'
    assert main(['collect', '--out', str(out), '--episodes', '2', '--seed', '5', '--max-steps', '40']) == 0
    assert fake_sim == [5, 6] and last_seed(out) == 6
    fake_sim.clear()
    # the same command again with --resume (as after a crash): new seeds, no duplicate demos
    assert main(['collect', '--out', str(out), '--episodes', '2', '--seed', '5', '--max-steps', '40',
                 '--resume']) == 0
    assert fake_sim == [7, 8]
    states = _states(out)
    assert len(states) == 4
    assert len({tuple(s) for s in states}) == 4  # every episode starts from its own seed's state


def test_existing_dataset_error_names_resume(fake_sim, tmp_path, capsys):
    out = tmp_path / 'demos'
    assert main(['collect', '--out', str(out), '--episodes', '1', '--max-steps', '40']) == 0
    capsys.readouterr()
    assert main(['collect', '--out', str(out), '--episodes', '1', '--max-steps', '40']) == 1
    assert '--resume' in capsys.readouterr().err


@pytest.mark.parametrize('argv, code', [(['--max-steps', '0'], 2), (['--max-steps', '1'], 1),
                                        (['--regrasp-fraction', '2'], 2),
                                        (['--regrasp-fraction', '0.5'], 1)])  # the fake expert cannot miss
def test_a_run_that_saves_nothing_leaves_nothing(fake_sim, tmp_path, capsys, argv, code):
    """--max-steps 0 is refused before anything is written; 1 step never reaches the target: 0 episodes; a
    --regrasp-fraction out of range, or with an expert that cannot miss a grasp, is an error."""
    out = tmp_path / 'demos'
    assert main(['collect', '--out', str(out), '--episodes', '1'] + argv) == code
    assert not out.exists() and not (tmp_path / '.demos.partial').exists()
    assert 'error' in capsys.readouterr().err
    # nothing blocks the rerun
    assert main(['collect', '--out', str(out), '--episodes', '1', '--max-steps', '40']) == 0
    assert Dataset(out).num_episodes == 1 and Dataset(out).version == 'v3.0'


def test_png_v21_format_option(fake_sim, tmp_path):
    out = tmp_path / 'demos'
    assert main(['collect', '--out', str(out), '--episodes', '1', '--max-steps', '40', '--png',
                 '--format', 'v2.1']) == 0
    ds = Dataset(out)
    assert ds.version == 'v2.1' and ds.features[ds.image_keys[0]]['dtype'] == 'image'
    assert np.asarray(ds.sample(0)[ds.image_keys[0]]).dtype == np.uint8
