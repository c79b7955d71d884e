import math

import pytest

from maps_vla.maps.param_groups import plan_groups
from maps_vla.maps.schedules import SCHEDULES, ParamSpec, schedule_lambdas
from maps_vla.maps.stacks import recognize_stack
from maps_vla.maps.toy import minivla_like_names, openvla_like_names


def _lam_by_name(pairs, schedule, lambda_max=1.0):
    plans = plan_groups(pairs, lambda_max, schedule)
    return {n: p.lam for p in plans for n in p.param_names}


# maps_spd.md §2.2 table: fraction of λ_max under the official code's layerwise_decay
@pytest.mark.parametrize('names_fn, last, expected', [
    (minivla_like_names, 23, (1.000, 0.697, 0.684, 0.342, 0.329, 0.026, 0.013)),
    (openvla_like_names, 31, (1.000, 0.726, 0.714, 0.405, 0.393, 0.024, 0.012)),
])
def test_linear_code_matches_reference_table(names_fn, last, expected):
    lam = _lam_by_name(names_fn(), 'linear-code')
    got = (lam['vision_backbone.featurizer.blocks.0.attn.qkv.weight'],
           lam['vision_backbone.featurizer.blocks.23.mlp.fc2.weight'],
           lam['vision_backbone.fused_featurizer.blocks.0.attn.qkv.weight'],
           lam['vision_backbone.fused_featurizer.blocks.26.mlp.fc1.weight'],
           lam['language_model.model.layers.0.self_attn.q_proj.weight'],
           lam[f'language_model.model.layers.{last}.mlp.down_proj.weight'],
           lam['projector.fc1.weight'])
    assert [round(x, 3) for x in got] == list(expected)
    # the whole un-numbered bucket shares the projector's value, 1-D weights are decayed, biases are not
    for name in ('vision_backbone.featurizer.pos_embed', 'language_model.model.embed_tokens.weight',
                 'language_model.model.norm.weight', 'vision_backbone.fused_featurizer.attn_pool.latent'):
        assert lam[name] == lam['projector.fc1.weight']
    assert lam['vision_backbone.featurizer.blocks.3.ls1.scale_factor'] == lam['vision_backbone.featurizer.blocks.3.attn.qkv.weight']
    assert lam['vision_backbone.featurizer.blocks.3.attn.qkv.bias'] == 0.0


def test_linear_code_scales_with_lambda_max_and_zeroes_action_queries():
    pairs = minivla_like_names(heads=False) + [('action_queries.weight', (64, 896))]
    lam1, lam3 = _lam_by_name(pairs, 'linear-code', 1.0), _lam_by_name(pairs, 'linear-code', 3.2)
    assert all(math.isclose(lam3[n], 3.2 * lam1[n]) for n in lam1)
    assert lam1['action_queries.weight'] == 0.0


@pytest.mark.parametrize('names_fn', [minivla_like_names, openvla_like_names])
def test_linear_paper_formula(names_fn):
    pairs = names_fn()
    stack = recognize_stack([n for n, _ in pairs])
    depth = len(stack.slots)
    lam = _lam_by_name(pairs, 'linear', 2.0)
    per_slot = {}
    for name, value in lam.items():
        loc = stack.locate(name)
        if loc.kind in ('block', 'module') and not name.endswith('.bias'):
            per_slot.setdefault(loc.slot, set()).add(value)
    assert all(len(v) == 1 for v in per_slot.values())
    values = [per_slot[k].pop() for k in range(depth)]
    assert values[0] == 2.0 and values[-1] == 0.0
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert all(math.isclose(v, 2.0 * (1 - k / (depth - 1))) for k, v in enumerate(values))
    siglip_last, projector, llm_first = values[50], values[51], values[52]
    assert siglip_last > projector > llm_first
    assert lam['vision_backbone.featurizer.pos_embed'] == values[0]
    assert lam['vision_backbone.fused_featurizer.norm.weight'] == values[50]
    assert lam['language_model.model.embed_tokens.weight'] == values[52]
    assert lam['language_model.model.norm.weight'] == 0.0


def test_cosine_and_constant():
    pairs = minivla_like_names()
    cos = _lam_by_name(pairs, 'cosine', 1.0)
    n = 75
    assert cos['vision_backbone.featurizer.blocks.0.attn.qkv.weight'] == 1.0
    assert math.isclose(cos['language_model.model.layers.0.mlp.up_proj.weight'],
                        0.5 * (1 + math.cos(math.pi * 51 / (n + 1))))
    assert math.isclose(cos['projector.fc2.weight'], 0.5 * (1 + math.cos(math.pi * n / (n + 1))))
    const = _lam_by_name(pairs, 'constant', 0.5)
    assert const['vision_backbone.featurizer.blocks.0.attn.qkv.weight'] == 0.5
    assert const['vision_backbone.featurizer.pos_embed'] == 0.5
    assert const['vision_backbone.featurizer.blocks.0.norm1.weight'] == 0.0
    assert const['language_model.model.layers.3.input_layernorm.weight'] == 0.0
    assert const['action_head.model.fc1.weight'] == 0.0


@pytest.mark.parametrize('schedule', sorted(SCHEDULES.names()))
def test_biases_and_new_modules_are_zero_everywhere(schedule):
    lam = _lam_by_name(minivla_like_names(), schedule, 3.0)
    assert all(v == 0.0 for n, v in lam.items() if n.endswith('.bias'))
    assert all(v == 0.0 for n, v in lam.items() if n.startswith(('action_head.', 'proprio_projector.')))
    assert any(v > 0 for v in lam.values())


def test_unknown_schedule_and_bad_lambda():
    stack = recognize_stack(['projector.fc1.weight'])
    with pytest.raises(ValueError, match="Did you mean 'linear'"):
        schedule_lambdas('lineer', [ParamSpec('projector.fc1.weight', (2, 2))], stack, 1.0)
    with pytest.raises(ValueError, match='lambda_max'):
        schedule_lambdas('linear', [ParamSpec('projector.fc1.weight', (2, 2))], stack, -1.0)


def test_linear_refuses_params_outside_the_stack():
    pairs = minivla_like_names() + [('film.gamma.weight', (4, 4))]
    with pytest.raises(ValueError, match='film.gamma.weight'):
        plan_groups(pairs, 1.0, 'linear')
    assert _lam_by_name(pairs, 'linear-code')['film.gamma.weight'] > 0
