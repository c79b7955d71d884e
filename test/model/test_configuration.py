"""VLAConfig presets, validation and YAML round trip; the factory and the parameter-name contract."""

import dataclasses

import pytest

from maps_vla.config import from_dict, load_config, save_config, to_dict
from maps_vla.model import VLA_PRESETS, make_policy, make_policy_config
from maps_vla.model.vla.configuration_vla import (IMAGENET_MEAN_BF16, ActionHeadConfig, LLMConfig, VisionConfig,
                                                  ViTConfig, VLAConfig)


@pytest.mark.parametrize('name', ['tiny', 'minivla', 'openvla'])
def test_presets_round_trip_through_yaml(name, tmp_path):
    cfg = make_policy_config(name)
    path = tmp_path / 'cfg.yaml'
    save_config(cfg, path)
    assert load_config(VLAConfig, path) == cfg
    assert from_dict(VLAConfig, to_dict(cfg)) == cfg


def test_real_presets_have_published_sizes():
    mini, ovla = make_policy_config('minivla'), make_policy_config('openvla')
    for cfg in (mini, ovla):
        assert (cfg.vision.dino.hidden_size, cfg.vision.dino.num_layers, cfg.vision.dino.num_register_tokens) == \
            (1024, 24, 4)
        assert (cfg.vision.siglip.hidden_size, cfg.vision.siglip.num_layers, cfg.vision.siglip.intermediate_size) == \
            (1152, 27, 4304)
        assert cfg.vision.num_patches == 256 and cfg.vision.fused_dim == 2176
        assert cfg.vision.dino.mean == IMAGENET_MEAN_BF16 and cfg.vision.siglip.hidden_act == 'gelu'
        assert cfg.llm.rms_norm_eps == 1e-6 and cfg.chunk_size == 8
    assert (mini.llm.arch, mini.llm.hidden_size, mini.llm.num_layers, mini.llm.vocab_size) == ('qwen2', 896, 24, 151936)
    assert mini.llm.tie_word_embeddings and mini.head.action_vocab_end == 151921
    assert (ovla.llm.arch, ovla.llm.hidden_size, ovla.llm.num_layers, ovla.llm.vocab_size) == ('llama', 4096, 32, 32064)
    assert not ovla.llm.tie_word_embeddings and ovla.head.action_vocab_end == 32000


@pytest.mark.parametrize('factory, field, value', [
    (ViTConfig, 'num_layers', 1),
    (ViTConfig, 'num_heads', 3),
    (VisionConfig, 'image_size', 30),
    (VisionConfig, 'center_crop_scale', 0.0),
    (LLMConfig, 'arch', 'gpt2'),
    (LLMConfig, 'attn_implementation', 'flash_attention_2'),
    (ActionHeadConfig, 'attention', 'sideways'),
    (ActionHeadConfig, 'decimals', 9),
    (VLAConfig, 'cameras', ('a', 'b', 'c')),
    (VLAConfig, 'prompt_template', 'no placeholder'),
    (VLAConfig, 'proprio_dim', -1),
])
def test_invalid_values_name_the_field(factory, field, value):
    with pytest.raises(ValueError, match=field):
        factory(**{field: value})


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'minivla'"):
        make_policy_config('minivl')
    assert VLA_PRESETS.names() == ['minivla', 'openvla', 'prior', 'tiny']


def test_parameter_names_are_the_contract(make_tiny):
    policy = make_policy(make_tiny(dual=True))
    assert [n for n, _ in policy.named_children()] == ['vision_backbone', 'projector', 'language_model',
                                                       'action_head', 'proprio_projector']
    vision = [n for n, _ in policy.vision_backbone.named_children()]
    assert vision == ['featurizer', 'fused_featurizer', 'frozen_featurizer', 'frozen_fused_featurizer']
    assert type(policy.vision_backbone.featurizer).__name__ == 'Dinov2WithRegistersModel'
    assert type(policy.vision_backbone.fused_featurizer).__name__ == 'SiglipVisionModel'
    assert type(policy.language_model).__name__ == 'Qwen2ForCausalLM'
    assert [n for n, _ in policy.projector.named_children() if n.startswith('fc')] == ['fc1', 'fc2', 'fc3']
    names = {n for n, _ in policy.named_parameters()}
    assert {'vision_backbone.featurizer.embeddings.register_tokens', 'projector.fc1.weight',
            'language_model.model.layers.0.self_attn.q_proj.weight', 'action_head.model.fc1.weight',
            'proprio_projector.fc1.weight'} <= names
    llama = make_policy(make_tiny(llama=True, proprio=0))
    assert type(llama.language_model).__name__ == 'LlamaForCausalLM' and llama.proprio_projector is None


def test_make_policy_rejects_other_types():
    with pytest.raises(TypeError, match='VLAConfig'):
        make_policy(dataclasses.make_dataclass('X', [])())
