"""`maps-vla eval` renders the sim cameras at the frame size the checkpoint was trained on (issue 13, item 5)."""

import dataclasses
import importlib
import json

import pytest
import torch

from maps_vla.cli import main
from maps_vla.eval import camera_side
from maps_vla.model import make_policy, make_policy_config


class _Stop(Exception):
    """Raised by the stand-in `evaluate` once it has seen the env configs (no rollouts needed)."""


@pytest.fixture
def rendered(monkeypatch):
    """The (height, width) the eval CLI asks the sim for, per variant."""
    sizes = {}

    def fake_evaluate(env_factory, policy, variants, seeds, **kwargs):
        sizes.update({name: cfg.image_size for name, cfg in variants.items()})
        raise _Stop

    # the module, not the package's `evaluate` function of the same name
    monkeypatch.setattr(importlib.import_module('maps_vla.eval.evaluate'), 'evaluate', fake_evaluate)
    return sizes


def _checkpoint(path, capture_size):
    cfg = make_policy_config('tiny')
    cfg = cfg.replace(vision=dataclasses.replace(cfg.vision, capture_size=capture_size))
    torch.manual_seed(0)
    make_policy(cfg).save_pretrained(path)
    return path


def _eval(*args):
    with pytest.raises(_Stop):
        main(['eval', '--variants', 'train', '--episodes', '1', *args])


def test_renders_at_the_recorded_capture_size(tmp_path, rendered):
    policy = _checkpoint(tmp_path / 'p', 64)
    _eval('--policy', str(policy))
    assert rendered == {'train': (64, 64)}  # not the policy's 28 px


def test_image_size_flag_overrides(tmp_path, rendered):
    _eval('--policy', str(_checkpoint(tmp_path / 'p', 64)), '--image-size', '96')
    assert rendered == {'train': (96, 96)}


def test_old_checkpoint_renders_at_the_policy_size(tmp_path, rendered):
    policy = _checkpoint(tmp_path / 'p', 64)
    config = json.loads((policy / 'config.json').read_text())
    del config['config']['vision']['capture_size']  # written before the field existed
    (policy / 'config.json').write_text(json.dumps(config))
    _eval('--policy', str(policy))
    assert rendered == {'train': (28, 28)}


def test_camera_side_of_policies_without_vision():
    assert camera_side(object()) == 224 and camera_side(object(), default=64) == 64


def test_bad_image_size_is_refused(tmp_path, capsys):
    assert main(['eval', '--policy', 'random', '--image-size', '4']) == 2
    assert '--image-size' in capsys.readouterr().err
