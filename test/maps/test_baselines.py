import pytest
import torch

from maps_vla.maps.baselines import FREEZE_PRESETS, L2SP, fft_optimizer, freeze, frozen_names
from maps_vla.maps.toy import minivla_like_names

NAMES = [n for n, _ in minivla_like_names()]


def _select(prefixes):
    return {n for n in NAMES if n.startswith(prefixes)}


def _llm_layers(lo, hi):
    return {n for n in NAMES for i in range(lo, hi) if n.startswith(f'language_model.model.layers.{i}.')}


@pytest.mark.parametrize('preset, expected', [
    ('dinov2', _select(('vision_backbone.featurizer.',))),
    ('siglip', _select(('vision_backbone.fused_featurizer.',))),
    ('vision', _select(('vision_backbone.',))),
    ('projector', _select(('projector.',))),
    ('language', _select(('language_model.',))),
    ('llm-early', _llm_layers(0, 12) | {'language_model.model.embed_tokens.weight'}),
    ('llm-late', _llm_layers(12, 24) | {'language_model.model.norm.weight'}),
    ('vlm', _select(('vision_backbone.', 'projector.', 'language_model.'))),
])
def test_presets_select_exactly(preset, expected):
    assert set(frozen_names(NAMES, preset)) == expected


def test_combined_presets_prefixes_and_typos():
    got = set(frozen_names(NAMES, 'dinov2, projector.fc1'))
    assert got == _select(('vision_backbone.featurizer.', 'projector.fc1.'))
    assert set(frozen_names(NAMES, ['llm-early', 'llm-late'])) == set(frozen_names(NAMES, 'language'))
    with pytest.raises(ValueError, match="Did you mean 'siglip'"):
        frozen_names(NAMES, 'siglpi')
    with pytest.raises(ValueError):
        frozen_names(NAMES, '')
    assert 'vlm' in FREEZE_PRESETS


def test_freeze_model_in_place(make_toy):
    model = make_toy()
    frozen = freeze(model, 'vision,llm-early')
    for name, p in model.named_parameters():
        assert p.requires_grad == (name not in frozen)
    assert all(n.startswith(('vision_backbone.', 'language_model.model.layers.0.', 'language_model.model.embed'))
               for n in frozen)
    # 3 LLM layers: early = layer 0 (⌊3/2⌋ = 1 layer) + embed_tokens
    assert not any(n.startswith('language_model.model.layers.1.') for n in frozen)
    opt = fft_optimizer(model, 1e-4)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults['weight_decay'] == 0.01
    assert sum(len(g['params']) for g in opt.param_groups) == sum(p.requires_grad for p in model.parameters())


def test_l2sp_penalty_matches_hand_computation(make_toy):
    model = make_toy()
    reg = L2SP(model, alpha=0.3, beta=0.05)
    # at the anchors only the new modules' plain L2 term remains
    at_anchor = 0.05 / 2 * sum(float(p.detach().double().square().sum()) for n, p in model.named_parameters()
                               if n.startswith(('action_head.', 'proprio_projector.')))
    assert float(reg().detach()) == pytest.approx(at_anchor, rel=1e-5) and at_anchor > 0
    torch.manual_seed(1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    expected = 0.0
    for n, p in model.named_parameters():
        if n.startswith(('action_head.', 'proprio_projector.')):
            expected += 0.05 / 2 * float(p.detach().double().square().sum())
        else:
            expected += 0.3 / 2 * float((p.detach().double() - before[n].double()).square().sum())
    penalty = reg()
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-5)
    penalty.backward()
    w = model.projector.fc1.weight
    assert torch.allclose(w.grad, 0.3 * (w.detach() - before['projector.fc1.weight']), atol=1e-6)
    state = reg.state_dict()
    other = L2SP(model, alpha=1.0, beta=1.0)
    other.load_state_dict(state)
    assert float(other().detach()) == pytest.approx(float(penalty.detach()), rel=1e-6)
    with pytest.raises(ValueError, match='alpha'):
        L2SP(model, alpha=-1.0)
