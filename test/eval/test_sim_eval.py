"""Evaluation against the real MuJoCo sim: the scripted expert scores high, a random policy low."""

import pytest

from maps_vla.eval import BoundExpertPolicy, RandomPolicy, Split, evaluate
from maps_vla.sim import EnvConfig, make_env, make_expert


@pytest.mark.slow
def test_expert_high_random_low(tmp_path):
    variants = {v: EnvConfig(task='pick_place', variant=v, image_size=(48, 48)) for v in ('train', 'ood_color')}
    seeds = list(range(100, 106))
    expert = BoundExpertPolicy(make_env, make_expert)
    good = evaluate(expert.make_env, expert, variants, seeds, max_steps=120, ood=['ood_color'], videos_per_variant=0,
                    progress=False)
    probe = make_env(EnvConfig(render=False))
    bad = evaluate(make_env, RandomPolicy(probe.action_spec, seed=0), variants, seeds, max_steps=60,
                   ood=['ood_color'], videos_per_variant=0, progress=False)
    probe.close()
    for split in (Split.ID, Split.OOD):
        assert good.aggregate(split).rate >= 0.8
        assert bad.aggregate(split).rate <= 0.2
    good.save(tmp_path / 'report')
    assert (tmp_path / 'report' / 'report.md').is_file() and (tmp_path / 'report' / 'success_rate.png').is_file()
