"""Fused vision backbone: second-to-last-block features, frozen unused layers, the dual encoder."""

import torch

from maps_vla.model.vla.vision_vla import FusedVisionBackbone


def _pixels(batch=3, size=28, seed=0):
    return torch.randn(batch, 6, size, size, generator=torch.Generator().manual_seed(seed))


def test_features_are_hidden_states_minus_two_without_prefix_tokens(make_tiny):
    torch.manual_seed(0)
    backbone = FusedVisionBackbone(make_tiny().vision).eval()
    pixels = _pixels()
    features = backbone(pixels)
    dino = backbone.featurizer(pixels[:, :3], output_hidden_states=True).hidden_states[-2][:, 1 + 4:]
    siglip = backbone.fused_featurizer(pixels[:, 3:], output_hidden_states=True).hidden_states[-2]
    assert features.shape == (3, 4, 32 + 48)
    assert torch.equal(features, torch.cat([dino, siglip], -1))
    last = backbone.featurizer(pixels[:, :3]).last_hidden_state[:, 5:]
    assert not torch.allclose(features[..., :32], last)  # not the final (normed) output


def test_unused_last_block_and_norms_take_no_gradient(make_tiny):
    backbone = FusedVisionBackbone(make_tiny().vision)
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    assert any(n.startswith('featurizer.encoder.layer.2.') for n in frozen)
    assert any(n.startswith('fused_featurizer.encoder.layers.2.') for n in frozen)
    assert {'featurizer.layernorm.weight', 'fused_featurizer.post_layernorm.weight',
            'featurizer.embeddings.mask_token'} <= frozen
    assert not any(n.startswith('featurizer.encoder.layer.1.') for n in frozen)
    backbone(_pixels()).square().sum().backward()
    for name, p in backbone.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name


def test_dual_encoder_frozen_copy_gets_no_grad_but_its_features_flow(make_tiny):
    torch.manual_seed(0)
    backbone = FusedVisionBackbone(make_tiny(dual=True).vision).train()
    assert not backbone.frozen_featurizer.training and not backbone.frozen_fused_featurizer.training
    frozen = [p for n, p in backbone.named_parameters() if n.startswith('frozen_')]
    assert frozen and not any(p.requires_grad for p in frozen)
    pixels = _pixels()
    out = backbone(pixels)
    assert out.shape == (3, 4, 2 * (32 + 48))
    # starts as an exact copy: frozen half == trainable half
    assert torch.equal(out[..., :80], out[..., 80:])
    out.square().sum().backward()
    assert all(p.grad is None for p in frozen)
    assert backbone.featurizer.encoder.layer[0].attention.q_proj.weight.grad is not None
    with torch.no_grad():
        weight = backbone.frozen_featurizer.encoder.layer[0].mlp.fc1.weight
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(1)))
    changed = backbone(pixels)
    assert not torch.allclose(changed[..., :32], out[..., :32])  # frozen features reach the output
    torch.testing.assert_close(changed[..., 80:], out[..., 80:])  # trainable half untouched
    backbone.copy_trainable_to_frozen()
    assert torch.equal(backbone(pixels), out)
