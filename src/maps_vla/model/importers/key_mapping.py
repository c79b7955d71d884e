"""Parameter-name mapping between timm ViTs (as stored by Prismatic / OpenVLA) and our transformers modules.

Each `Rule` ties one or more of our keys to one or more foreign keys with an exact, invertible transform, so the
same table imports and exports (vla_arch.md §5.1, verified there against timm):

DINOv2 ViT-L/14-reg4 (timm `vit_large_patch14_reg4_dinov2`) -> Dinov2WithRegistersModel
    cls_token, pos_embed (1,N,D)     -> embeddings.cls_token, embeddings.position_embeddings (1,N+1,D): timm gives
                                        CLS no position embedding (no_embed_class), so row 0 is zero on import; on
                                        export a non-zero row 0 is folded into cls_token (the same sum reaches CLS)
    reg_token                        -> embeddings.register_tokens
    patch_embed.proj                 -> embeddings.patch_embeddings.projection
    blocks.N.attn.qkv (3D, D)        -> encoder.layer.N.attention.{q,k,v}_proj (split in that order)
    blocks.N.attn.proj               -> encoder.layer.N.attention.o_proj
    blocks.N.ls{1,2}.<gamma|scale_factor> -> encoder.layer.N.layer_scale{1,2}.lambda1 (HF OpenVLA files renamed
                                        gamma to scale_factor; native Prismatic files keep gamma)
    blocks.N.{norm1,norm2,mlp.fc1,mlp.fc2} -> encoder.layer.N.{same}
    norm                             -> layernorm
    (none)                           -> embeddings.mask_token (zeros; masked-image pretraining only)
SigLIP so400m/14 (timm `vit_so400m_patch14_siglip_224`) -> SiglipVisionModel without pooling head
    pos_embed (1,N,D)                -> embeddings.position_embedding.weight (N,D)
    patch_embed.proj                 -> embeddings.patch_embedding
    blocks.N.attn.qkv                -> encoder.layers.N.self_attn.{q,k,v}_proj
    blocks.N.attn.proj               -> encoder.layers.N.self_attn.out_proj
    blocks.N.{norm1,norm2}           -> encoder.layers.N.{layer_norm1,layer_norm2}
    blocks.N.mlp.{fc1,fc2}           -> encoder.layers.N.mlp.{fc1,fc2}
    norm                             -> post_layernorm
    attn_pool.*                      -> (dropped: the MAP head never reaches the patch features)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

__all__ = ['Rule', 'dinov2_rules', 'siglip_rules', 'copy_rules', 'import_with_rules', 'export_with_rules',
           'SIGLIP_UNUSED_PREFIX']

SIGLIP_UNUSED_PREFIX = 'attn_pool.'

Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Rule:
    """Our keys <-> foreign keys (both relative to their module prefixes) and the transform kind.

    Kinds: 'copy' (1:1), 'qkv' (q,k,v <-> fused qkv), 'dino_embed' (cls + pos rows), 'siglip_pos' ((N,D) <-> (1,N,D)),
    'zeros' (no foreign counterpart), 'dual_fc1' (projector fc1 over [frozen ‖ trainable] features <- single fc1,
    import only: W -> [W/2, W/2], which gives the same output while both encoders are equal).
    """

    ours: tuple[str, ...]
    foreign: tuple[str, ...]
    kind: str = 'copy'


def _foreign_shapes(rule: Rule, ours: list[Shape]) -> list[Shape]:
    if rule.kind == 'copy':
        return ours
    if rule.kind == 'qkv':
        return [(3 * ours[0][0], *ours[0][1:])]
    if rule.kind == 'dino_embed':
        cls, pos = ours
        return [cls, (1, pos[1] - 1, pos[2])]
    if rule.kind == 'siglip_pos':
        return [(1, *ours[0])]
    if rule.kind == 'dual_fc1':
        return [(ours[0][0], ours[0][1] // 2)]
    if rule.kind == 'zeros':
        return []
    raise ValueError(f'Unknown rule kind {rule.kind!r}')


def _to_ours(rule: Rule, foreign: list[torch.Tensor], ours: list[Shape]) -> list[torch.Tensor]:
    if rule.kind == 'copy':
        return foreign
    if rule.kind == 'qkv':
        return list(foreign[0].chunk(3, dim=0))
    if rule.kind == 'dino_embed':
        cls, pos = foreign
        return [cls, torch.cat([pos.new_zeros((1, 1, pos.shape[-1])), pos], 1)]
    if rule.kind == 'siglip_pos':
        return [foreign[0][0]]
    if rule.kind == 'dual_fc1':
        return [torch.cat([foreign[0] / 2, foreign[0] / 2], 1)]
    return [torch.zeros(shape) for shape in ours]  # 'zeros'


def _to_foreign(rule: Rule, ours: list[torch.Tensor]) -> list[torch.Tensor]:
    if rule.kind == 'copy':
        return ours
    if rule.kind == 'qkv':
        return [torch.cat(ours, 0)]
    if rule.kind == 'dino_embed':
        cls, pos = ours
        return [cls + pos[:, :1], pos[:, 1:]]
    if rule.kind == 'siglip_pos':
        return [ours[0][None]]
    if rule.kind == 'zeros':
        return []
    raise ValueError(f'Rule kind {rule.kind!r} cannot be exported (dual-encoder projectors have no foreign layout)')


def copy_rules(keys: list[str], ours_prefix: str = '', foreign_prefix: str = '') -> list[Rule]:
    """1:1 rules for `keys` (relative names)."""
    return [Rule((ours_prefix + k,), (foreign_prefix + k,)) for k in keys]


def dinov2_rules(num_layers: int, layerscale: str = 'scale_factor') -> list[Rule]:
    """Rules for a DINOv2-with-registers ViT of `num_layers` blocks; `layerscale` is 'scale_factor' or 'gamma'."""
    if layerscale not in ('scale_factor', 'gamma'):
        raise ValueError(f"layerscale must be 'scale_factor' or 'gamma', got {layerscale!r}")
    rules = [Rule(('embeddings.cls_token', 'embeddings.position_embeddings'), ('cls_token', 'pos_embed'), 'dino_embed'),
             Rule(('embeddings.register_tokens',), ('reg_token',)),
             Rule(('embeddings.mask_token',), (), 'zeros')]
    rules += [Rule((f'embeddings.patch_embeddings.projection.{p}',), (f'patch_embed.proj.{p}',))
              for p in ('weight', 'bias')]
    for n in range(num_layers):
        ours, theirs = f'encoder.layer.{n}.', f'blocks.{n}.'
        for p in ('weight', 'bias'):
            rules.append(Rule(tuple(f'{ours}attention.{x}_proj.{p}' for x in 'qkv'), (f'{theirs}attn.qkv.{p}',), 'qkv'))
            rules.append(Rule((f'{ours}attention.o_proj.{p}',), (f'{theirs}attn.proj.{p}',)))
            for name in ('norm1', 'norm2', 'mlp.fc1', 'mlp.fc2'):
                rules.append(Rule((f'{ours}{name}.{p}',), (f'{theirs}{name}.{p}',)))
        for i in (1, 2):
            rules.append(Rule((f'{ours}layer_scale{i}.lambda1',), (f'{theirs}ls{i}.{layerscale}',)))
    rules += [Rule((f'layernorm.{p}',), (f'norm.{p}',)) for p in ('weight', 'bias')]
    return rules


def siglip_rules(num_layers: int) -> list[Rule]:
    """Rules for a SigLIP ViT of `num_layers` blocks (the timm `attn_pool` head has no counterpart)."""
    rules = [Rule(('embeddings.position_embedding.weight',), ('pos_embed',), 'siglip_pos')]
    rules += [Rule((f'embeddings.patch_embedding.{p}',), (f'patch_embed.proj.{p}',)) for p in ('weight', 'bias')]
    for n in range(num_layers):
        ours, theirs = f'encoder.layers.{n}.', f'blocks.{n}.'
        for p in ('weight', 'bias'):
            rules.append(Rule(tuple(f'{ours}self_attn.{x}_proj.{p}' for x in 'qkv'), (f'{theirs}attn.qkv.{p}',), 'qkv'))
            rules.append(Rule((f'{ours}self_attn.out_proj.{p}',), (f'{theirs}attn.proj.{p}',)))
            for mine, timm in (('layer_norm1', 'norm1'), ('layer_norm2', 'norm2'), ('mlp.fc1', 'mlp.fc1'),
                               ('mlp.fc2', 'mlp.fc2')):
                rules.append(Rule((f'{ours}{mine}.{p}',), (f'{theirs}{timm}.{p}',)))
    rules += [Rule((f'post_layernorm.{p}',), (f'norm.{p}',)) for p in ('weight', 'bias')]
    return rules


def import_with_rules(rules: list[Rule], take: Callable[[str, Shape], torch.Tensor], our_shapes: dict[str, Shape],
                      ours_prefix: str = '', foreign_prefix: str = '') -> dict[str, torch.Tensor]:
    """Our tensors from foreign ones.

    Args:
        rules: the mapping (relative names).
        take: foreign key, expected shape -> tensor; it raises (naming file and key) if absent or wrong.
        our_shapes: our full key -> shape (from the target model's state dict).
        ours_prefix, foreign_prefix: prepended to the rules' names.

    Returns:
        our full key -> tensor.
    """
    out: dict[str, torch.Tensor] = {}
    for rule in rules:
        ours = [ours_prefix + k for k in rule.ours]
        missing = [k for k in ours if k not in our_shapes]
        if missing:
            raise ValueError(f'Key mapping names {missing[0]!r}, which this model does not have')
        shapes = [tuple(our_shapes[k]) for k in ours]
        foreign = [take(foreign_prefix + k, s) for k, s in zip(rule.foreign, _foreign_shapes(rule, shapes))]
        out.update(zip(ours, _to_ours(rule, foreign, shapes)))
    return out


def export_with_rules(rules: list[Rule], state: dict[str, torch.Tensor], ours_prefix: str = '',
                      foreign_prefix: str = '') -> dict[str, torch.Tensor]:
    """Foreign tensors from our state dict (the inverse of `import_with_rules`)."""
    out: dict[str, torch.Tensor] = {}
    for rule in rules:
        tensors = _to_foreign(rule, [state[ours_prefix + k] for k in rule.ours])
        out.update((foreign_prefix + k, t.contiguous()) for k, t in zip(rule.foreign, tensors))
    return out
