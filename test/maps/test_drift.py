import math

import pytest
import torch

from maps_vla.maps.drift import drift_report, drift_table, plot_drift


def test_zero_drift_at_anchors(make_toy):
    model = make_toy()
    anchors = {n: p.detach().clone() for n, p in model.named_parameters()}
    rows = drift_report(model, anchors)
    assert rows and all(r.absolute == 0.0 and r.relative == 0.0 for r in rows)
    assert rows[0].name == 'vision_backbone.featurizer:embed'
    assert [r.name for r in rows][-2:] == ['proprio_projector', 'action_head']


def test_drift_equals_hand_computed_norms(make_toy):
    model = make_toy(dual_encoder=True)
    anchors = {n: p.detach().clone() for n, p in model.state_dict().items()}
    torch.manual_seed(3)
    layer = model.language_model.model.layers[1]
    with torch.no_grad():
        layer.mlp.up_proj.weight.add_(torch.randn_like(layer.mlp.up_proj.weight))
        layer.input_layernorm.weight.mul_(2.0)
        model.projector.fc2.bias.add_(0.5)
    rows = {r.name: r for r in drift_report(model, anchors)}
    prefix = 'language_model.model.layers.1.'
    d2 = sum(float((p.detach().double() - anchors[prefix + n].double()).square().sum())
             for n, p in layer.named_parameters())
    r2 = sum(float(anchors[prefix + n].double().square().sum()) for n, _ in layer.named_parameters())
    assert rows['language_model.model.layers.1'].absolute == pytest.approx(math.sqrt(d2), rel=1e-6)
    assert rows['language_model.model.layers.1'].relative == pytest.approx(math.sqrt(d2 / r2), rel=1e-6)
    proj = rows['projector']
    assert proj.absolute == pytest.approx(0.5 * math.sqrt(model.projector.fc2.bias.numel()), rel=1e-6)
    assert rows['language_model.model.layers.0'].absolute == 0.0
    assert not any('frozen' in name for name in rows)
    # two state dicts work as well
    rows2 = {r.name: r for r in drift_report(model.state_dict(), anchors)}
    assert rows2['projector'].absolute == pytest.approx(proj.absolute)


def test_table_and_png(make_toy, tmp_path):
    model = make_toy()
    anchors = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    rows = drift_report(model, anchors)
    table = drift_table({'MAPS': rows, 'FFT': rows})
    assert table.splitlines()[0].count('MAPS') == 2 and len(table.splitlines()) == 2 + len(rows)
    path = plot_drift({'MAPS': rows, 'FFT': rows}, tmp_path / 'sub' / 'drift.png')
    assert path.exists() and path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(ValueError, match='no tensor name'):
        drift_report(model, {'x': torch.zeros(1)})
    with pytest.raises(ValueError, match='shape'):
        drift_report(model, {'projector.fc1.weight': torch.zeros(1)})
