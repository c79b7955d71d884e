import pytest
import torch
from torch import nn

from maps_vla.maps.param_groups import lambda_table, maps_param_groups, plan_groups
from maps_vla.maps.toy import minivla_like_names


def _check_partition(model, groups):
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    listed = [n for g in groups for n in g['param_names']]
    assert len(listed) == len(set(listed)) == len(trainable)
    assert set(listed) == trainable
    params = dict(model.named_parameters())
    for g in groups:
        assert set(g) >= {'params', 'lam', 'name', 'param_names'}
        assert all(p is params[n] for p, n in zip(g['params'], g['param_names']))


@pytest.mark.parametrize('schedule', ['linear', 'linear-code', 'cosine', 'constant'])
def test_groups_partition_trainable_params(make_toy, schedule):
    model = make_toy(dual_encoder=True)
    model.language_model.model.layers[0].mlp.up_proj.weight.requires_grad_(False)
    groups = maps_param_groups(model, 1.5, schedule)
    _check_partition(model, groups)
    names = [n for g in groups for n in g['param_names']]
    assert not any('frozen_featurizer' in n for n in names)
    assert 'language_model.model.layers.0.mlp.up_proj.weight' not in names
    for g in groups:
        if any(n.endswith('.bias') for n in g['param_names']) or g['name'] in ('action_head', 'proprio_projector'):
            assert g['lam'] == 0.0
        assert len({(g['name'], g['lam'])}) == 1
    assert len({(g['name'], g['lam']) for g in groups}) == len(groups)


def test_linear_groups_on_toy_follow_stack(make_toy):
    groups = maps_param_groups(make_toy(), 1.0, 'linear')
    lam = {g['name']: g['lam'] for g in groups if g['lam'] > 0}
    # 3 DINOv2 + 3 SigLIP + projector + 3 LLM = 10 slots: λ_k = 1 - k/9
    assert lam['vision_backbone.featurizer.encoder.layer.0'] == 1.0
    assert lam['vision_backbone.featurizer:embed'] == 1.0
    assert lam['projector'] == pytest.approx(1 - 6 / 9)
    assert lam['language_model:embed'] == pytest.approx(1 - 7 / 9)
    assert 'language_model.model.layers.2' not in lam  # last LLM layer: λ = 0
    order = [g['name'] for g in groups]
    assert order.index('vision_backbone.featurizer:embed') < order.index('vision_backbone.featurizer.encoder.layer.0')
    assert order.index('projector') < order.index('language_model.model.layers.0') < order.index('action_head')


def test_frozen_copy_left_trainable_is_an_error(make_toy):
    model = make_toy(dual_encoder=True)
    model.vision_backbone.frozen_featurizer.requires_grad_(True)
    with pytest.raises(ValueError, match='frozen copy'):
        maps_param_groups(model, 1.0)


def test_names_only_meta_model_and_adam_step(make_toy):
    real = make_toy()
    with torch.device('meta'):
        meta = make_toy()
    by_real = [(g['name'], g['lam'], g['param_names']) for g in maps_param_groups(real, 1.0)]
    by_meta = [(g['name'], g['lam'], g['param_names']) for g in maps_param_groups(meta, 1.0)]
    by_shape = [(p.name, p.lam, p.param_names) for p in plan_groups([(n, tuple(p.shape)) for n, p in real.named_parameters()], 1.0)]
    assert by_real == by_meta == by_shape
    # a stock torch optimizer accepts the groups and keeps the extra keys
    opt = torch.optim.Adam(maps_param_groups(real, 1.0), lr=1e-3)
    assert all('lam' in g and 'name' in g for g in opt.param_groups)
    out = real(torch.randn(2, 3, 28, 28), torch.randint(0, 64, (2, 4)), torch.randn(2, 8))
    out.square().mean().backward()
    opt.step()


def test_explicit_stack_on_plain_qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    lm = Qwen2ForCausalLM(Qwen2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=1, intermediate_size=32, vocab_size=32))
    with pytest.raises(ValueError, match='stack='):
        maps_param_groups(lm, 1.0)
    groups = maps_param_groups(lm, 1.0, stack=['model.embed_tokens', 'model.layers', 'model.norm', 'lm_head'])
    lam = {g['name']: g['lam'] for g in groups if g['lam'] > 0}
    assert lam == {'model.embed_tokens': 1.0, 'model.layers.0': 0.75, 'model.layers.1': 0.5, 'model.norm': 0.25}
    _check_partition(lm, groups)


def test_lambda_table_lists_every_module():
    table = lambda_table(minivla_like_names(), 1.0, 'linear-code')
    lines = table.splitlines()
    assert any('vision_backbone.featurizer.blocks.23' in line and '0.6974' in line for line in lines)
    assert any(line.split()[1] == 'projector' and '0.0132' in line for line in lines[2:-2])
    assert 'action_head' in table and '84 modules' in lines[-1]
    with pytest.raises(ValueError, match='lambda_max'):
        lambda_table(minivla_like_names())
    groups = [{'params': [nn.Parameter(torch.zeros(3, 2))], 'lam': 0.5, 'name': 'x', 'param_names': ['x.w']}]
    assert '0.5000' in lambda_table(groups)
