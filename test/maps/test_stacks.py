import random

import pytest

from maps_vla.maps.stacks import recognize_stack, strip_wrappers
from maps_vla.maps.toy import minivla_like_names, openvla_like_names


def _names(pairs):
    return [n for n, _ in pairs]


@pytest.mark.parametrize('names_fn, llm_layers', [(minivla_like_names, 24), (openvla_like_names, 32)])
def test_prismatic_stack_order_and_depths(names_fn, llm_layers):
    stack = recognize_stack(_names(names_fn()))
    backbones = [s.backbone for s in stack.slots]
    assert backbones == ['dinov2'] * 24 + ['siglip'] * 27 + ['projector'] + ['llm'] * llm_layers
    assert stack.slots[0].name == 'vision_backbone.featurizer.blocks.0'
    assert stack.slots[24].name == 'vision_backbone.fused_featurizer.blocks.0'
    assert stack.slots[51].name == 'projector' and stack.slots[51].block is None
    assert stack.slots[-1].name == f'language_model.model.layers.{llm_layers - 1}'


def test_locations_of_unnumbered_params():
    stack = recognize_stack(_names(openvla_like_names()))
    loc = stack.locate
    assert (loc('vision_backbone.featurizer.pos_embed').kind, loc('vision_backbone.featurizer.pos_embed').slot) == ('pre', 0)
    assert loc('vision_backbone.featurizer.reg_token').unit == 'vision_backbone.featurizer:embed'
    assert (loc('vision_backbone.featurizer.norm.weight').kind, loc('vision_backbone.featurizer.norm.weight').slot) == ('post', 23)
    assert loc('vision_backbone.fused_featurizer.patch_embed.proj.weight').slot == 24
    assert loc('vision_backbone.fused_featurizer.attn_pool.kv.weight').slot == 50
    assert loc('language_model.model.embed_tokens.weight').slot == 52
    assert loc('language_model.lm_head.weight').slot == 52 + 31
    assert loc('language_model.model.norm.weight').kind == 'post'
    assert loc('action_head.model.fc1.weight').kind == 'new'
    assert loc('proprio_projector.fc1.weight').kind == 'new'
    assert loc('something.else.weight').kind == 'unknown'


def test_our_transformers_names(make_toy):
    model = make_toy(dual_encoder=True)
    stack = recognize_stack([n for n, _ in model.named_parameters()])
    assert [s.name for s in stack.slots] == (
        [f'vision_backbone.featurizer.encoder.layer.{i}' for i in range(3)]
        + [f'vision_backbone.fused_featurizer.encoder.layers.{i}' for i in range(3)]
        + ['projector'] + [f'language_model.model.layers.{i}' for i in range(3)])
    assert stack.locate('vision_backbone.featurizer.embeddings.patch_embeddings.projection.weight').kind == 'pre'
    assert stack.locate('vision_backbone.featurizer.layernorm.weight').kind == 'post'
    assert stack.locate('vision_backbone.fused_featurizer.post_layernorm.weight').kind == 'post'
    assert stack.locate('vision_backbone.fused_featurizer.head.probe').kind == 'post'
    assert stack.locate('vision_backbone.frozen_featurizer.encoder.layer.0.mlp.fc1.weight').kind == 'frozen'


def test_hf_siglip_with_vision_model_prefix():
    names = ['vision_backbone.featurizer.encoder.layer.0.mlp.fc1.weight',
             'vision_backbone.fused_featurizer.vision_model.embeddings.patch_embedding.weight',
             'vision_backbone.fused_featurizer.vision_model.encoder.layers.0.mlp.fc1.weight',
             'vision_backbone.fused_featurizer.vision_model.encoder.layers.1.mlp.fc1.weight',
             'vision_backbone.fused_featurizer.vision_model.post_layernorm.weight',
             'language_model.model.layers.0.mlp.up_proj.weight']
    stack = recognize_stack(names)
    assert [s.backbone for s in stack.slots] == ['dinov2', 'siglip', 'siglip', 'llm']
    assert stack.locate(names[1]).slot == 1 and stack.locate(names[4]).slot == 2


def test_peft_prefix_is_recognised():
    names = ['base_model.model.' + n for n in _names(minivla_like_names())]
    stack = recognize_stack(names)
    assert len(stack.slots) == 76
    lora = 'base_model.model.language_model.model.layers.5.self_attn.q_proj.lora_A.default.weight'
    assert stack.locate(lora).unit == 'language_model.model.layers.5'
    assert strip_wrappers('module._orig_mod.base_model.model.projector.fc1.weight') == 'projector.fc1.weight'


def test_explicit_prefixes_blocks_and_single_slots():
    names = ['embed.weight', 'encoder.0.w', 'encoder.0.b', 'encoder.1.w', 'encoder.10.w', 'encoder.2.w',
             'head.weight', 'action_head.w']
    stack = recognize_stack(names, ['embed', 'encoder', 'head'])
    assert [s.name for s in stack.slots] == ['embed', 'encoder.0', 'encoder.1', 'encoder.2', 'encoder.10', 'head']
    assert stack.locate('encoder.10.w').slot == 4
    assert stack.locate('action_head.w').kind == 'new'
    with pytest.raises(ValueError, match='match no parameter'):
        recognize_stack(names, ['embed', 'decoder'])


def test_unrecognised_model_asks_for_prefixes():
    with pytest.raises(ValueError, match='stack='):
        recognize_stack(['model.layers.0.w', 'lm_head.weight'])


def test_canonical_order_restores_module_order():
    names = _names(minivla_like_names())
    shuffled = names[:]
    random.Random(0).shuffle(shuffled)
    stack = recognize_stack(shuffled)
    ordered = stack.canonical_order(sorted(shuffled))
    slots = [stack.locate(n).slot for n in ordered if stack.locate(n).slot is not None]
    assert slots == sorted(slots)
    assert ordered[0].startswith('vision_backbone.featurizer.') and 'blocks' not in ordered[0]
