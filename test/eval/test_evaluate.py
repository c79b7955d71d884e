"""evaluate() over ID/OOD variants and seeds with the fake env, and the saved report."""

import csv

import numpy as np
import pytest
from matplotlib.image import imread

from maps_vla.data.video import read_video
from maps_vla.eval import Split, evaluate


def _variants(fake_env):
    return {'near': fake_env.FakeEnvConfig(target_range=0.05),
            'far': fake_env.FakeEnvConfig(target_range=0.1),
            'novel instruction': fake_env.FakeEnvConfig(instruction='touch the red dot')}


def test_always_succeeding_policy(fake_env, tmp_path):
    envs = []

    def factory(cfg):
        envs.append(fake_env.make_fake_env(cfg))
        return envs[-1]

    report = evaluate(factory, fake_env.ReachPolicy(chunk=2), _variants(fake_env), seeds=range(6), max_steps=40,
                      ood=['novel instruction'], videos_per_variant=1)
    assert all(env.closed for env in envs) and len(envs) == 3
    rows = {s.name: s for s in report.summaries()}
    assert [v.split for v in report.variants] == [Split.ID, Split.ID, Split.OOD]
    assert rows['near'].rate == 1.0 and rows['near'].successes == 6
    assert rows['ID (all)'].episodes == 12 and rows['ID (all)'].rate == 1.0
    assert rows['ID (all)'].low == pytest.approx(12 / (12 + 1.959964**2), abs=1e-6)  # Wilson at k = n
    assert report.aggregate(Split.OOD).episodes == 6

    paths = report.save(tmp_path / 'report')
    md = paths['markdown'].read_text()
    assert '| near | id | 6/6 | 100.0% |' in md and '| **OOD (all)** | ood | 6/6 | 100.0% |' in md
    with open(paths['summary_csv']) as f:
        summary = list(csv.DictReader(f))
    assert [r['variant'] for r in summary] == ['near', 'far', 'novel instruction', 'ID (all)', 'OOD (all)']
    assert float(summary[0]['ci_low']) == pytest.approx(rows['near'].low, abs=1e-6)
    with open(paths['episodes_csv']) as f:
        episodes = list(csv.DictReader(f))
    assert len(episodes) == 18 and {e['outcome'] for e in episodes} == {'success'}
    assert episodes[-1]['instruction'] == 'touch the red dot'
    image = imread(paths['plot'])
    assert image.ndim == 3 and image.shape[0] > 100
    videos = sorted(k for k in paths if k.startswith('video:'))
    assert videos == ['video:far_seed0_success.mp4', 'video:near_seed0_success.mp4',
                      'video:novel_instruction_seed0_success.mp4']
    near = report.variants[0].episodes[0]
    assert len(read_video(paths['video:near_seed0_success.mp4'], 10)) == near.steps + 1
    assert report.variants[0].episodes[1].frames is None  # only the first seed is recorded


def test_episode_rows_keep_the_tasks_last_facts(tmp_path):
    from maps_vla.eval.report import EvalReport, VariantResult
    from maps_vla.eval.rollout import EpisodeResult, Outcome

    def episode(seed, outcome, info):
        return EpisodeResult(seed, outcome, 30, 0.0, 30, 0.3, 'put the red cube on the plate', info=info)

    report = EvalReport([
        VariantResult('choice', Split.ID, [episode(0, Outcome.SUCCESS, {'success': True, 'lifted_object': -1}),
                                           episode(1, Outcome.FAILURE, {'success': False, 'lifted_object': 1})]),
        VariantResult('cards', Split.OOD, [episode(2, Outcome.FAILURE, {'success': False, 'placed_card': 3})])],
        fps=10.0)
    with open(report.save(tmp_path)['episodes_csv']) as f:
        rows = list(csv.DictReader(f))
    assert [(r['lifted_object'], r['placed_card']) for r in rows] == [('-1', ''), ('1', ''), ('', '3')]
    assert 'success' not in rows[0] and rows[0]['instruction'] == 'put the red cube on the plate'


def test_never_succeeding_policy(fake_env, tmp_path):
    report = evaluate(fake_env.make_fake_env, fake_env.StillPolicy(), _variants(fake_env), seeds=[0, 1, 2, 3],
                      max_steps=10, ood=['far'], videos_per_variant=0)
    for summary in report.summaries():
        assert summary.successes == 0 and summary.rate == 0.0 and summary.low == 0.0
    assert report.aggregate(Split.OOD).high == pytest.approx(1.959964**2 / (4 + 1.959964**2), abs=1e-6)
    assert {e.outcome.value for v in report.variants for e in v.episodes} == {'timeout'}
    paths = report.save(tmp_path)
    assert not any(k.startswith('video:') for k in paths)


def test_mixed_policy_rates_per_variant(fake_env):
    """A policy that only works for near targets: success differs by variant as the rows must show."""

    class NearOnly(fake_env.ReachPolicy):
        def infer(self, obs):
            out = super().infer(obs)
            if np.abs(obs['observation.state'][3:6]).max() > 0.05:
                out['actions'] = np.zeros_like(out['actions'])
            return out

    report = evaluate(fake_env.make_fake_env, NearOnly(), _variants(fake_env), seeds=range(8), max_steps=30,
                      videos_per_variant=0)
    rows = {s.name: s for s in report.summaries()}
    assert rows['near'].rate == 1.0 and 0.0 < rows['far'].rate < 1.0
    assert rows['ID (all)'].successes == sum(rows[n].successes for n in ('near', 'far', 'novel instruction'))
    assert report.aggregate(Split.OOD) is None and 'OOD (all)' not in rows


def test_bad_arguments(fake_env):
    with pytest.raises(ValueError, match="Did you mean 'far'"):
        evaluate(fake_env.make_fake_env, fake_env.StillPolicy(), _variants(fake_env), seeds=[0], max_steps=5,
                 ood=['fra'])
    with pytest.raises(ValueError, match='seed'):
        evaluate(fake_env.make_fake_env, fake_env.StillPolicy(), _variants(fake_env), seeds=[], max_steps=5)
    with pytest.raises(ValueError, match='variant'):
        evaluate(fake_env.make_fake_env, fake_env.StillPolicy(), {}, seeds=[0], max_steps=5)
