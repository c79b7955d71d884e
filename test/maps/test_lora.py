import pytest
import torch

from maps_vla.maps.lora import apply_lora, is_lora_factor, lora_param_groups, lora_target_modules


def test_targets_exclude_heads_frozen_copy_and_lm_head(make_toy):
    model = make_toy(dual_encoder=True)
    targets = lora_target_modules(model)
    assert 'projector.fc1' in targets and 'language_model.model.layers.0.mlp.up_proj' in targets
    assert 'vision_backbone.featurizer.encoder.layer.0.attention.q_proj' in targets
    assert not any(t.startswith(('action_head', 'proprio_projector', 'vision_backbone.frozen_featurizer'))
                   for t in targets)
    assert not any(t.endswith('lm_head') or '.head.attention' in t for t in targets)


def test_lora_groups_cover_exactly_the_factors(make_toy):
    model = apply_lora(make_toy(dual_encoder=True), rank=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    factors = {n for n in trainable if is_lora_factor(n)}
    assert factors and all(n.startswith('base_model.model.') for n in factors)
    groups = lora_param_groups(model, 1.0, 'linear')
    decayed = {n for g in groups if g['lam'] > 0 for n in g['param_names']}
    listed = [n for g in groups for n in g['param_names']]
    assert set(listed) == trainable and len(listed) == len(set(listed))
    last_llm = {n for n in factors if '.language_model.model.layers.2.' in n}  # last LLM layer: λ = 0 under 'linear'
    assert decayed == factors - last_llm
    assert trainable - factors == {n for n in trainable if '.action_head.' in n or '.proprio_projector.' in n}
    lam = {n: g['lam'] for g in groups for n in g['param_names']}
    a = 'base_model.model.vision_backbone.featurizer.encoder.layer.0.attention.q_proj.lora_A.default.weight'
    b = a.replace('lora_A', 'lora_B')
    assert lam[a] == lam[b] == 1.0
    assert lam['base_model.model.projector.fc1.lora_B.default.weight'] == pytest.approx(1 - 6 / 9)
    # gaussian init: B = 0, A random
    params = dict(model.named_parameters())
    assert torch.count_nonzero(params[b]) == 0 and torch.count_nonzero(params[a]) > 0
    assert params[a].shape[0] == 4


def test_lora_groups_need_lora_and_frozen_base(make_toy):
    with pytest.raises(ValueError, match='apply_lora'):
        lora_param_groups(make_toy(), 1.0)
    model = apply_lora(make_toy(), rank=2)
    model.base_model.model.projector.fc1.base_layer.weight.requires_grad_(True)
    with pytest.raises(ValueError, match='not LoRA factors'):
        lora_param_groups(model, 1.0)


def test_lora_on_plain_qwen2_with_explicit_stack():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    lm = Qwen2ForCausalLM(Qwen2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=1, intermediate_size=32, vocab_size=32))
    model = apply_lora(lm, rank=2)
    assert not any('lm_head' in n for n, _ in model.named_parameters() if is_lora_factor(n))
    groups = lora_param_groups(model, 2.0, stack=['model.layers'])
    lam = {g['name']: g['lam'] for g in groups}
    assert lam == {'model.layers.0': 2.0, 'model.layers.1': 0.0}
    assert all(is_lora_factor(n) for g in groups for n in g['param_names'])


@pytest.mark.parametrize('mode', ['init', 'zero'])
def test_lora_anchors_in_both_modes(make_toy, mode):
    from maps_vla.maps.drift import optimizer_anchors
    from maps_vla.maps.optimizer import SPDAdam

    model = apply_lora(make_toy(), rank=4)
    at_init = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    groups = lora_param_groups(model, 1.0, anchor=mode)
    opt = SPDAdam(groups, lr=1e-2)
    anchors = optimizer_anchors(opt)
    decayed = {n for g in groups if g['lam'] > 0 for n in g['param_names']}
    assert all(g['anchor'] == ('copy' if mode == 'init' and g['lam'] > 0 else 'zero') for g in opt.param_groups)
    if mode == 'zero':
        assert anchors == {}  # θ₀ = 0, nothing stored
    else:
        assert set(anchors) == decayed
        for name in decayed:
            assert torch.equal(anchors[name], at_init[name])
        a = next(n for n in decayed if '.lora_A.' in n)
        assert torch.count_nonzero(anchors[a]) > 0 and torch.count_nonzero(anchors[a.replace('lora_A', 'lora_B')]) == 0
        # anchors are copies: a step moves the factors (B first: A gets no gradient while B = 0), not the anchors
        b = 'base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_B.default.weight'
        out = model(torch.randn(2, 3, 28, 28), torch.randint(0, 64, (2, 4)), torch.randn(2, 8))
        out.square().mean().backward()
        opt.step()
        params = dict(model.named_parameters())
        assert not torch.equal(params[b], at_init[b]) and torch.equal(anchors[b], at_init[b])
    with pytest.raises(ValueError, match='anchor'):
        lora_param_groups(model, 1.0, anchor='pretrained')
