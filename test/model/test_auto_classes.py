"""transformers' AutoConfig / AutoModel open a maps_vla checkpoint (config.json has model_type 'maps_vla')."""

import json

import torch

import maps_vla.model  # noqa: F401  (registers the Auto classes)
from maps_vla.model import VLAPolicy


def test_auto_config_and_auto_model_open_a_checkpoint(tmp_path, make_tiny, build_policy, make_batch):
    from transformers import AutoConfig, AutoModel

    cfg = make_tiny()
    policy = build_policy(cfg)
    policy.eval()
    policy.save_pretrained(tmp_path)
    assert json.loads((tmp_path / 'config.json').read_text())['model_type'] == 'maps_vla'
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.model_type == 'maps_vla' and config.vla_config() == cfg
    model = AutoModel.from_pretrained(tmp_path)
    assert isinstance(model, VLAPolicy) and model.config == cfg
    batch = make_batch(cfg)
    assert torch.equal(model.predict_action_chunk(batch), policy.predict_action_chunk(batch))
