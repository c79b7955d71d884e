import pytest

from maps_vla.cli import main


def test_lambdas_skeletons(capsys):
    assert main(['lambdas', '--model', 'minivla', '--schedule', 'linear-code']) == 0
    out = capsys.readouterr().out
    assert 'vision_backbone.featurizer.blocks.23' in out and '0.6974' in out
    assert main(['lambdas', '--model', 'openvla', '--lambda-max', '2']) == 0
    assert 'language_model.model.layers.31' in capsys.readouterr().out
    assert main(['lambdas', '--model', 'minivla', '--schedule', 'lineer']) == 2
    assert "Did you mean 'linear'" in capsys.readouterr().err


def test_lambdas_checkpoint_header(make_toy, tmp_path, capsys):
    from safetensors.torch import save_model

    from maps_vla.maps.param_groups import plan_groups

    model = make_toy(dual_encoder=True)
    save_model(model, str(tmp_path / 'model.safetensors'))
    assert main(['lambdas', '--checkpoint', str(tmp_path), '--schedule', 'linear-code']) == 0
    out = capsys.readouterr().out
    # header keys are alphabetical; put into stack order they give the same λ as named_parameters()
    for plan in plan_groups(model, 1.0, 'linear-code'):
        if plan.lam > 0 and plan.name.endswith(('.0', '.1', '.2')):
            assert any(plan.name in line and f'{plan.lam:.4f}' in line for line in out.splitlines())
    assert 'frozen_featurizer' not in out
    assert main(['lambdas', '--checkpoint', str(tmp_path / 'missing')]) == 2


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    assert main(['demo', '--toy', '--steps', '3', '--batch-size', '2', '--out', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'MAPS (SPDAdam)' in out and 'FFT (AdamW)' in out and '| projector | projector |' in out
    assert (tmp_path / 'drift.png').stat().st_size > 1000 and (tmp_path / 'drift.md').exists()
