import pytest
import torch

from maps_vla.config import from_dict, to_dict
from maps_vla.maps.baselines import L2SP
from maps_vla.maps.factory import METHODS, FinetuneMethodConfig, make_optimizer, prepare_model
from maps_vla.maps.optimizer import SPDAdam


def _step(model, opt, reg=None):
    out = model(torch.randn(2, 3, 28, 28), torch.randint(0, 64, (2, 4)), torch.randn(2, 8))
    loss = out.square().mean() + (reg() if reg is not None else 0.0)
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize('bad, match', [
    ({'method': 'mpas'}, "Did you mean 'maps'"),
    ({'method': 'freeze:'}, 'freeze'),
    ({'method': 'fft:vision'}, 'only freeze'),
    ({'schedule': 'linaer'}, 'FinetuneMethodConfig.schedule'),
    ({'lambda_max': -1.0}, 'lambda_max'),
    ({'lr': 0.0}, 'lr'),
    ({'betas': (0.9, 1.0)}, 'betas'),
    ({'lora_anchor': 'pretrained'}, 'lora_anchor'),
    ({'anchor_dtype': 'fp8'}, 'anchor_dtype'),
    ({'lora_rank': 0}, 'lora_rank'),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        FinetuneMethodConfig(**bad)


def test_config_yaml_round_trip():
    cfg = FinetuneMethodConfig(method='freeze:dinov2,llm-early', stack=('a', 'b'), anchor_dtype='bfloat16')
    assert from_dict(FinetuneMethodConfig, to_dict(cfg)) == cfg
    assert cfg.torch_anchor_dtype is torch.bfloat16
    assert set(METHODS.names()) == {'maps', 'spd', 'fft', 'freeze', 'l2sp'}


def test_maps_and_spd(make_toy):
    model = make_toy()
    opt, reg = make_optimizer(FinetuneMethodConfig(method='maps', lambda_max=2.0, lr=1e-3), model)
    assert isinstance(opt, SPDAdam) and reg is None
    assert max(g['lam'] for g in opt.param_groups) == 2.0
    assert {g['name'] for g in opt.param_groups if g['lam'] == 2.0} == {'vision_backbone.featurizer:embed',
                                                                        'vision_backbone.featurizer.encoder.layer.0'}
    # λ = 0 groups store no anchor; the others hold a copy of the weights
    for g in opt.param_groups:
        assert g['anchor'] == ('copy' if g['lam'] > 0 else 'zero')
        assert all(('anchor' in opt.state[p]) == (g['lam'] > 0) for p in g['params'])
    _step(model, opt)
    spd, _ = make_optimizer(FinetuneMethodConfig(method='spd', lambda_max=0.5, schedule='linear'), make_toy())
    assert {g['lam'] for g in spd.param_groups} == {0.0, 0.5}


def test_baseline_methods(make_toy):
    model = make_toy()
    opt, reg = make_optimizer(FinetuneMethodConfig(method='fft', weight_decay=0.02), model)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]['weight_decay'] == 0.02 and reg is None
    model = make_toy()
    opt, _ = make_optimizer(FinetuneMethodConfig(method='freeze:vision'), model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith('vision_backbone.') for n in trainable)
    assert sum(len(g['params']) for g in opt.param_groups) == len(trainable)
    model = make_toy()
    opt, reg = make_optimizer(FinetuneMethodConfig(method='l2sp', l2sp_alpha=0.2), model)
    assert isinstance(reg, L2SP) and reg.alpha == 0.2 and opt.param_groups[0]['weight_decay'] == 0.0
    _step(model, opt, reg)


@pytest.mark.parametrize('anchor', ['init', 'zero'])
def test_lora_maps(make_toy, anchor):
    cfg = FinetuneMethodConfig(method='maps', lora=True, lora_rank=2, lora_anchor=anchor)
    with pytest.raises(RuntimeError, match='prepare_model'):
        make_optimizer(cfg, make_toy())
    model = prepare_model(cfg, make_toy())
    opt, _ = make_optimizer(cfg, model)
    decayed = [g for g in opt.param_groups if g['lam'] > 0]
    assert decayed and all(g['anchor'] == ('copy' if anchor == 'init' else 'zero') for g in decayed)
    _step(model, opt)
