"""maps_vla.eval.counterfactual and its CLI (benchmarks/instruction_counterfactual.py): pairs are found in paired
demos; the ratio and alignment are 0 for a policy that ignores the words, 1 for one that copies the demo of the
instruction it is given, and the alignment -1 for one that copies the other demo."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from maps_vla.data import Dataset, DatasetWriter, collect_episodes
from maps_vla.eval.counterfactual import counterfactual, find_pairs, pair_frames, summarize

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'instruction_counterfactual.py'


@pytest.fixture(scope='module')
def script():
    spec = importlib.util.spec_from_file_location('instruction_counterfactual', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def paired(tmp_path_factory):
    from maps_vla.sim import EnvConfig, make_env, make_expert

    root = tmp_path_factory.mktemp('paired') / 'ds'
    with make_env(EnvConfig(variant='choice', image_size=(32, 32))) as env:
        with DatasetWriter.create(root, int(env.control_hz), env.features, video=False) as writer:
            collect_episodes(env, make_expert(env), writer, n=4, seeds=range(100), max_steps=150, all_targets=True,
                             progress=False)
            # an unpaired episode after the pairs: a scene of its own
            collect_episodes(env, make_expert(env), writer, n=1, seeds=[50], max_steps=150, progress=False)
    return Dataset(root)


class _DemoCopier:
    """Returns, for the instruction it is given, the chunk of the demo with that instruction at the same frame."""

    def __init__(self, dataset, chunk):
        self.chunks = {}
        for episode in dataset.episodes:
            sample = dataset.sample(episode.from_index, chunk)
            self.chunks.setdefault(sample['task'], sample['action'])

    def infer(self, obs):
        return {'actions': self.chunks[obs['task']]}


class _Contrary(_DemoCopier):
    """Follows the demo of the pair's other instruction: moved by the words as much as the expert, the wrong way."""

    def infer(self, obs):
        other = next(task for task in self.chunks if task != obs['task'])
        return {'actions': self.chunks[other]}


class _Blind:
    def infer(self, obs):
        return {'actions': np.zeros((4, 7), dtype=np.float32)}


def test_pairs_are_episodes_of_one_scene_with_two_instructions(paired):
    assert find_pairs(paired, limit=10) == [(0, 1), (2, 3)]
    assert find_pairs(paired, limit=1) == [(0, 1)]


def test_twins_pair_up_wherever_they_lie_in_the_dataset(tmp_path, write_twins):
    dataset = write_twins(tmp_path / 'ds', [(1, 'left', 0.0, 0.0), (2, 'left', 0.0, 0.0), (3, 'left', 0.0, 0.0),
                                            (1, 'right', 2.0, 5.0), (3, 'left', 2.0, 5.0), (2, 'right', 2.0, 5.0)])
    assert find_pairs(dataset, limit=10) == [(0, 3), (1, 5)]  # scene 3 has one instruction: no pair


def test_the_ratio_separates_a_policy_that_reads_from_one_that_ignores(paired):
    pairs = find_pairs(paired, limit=10)
    first = pair_frames(paired, pairs, '0', chunk=4)
    assert first == [[0], [0]]
    blind = counterfactual(_Blind(), paired, pairs, first, chunk=4)
    assert all(row['ratio'] == 0 and row['alignment'] == 0 and row['expert_gap'] > 0 for row in blind)
    reader = counterfactual(_DemoCopier(paired, 4), paired, pairs, first, chunk=4)
    assert all(row['ratio'] == pytest.approx(1.0) and row['error_to_demo'] == 0 for row in reader)
    assert all(row['alignment'] == pytest.approx(1.0) for row in reader)
    contrary = counterfactual(_Contrary(paired, 4), paired, pairs[:1], first[:1], chunk=4)
    assert contrary[0]['ratio'] == pytest.approx(1.0) and contrary[0]['alignment'] == pytest.approx(-1.0)


def test_ambiguous_frames_are_where_the_twins_share_a_state(paired):
    pairs = find_pairs(paired, limit=10)
    frames = pair_frames(paired, pairs, 'ambiguous', chunk=4)
    # the choice variant's twins part at once (which cube to reach), while their states still agree
    assert all(measured and measured[0] == 0 and measured == sorted(measured) for measured in frames)
    assert all(max(measured) < paired.episodes[a].length for measured, (a, _) in zip(frames, pairs))
    rows = counterfactual(_Blind(), paired, pairs, frames, chunk=4)
    assert [row['frames'] for row in rows] == frames and all(row['ratio'] == 0 for row in rows)


def test_unpaired_data_is_refused_in_one_line(script, tmp_path, capsys):
    from maps_vla.sim import EnvConfig, make_env, make_expert

    with make_env(EnvConfig(variant='train', image_size=(32, 32))) as env:
        with DatasetWriter.create(tmp_path / 'ds', int(env.control_hz), env.features, video=False) as writer:
            collect_episodes(env, make_expert(env), writer, n=2, seeds=range(10), max_steps=150, progress=False)
    assert script.main(['--policy', str(tmp_path / 'none'), '--data', str(tmp_path / 'ds')]) == 1
    assert 'no pairs' in capsys.readouterr().err


def test_summary_is_the_median_over_pairs_and_refuses_nothing():
    rows = [{'ratio': r, 'alignment': r / 2, 'policy_gap': 0.1, 'expert_gap': 0.2, 'error_to_demo': 0.0}
            for r in (0.0, 1.0, 5.0)]
    assert summarize(rows) == {'ratio': 1.0, 'alignment': 0.5, 'policy_gap': 0.1, 'expert_gap': 0.2,
                               'error_to_demo': 0.0}
    with pytest.raises(ValueError, match='no pairs'):
        summarize([])
