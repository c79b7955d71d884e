"""Importers: a tiny model exported into the published OpenVLA-OFT / MiniVLA layouts must import back identically.

The fake folders use the published file names, key names and serializers (sharded safetensors + index, DDP
`module.` prefixed `torch.save` heads, Prismatic's nested `torch.save({'model': ...})`). A reference timm-style ViT
forward written here from the timm key semantics checks the name mapping independently of its own inverse.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from maps_vla.model.importers import export_openvla_oft, export_prismatic, import_minivla, import_openvla_oft

STATS = {'libero_spatial_no_noops': {
    'action': {'q01': [-0.5] * 6 + [0.0], 'q99': [0.6] * 6 + [1.0], 'mask': [True] * 6 + [False],
               'mean': [0.0] * 7, 'std': [1.0] * 7, 'min': [-1.0] * 7, 'max': [1.0] * 7},
    'proprio': {'q01': [-0.2] * 8, 'q99': [0.3] * 8}, 'num_transitions': 100, 'num_trajectories': 3}}


def _bf16_exact(policy):
    """Round the weights to bf16 values (the published files are bf16) so fp32 round trips stay exact."""
    with torch.no_grad():
        for p in policy.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    return policy.eval()


def _attn_pool(dim, hidden, g):
    shapes = {'latent': (1, 1, dim), 'q.weight': (dim, dim), 'q.bias': (dim,), 'kv.weight': (2 * dim, dim),
              'kv.bias': (2 * dim,), 'proj.weight': (dim, dim), 'proj.bias': (dim,), 'norm.weight': (dim,),
              'norm.bias': (dim,), 'mlp.fc1.weight': (hidden, dim), 'mlp.fc1.bias': (hidden,),
              'mlp.fc2.weight': (dim, hidden), 'mlp.fc2.bias': (dim,)}
    return {f'attn_pool.{k}': torch.randn(s, generator=g) for k, s in shapes.items()}


def write_oft_folder(policy, folder, model_state=None):
    """The published OpenVLA-OFT folder layout (two bf16 shards, heads as DDP torch.save files, fp32 proprio)."""
    folder.mkdir(parents=True, exist_ok=True)
    exported = export_openvla_oft(policy)
    model = dict(model_state if model_state is not None else exported['model'])
    siglip = policy.config.vision.siglip
    model.update({f'vision_backbone.fused_featurizer.{k}': v for k, v in
                  _attn_pool(siglip.hidden_size, siglip.intermediate_size, torch.Generator().manual_seed(9)).items()})
    keys = sorted(model)
    shards = {'model-00001-of-00002.safetensors': keys[:len(keys) // 2],
              'model-00002-of-00002.safetensors': keys[len(keys) // 2:]}
    for name, shard_keys in shards.items():
        save_file({k: model[k].to(torch.bfloat16).contiguous() for k in shard_keys}, folder / name,
                  metadata={'format': 'pt'})
    (folder / 'model.safetensors.index.json').write_text(json.dumps({
        'metadata': {'total_size': sum(v.numel() * 2 for v in model.values())},
        'weight_map': {k: name for name, shard_keys in shards.items() for k in shard_keys}}))
    cfg = policy.config
    (folder / 'config.json').write_text(json.dumps({
        'model_type': 'openvla', 'architectures': ['OpenVLAForActionPrediction'],
        'vision_backbone_id': 'dinosiglip-vit-so-224px', 'llm_backbone_id': 'llama2-7b-pure',
        'arch_specifier': 'no-align+fused-gelu-mlp', 'use_fused_vision_backbone': True, 'image_sizes': [224, 224],
        'text_config': {'model_type': cfg.llm.arch, 'vocab_size': cfg.llm.vocab_size}, 'n_action_bins': 256}))
    (folder / 'dataset_statistics.json').write_text(json.dumps(STATS))
    torch.save({k: v.to(torch.bfloat16) for k, v in exported['action_head'].items()},
               folder / 'action_head--150000_checkpoint.pt')
    torch.save(exported['proprio_projector'], folder / 'proprio_projector--150000_checkpoint.pt')
    policy.tokenizer.save_pretrained(folder)
    return folder


def write_lora_adapter(folder, model_state, rank=4, alpha=8.0):
    """A PEFT adapter over a few Linear layers (timm/HF OpenVLA names) and the merged state it implies."""
    g = torch.Generator().manual_seed(5)
    targets = ['vision_backbone.featurizer.blocks.0.attn.qkv', 'vision_backbone.fused_featurizer.blocks.1.mlp.fc1',
               'projector.fc1', 'language_model.model.layers.0.self_attn.q_proj']
    adapter, merged = {}, dict(model_state)
    for target in targets:
        out_dim, in_dim = model_state[target + '.weight'].shape
        a, b = torch.randn(rank, in_dim, generator=g) * 0.1, torch.randn(out_dim, rank, generator=g) * 0.1
        adapter[f'base_model.model.{target}.lora_A.weight'] = a
        adapter[f'base_model.model.{target}.lora_B.weight'] = b
        merged[target + '.weight'] = model_state[target + '.weight'] + alpha / rank * b @ a
    (folder / 'lora_adapter').mkdir(parents=True, exist_ok=True)
    save_file(adapter, folder / 'lora_adapter' / 'adapter_model.safetensors')
    (folder / 'lora_adapter' / 'adapter_config.json').write_text(json.dumps(
        {'peft_type': 'LORA', 'r': rank, 'lora_alpha': alpha, 'target_modules': 'all-linear',
         'init_lora_weights': 'gaussian', 'lora_dropout': 0.0}))
    return {k: v.to(torch.bfloat16).float() for k, v in merged.items()}


def write_minivla_run(policy, folder, with_vision=True):
    """A native Prismatic run folder; without vision it mimics a VLM-stage checkpoint."""
    (folder / 'checkpoints').mkdir(parents=True, exist_ok=True)
    modules = export_prismatic(policy)
    vision = modules.pop('vision_backbone')
    siglip = policy.config.vision.siglip
    vision.update({f'siglip_featurizer.{k}': v for k, v in
                   _attn_pool(siglip.hidden_size, siglip.intermediate_size, torch.Generator().manual_seed(9)).items()})
    modules['llm_backbone']['llm.lm_head.weight'] = modules['llm_backbone']['llm.model.embed_tokens.weight']
    if with_vision:
        modules['vision_backbone'] = vision
    torch.save({'model': {'projector': {k: v * 0 for k, v in modules['projector'].items()},
                          'llm_backbone': modules['llm_backbone']}},
               folder / 'checkpoints' / 'step-005000-epoch-00-loss=0.9000.pt')  # older: must not be picked
    torch.save({'model': modules}, folder / 'checkpoints' / 'step-080000-epoch-09-loss=0.1234.pt')
    vlm = 'prism-qwen25-extra-dinosiglip-224px+0_5b'
    section = ({'vla': {'base_vlm': vlm, 'action_tokenizer': 'extra_action_tokenizer', 'image_sequence_len': 1,
                        'use_wrist_image': policy.config.num_views == 2}} if with_vision else
               {'model': {'model_id': vlm, 'arch_specifier': 'no-align+fused-gelu-mlp',
                          'vision_backbone_id': 'dinosiglip-vit-so-224px', 'llm_backbone_id': 'qwen25-0_5b-extra',
                          'image_resize_strategy': 'resize-naive', 'llm_max_length': 2048}})
    (folder / 'config.json').write_text(json.dumps(section))
    if with_vision:
        (folder / 'dataset_statistics.json').write_text(json.dumps(STATS))
    dino = {k[len('dino_featurizer.'):]: v for k, v in vision.items() if k.startswith('dino_featurizer.')}
    sig = {k[len('siglip_featurizer.'):]: v for k, v in vision.items() if k.startswith('siglip_featurizer.')}
    return dino, sig


def _same_outputs(a, b, batch):
    torch.testing.assert_close(a.predict_action_chunk(batch, normalized=True),
                               b.predict_action_chunk(batch, normalized=True), rtol=0, atol=0)


def _copy_heads(source, target):
    target.action_head.load_state_dict(source.action_head.state_dict())
    target.proprio_projector.load_state_dict(source.proprio_projector.state_dict())


# --- OpenVLA-OFT ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('llama', [True, False])
def test_openvla_oft_round_trip(llama, tmp_path, make_tiny, make_batch, build_policy):
    cfg = make_tiny(llama=llama)
    policy = _bf16_exact(build_policy(cfg))
    folder = write_oft_folder(policy, tmp_path / 'oft')
    # the published key set at depth 3: DINOv2 14/block + 7 (343 at 24 blocks), SigLIP 12/block + 5 + 13 attn_pool
    # (342 at 27), projector 6, the LLM (tied lm_head not stored)
    n_llm = len(policy.language_model.state_dict()) - (0 if llama else 1)
    assert len(json.loads((folder / 'model.safetensors.index.json').read_text())['weight_map']) == \
        (14 * 3 + 7) + (12 * 3 + 5 + 13) + 6 + n_llm
    imported = import_openvla_oft(folder, cfg)
    _same_outputs(imported, policy, make_batch(cfg))
    assert imported.norm_stats.action_q99[0] == pytest.approx(0.6) and imported.norm_stats.action_mask[-1] is False
    for (name, a), (_, b) in zip(policy.state_dict().items(), imported.state_dict().items()):
        assert torch.equal(a, b), name


def test_openvla_oft_lora_merge(tmp_path, make_tiny, make_batch, build_policy):
    cfg = make_tiny(llama=True)
    policy = _bf16_exact(build_policy(cfg))
    base = export_openvla_oft(policy)['model']
    merged_state = write_lora_adapter(tmp_path / 'base', base)
    write_oft_folder(policy, tmp_path / 'base')
    write_oft_folder(policy, tmp_path / 'merged', model_state=merged_state)
    expected = import_openvla_oft(tmp_path / 'merged', cfg)
    unmerged = import_openvla_oft(tmp_path / 'base', cfg)  # released checkpoints: adapter already merged
    got = import_openvla_oft(tmp_path / 'base', cfg, merge_lora=True)
    batch = make_batch(cfg)
    torch.testing.assert_close(got.predict_action_chunk(batch), expected.predict_action_chunk(batch),
                               rtol=2e-2, atol=2e-2)
    assert not torch.allclose(unmerged.predict_action_chunk(batch), expected.predict_action_chunk(batch))
    delta = got.state_dict()['projector.fc1.weight'] - unmerged.state_dict()['projector.fc1.weight']
    torch.testing.assert_close(delta, merged_state['projector.fc1.weight'] - base['projector.fc1.weight'],
                               rtol=0, atol=2e-2)


def _timm_vit(state, prefix, pixels, depth, n_prefix, heads, layerscale):
    """Reference timm ViT forward (pre-norm blocks, fused qkv, exact GELU, no_embed_class), block depth-2 output."""
    w = lambda k: state[prefix + k].float()  # noqa: E731
    x = F.conv2d(pixels, w('patch_embed.proj.weight'), w('patch_embed.proj.bias'), stride=14).flatten(2).transpose(1, 2)
    x = x + w('pos_embed')
    if n_prefix:
        x = torch.cat([w('cls_token').expand(len(x), -1, -1), w('reg_token').expand(len(x), -1, -1), x], 1)
    dim = x.shape[-1]
    for n in range(depth - 1):
        b = f'blocks.{n}.'
        y = F.layer_norm(x, (dim,), w(b + 'norm1.weight'), w(b + 'norm1.bias'), 1e-6)
        q, k, v = F.linear(y, w(b + 'attn.qkv.weight'), w(b + 'attn.qkv.bias')).reshape(
            len(x), -1, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(len(x), -1, dim)
        y = F.linear(y, w(b + 'attn.proj.weight'), w(b + 'attn.proj.bias'))
        x = x + (y * w(f'{b}ls1.{layerscale}') if layerscale else y)
        y = F.layer_norm(x, (dim,), w(b + 'norm2.weight'), w(b + 'norm2.bias'), 1e-6)
        y = F.linear(F.gelu(F.linear(y, w(b + 'mlp.fc1.weight'), w(b + 'mlp.fc1.bias'))), w(b + 'mlp.fc2.weight'),
                     w(b + 'mlp.fc2.bias'))
        x = x + (y * w(f'{b}ls2.{layerscale}') if layerscale else y)
    return x[:, n_prefix:]


def test_imported_vision_matches_a_reference_timm_forward(tmp_path, make_tiny, build_policy):
    cfg = make_tiny(llama=True)
    policy = _bf16_exact(build_policy(cfg))
    folder = write_oft_folder(policy, tmp_path / 'oft')
    state = {}
    for shard in folder.glob('model-*.safetensors'):
        state.update(load_file(shard))
    imported = import_openvla_oft(folder, cfg)
    pixels = torch.randn(2, 6, 28, 28, generator=torch.Generator().manual_seed(0))
    ours = imported.vision_backbone(pixels)
    dino = _timm_vit(state, 'vision_backbone.featurizer.', pixels[:, :3], 3, 5, 2, 'scale_factor')
    siglip = _timm_vit(state, 'vision_backbone.fused_featurizer.', pixels[:, 3:], 3, 0, 2, None)
    torch.testing.assert_close(ours, torch.cat([dino, siglip], -1), rtol=1e-4, atol=1e-5)


def test_import_into_dual_encoder_preserves_the_function(tmp_path, make_tiny, make_batch, build_policy):
    cfg = make_tiny(llama=True)
    policy = _bf16_exact(build_policy(cfg))
    folder = write_oft_folder(policy, tmp_path / 'oft')
    dual = import_openvla_oft(folder, make_tiny(llama=True, dual=True))
    assert dual.projector.fc1.weight.shape[1] == 2 * policy.projector.fc1.weight.shape[1]
    vb = dual.vision_backbone
    assert all(torch.equal(a, b) for a, b in zip(vb.featurizer.state_dict().values(),
                                                 vb.frozen_featurizer.state_dict().values()))
    assert vb.frozen_featurizer.embeddings.cls_token.data_ptr() != vb.featurizer.embeddings.cls_token.data_ptr()
    assert not any(p.requires_grad for p in vb.frozen_fused_featurizer.parameters())
    batch = make_batch(cfg)
    torch.testing.assert_close(dual.predict_action_chunk(batch, normalized=True),
                               policy.predict_action_chunk(batch, normalized=True), rtol=1e-4, atol=1e-5)


# --- MiniVLA ----------------------------------------------------------------------------------------------------

def test_minivla_round_trip(tmp_path, make_tiny, make_batch, build_policy):
    cfg = make_tiny()
    policy = build_policy(cfg).eval()
    write_minivla_run(policy, tmp_path / 'run')
    imported = import_minivla(tmp_path / 'run', cfg)
    assert imported.norm_stats.state_q01[0] == pytest.approx(-0.2)
    reference = policy.state_dict()
    for name, value in imported.state_dict().items():
        if not name.startswith(('action_head.', 'proprio_projector.')):
            assert torch.equal(value, reference[name]), name
    _copy_heads(policy, imported)  # MiniVLA checkpoints carry no OFT heads: they start random
    _same_outputs(imported.eval(), policy, make_batch(cfg))


def test_minivla_vlm_checkpoint_takes_timm_files(tmp_path, make_tiny, make_batch, build_policy):
    cfg = make_tiny()
    policy = build_policy(cfg).eval()
    dino, siglip = write_minivla_run(policy, tmp_path / 'vlm', with_vision=False)
    with pytest.raises(FileNotFoundError, match='timm_weights'):
        import_minivla(tmp_path / 'vlm', cfg)
    save_file(dino, tmp_path / 'dino.safetensors')
    torch.save(siglip, tmp_path / 'siglip.pth')
    timm_files = (tmp_path / 'dino.safetensors', tmp_path / 'siglip.pth')
    imported = import_minivla(tmp_path / 'vlm', cfg, timm_weights=timm_files)
    assert imported.norm_stats.action_q99 == (1.0,) * 7  # a VLM run has no statistics: identity
    _copy_heads(policy, imported)
    _same_outputs(imported.eval(), policy, make_batch(cfg))


def test_minivla_config_mismatch_and_bad_payload(tmp_path, make_tiny, build_policy):
    cfg = make_tiny()
    policy = build_policy(cfg)
    write_minivla_run(policy, tmp_path / 'vlm', with_vision=False)
    with pytest.raises(ValueError, match=r"config\.json: key 'model\.llm_backbone_id'"):
        import_minivla(tmp_path / 'vlm', make_tiny(llama=True))
    write_minivla_run(policy, tmp_path / 'run')
    bad = tmp_path / 'run' / 'checkpoints' / 'step-090000-epoch-10-loss=0.1000.pt'
    torch.save({'state_dict': {}}, bad)
    with pytest.raises(ValueError, match=rf"{bad.name}: missing key 'model'"):
        import_minivla(tmp_path / 'run', cfg)
    bad.unlink()
    with pytest.raises(FileNotFoundError, match='step-'):
        import_minivla(tmp_path / 'run', cfg, checkpoint=bad)


# --- bad OpenVLA-OFT folders ------------------------------------------------------------------------------------

@pytest.fixture
def oft(tmp_path, make_tiny, build_policy):
    cfg = make_tiny(llama=True)
    return write_oft_folder(_bf16_exact(build_policy(cfg)), tmp_path / 'oft'), cfg


def _edit_shard(folder, change):
    index = json.loads((folder / 'model.safetensors.index.json').read_text())
    for shard in sorted(set(index['weight_map'].values())):
        state = load_file(folder / shard)
        if change(state):
            save_file(state, folder / shard)
            return shard
    raise AssertionError('no shard changed')


@pytest.mark.parametrize('name, pattern', [
    ('dataset_statistics.json', 'dataset_statistics.json'),
    ('model-00002-of-00002.safetensors', 'model-00002-of-00002.safetensors'),
    ('action_head--150000_checkpoint.pt', r'action_head--\*_checkpoint\.pt'),
    ('proprio_projector--150000_checkpoint.pt', r'proprio_projector--\*_checkpoint\.pt'),
    ('tokenizer_config.json', 'tokenizer_config.json'),
    ('config.json', 'config.json'),
])
def test_missing_file_is_named(oft, name, pattern):
    folder, cfg = oft
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=pattern):
        import_openvla_oft(folder, cfg)


def test_new_heads_allows_missing_head_files(oft):
    folder, cfg = oft
    (folder / 'action_head--150000_checkpoint.pt').unlink()
    (folder / 'proprio_projector--150000_checkpoint.pt').unlink()
    policy = import_openvla_oft(folder, cfg, new_heads=True)
    assert not any(p.is_meta for p in policy.parameters())


def test_shape_mismatch_names_shard_and_key(oft):
    folder, cfg = oft
    key = 'vision_backbone.fused_featurizer.blocks.1.attn.qkv.weight'

    def change(state):
        if key in state:
            state[key] = state[key][:-3].contiguous()
            return True
    shard = _edit_shard(folder, change)
    message = rf'{shard}: key .{key}. has shape \(141, 48\), but this model needs \(144, 48\)'
    with pytest.raises(ValueError, match=message):
        import_openvla_oft(folder, cfg)


def test_wrong_dtype_names_file_and_key(oft):
    folder, cfg = oft
    path = folder / 'action_head--150000_checkpoint.pt'
    state = torch.load(path)
    state['module.model.fc1.weight'] = state['module.model.fc1.weight'].to(torch.int32)
    torch.save(state, path)
    message = r"action_head--150000_checkpoint\.pt: key 'module\.model\.fc1\.weight' has dtype torch\.int32"
    with pytest.raises(TypeError, match=message):
        import_openvla_oft(folder, cfg)


def test_missing_and_unexpected_keys_are_named(oft, make_tiny):
    folder, cfg = oft
    key = 'language_model.model.layers.1.mlp.down_proj.weight'
    index_path = folder / 'model.safetensors.index.json'
    index = json.loads(index_path.read_text())
    shard = index['weight_map'][key]
    state = load_file(folder / shard)
    film = 'vision_backbone.featurizer.blocks.0.scale.weight'
    state[film] = torch.zeros(32, 64)  # FiLM-style extra key
    save_file(state, folder / shard)
    with pytest.raises(ValueError, match=rf"{shard}: unexpected key '{film}'"):
        import_openvla_oft(folder, cfg)
    del state[key], state[film]
    save_file(state, folder / shard)
    message = rf"{shard}: missing key '{key}' \(listed in model\.safetensors\.index\.json\)"
    with pytest.raises(ValueError, match=message):
        import_openvla_oft(folder, cfg)
    del index['weight_map'][key]
    index_path.write_text(json.dumps(index))
    with pytest.raises(ValueError, match=rf"model\.safetensors\.index\.json: missing key '{key}'"):
        import_openvla_oft(folder, cfg)


def test_vocab_mismatch_names_the_config_key(oft, make_tiny):
    folder, _ = oft
    with pytest.raises(ValueError, match=r"config\.json: key 'text_config\.vocab_size' is 384"):
        import_openvla_oft(folder, 'openvla')


def test_import_verb_writes_a_loadable_checkpoint(tmp_path, make_tiny, make_batch, build_policy, capsys):
    from maps_vla.cli import main
    from maps_vla.config import save_config
    from maps_vla.model.vla.modeling_vla import VLAPolicy

    cfg = make_tiny()
    policy = build_policy(cfg).eval()
    write_minivla_run(policy, tmp_path / 'run')
    save_config(cfg, tmp_path / 'tiny.yaml')
    assert main(['import', str(tmp_path / 'run'), '--format', 'minivla', '--config', str(tmp_path / 'tiny.yaml'),
                 '--out', str(tmp_path / 'ours')]) == 0
    loaded = VLAPolicy.from_pretrained(tmp_path / 'ours')
    for name, value in loaded.state_dict().items():
        if not name.startswith(('action_head.', 'proprio_projector.')):
            assert torch.equal(value, policy.state_dict()[name]), name
    assert main(['import', str(tmp_path / 'nothing'), '--format', 'openvla-oft', '--config', str(tmp_path / 'tiny.yaml'),
                 '--out', str(tmp_path / 'x')]) == 1
    assert 'maps-vla import: error' in capsys.readouterr().err


# --- what the importers refuse or adapt (issue 16) --------------------------------------------------------------

def test_film_checkpoint_is_refused_naming_the_file(oft):
    """OFT's FiLM models save the instruction-conditioned vision backbone separately; the plain weights in the
    model files would silently give other image features."""
    folder, cfg = oft
    torch.save({'module.featurizer.blocks.0.film.scale.weight': torch.zeros(2)},
               folder / 'vision_backbone--150000_checkpoint.pt')
    with pytest.raises(ValueError, match=r"vision_backbone--150000_checkpoint\.pt'.*FiLM"):
        import_openvla_oft(folder, cfg)


def test_diffusion_checkpoint_is_refused_naming_the_file(oft):
    folder, cfg = oft
    torch.save({'module.model.fc1.weight': torch.zeros(2)}, folder / 'noisy_action_projector--150000_checkpoint.pt')
    with pytest.raises(ValueError, match=r"noisy_action_projector--150000_checkpoint\.pt'.*diffusion"):
        import_openvla_oft(folder, cfg)


def test_aloha_models_normalize_with_min_max_bounds(oft):
    """OFT's ALOHA models use NormalizationType.BOUNDS ([min, max]); LIBERO / Bridge ones BOUNDS_Q99."""
    folder, cfg = oft
    stats = {'aloha1_put_X_into_pot_300_demos': {
        'action': {'q01': [-0.5] * 7, 'q99': [0.5] * 7, 'min': [-2.0] * 7, 'max': [3.0] * 7, 'mask': [True] * 7},
        'proprio': {'q01': [-0.1] * 8, 'q99': [0.1] * 8, 'min': [-1.0] * 8, 'max': [1.5] * 8}}}
    (folder / 'dataset_statistics.json').write_text(json.dumps(stats))
    policy = import_openvla_oft(folder, cfg)  # the unnorm key names ALOHA: min/max
    assert policy.norm_stats.action_q01 == (-2.0,) * 7 and policy.norm_stats.action_q99 == (3.0,) * 7
    assert policy.norm_stats.state_q01 == (-1.0,) * 8 and policy.norm_stats.state_q99 == (1.5,) * 8
    q99 = import_openvla_oft(folder, cfg, normalization='bounds_q99')
    assert q99.norm_stats.action_q99 == (0.5,) * 7
    del stats['aloha1_put_X_into_pot_300_demos']['action']['min']
    (folder / 'dataset_statistics.json').write_text(json.dumps(stats))
    with pytest.raises(ValueError, match=r"dataset_statistics\.json: key 'aloha1_put_X_into_pot_300_demos\.action' "
                                         r"has no \['min'\]"):
        import_openvla_oft(folder, cfg)


def test_published_oft_head_key_lists_import(oft, make_tiny):
    """Head files written from openvla-oft's module definitions (MLPResNet of L1RegressionActionHead, the two
    Linear layers of ProprioProjector, DDP `module.` prefix), not by our exporter, land on the right parameters."""
    folder, cfg = oft
    llm, dim, state = cfg.llm.hidden_size, cfg.action_dim, cfg.proprio_dim
    g = torch.Generator().manual_seed(11)
    head_shapes = {'model.layer_norm1.weight': (llm * dim,), 'model.layer_norm1.bias': (llm * dim,),
                   'model.fc1.weight': (llm, llm * dim), 'model.fc1.bias': (llm,),
                   'model.layer_norm2.weight': (llm,), 'model.layer_norm2.bias': (llm,),
                   'model.fc2.weight': (dim, llm), 'model.fc2.bias': (dim,)}
    for block in range(2):  # MLPResNetBlock.ffn = Sequential(LayerNorm, Linear, ReLU)
        head_shapes.update({f'model.mlp_resnet_blocks.{block}.ffn.0.weight': (llm,),
                            f'model.mlp_resnet_blocks.{block}.ffn.0.bias': (llm,),
                            f'model.mlp_resnet_blocks.{block}.ffn.1.weight': (llm, llm),
                            f'model.mlp_resnet_blocks.{block}.ffn.1.bias': (llm,)})
    proprio_shapes = {'fc1.weight': (llm, state), 'fc1.bias': (llm,), 'fc2.weight': (llm, llm), 'fc2.bias': (llm,)}
    head = {f'module.{k}': torch.randn(s, generator=g).to(torch.bfloat16) for k, s in head_shapes.items()}
    proprio = {f'module.{k}': torch.randn(s, generator=g) for k, s in proprio_shapes.items()}
    torch.save(head, folder / 'action_head--150000_checkpoint.pt')
    torch.save(proprio, folder / 'proprio_projector--150000_checkpoint.pt')
    policy = import_openvla_oft(folder, cfg)
    for name, value in policy.action_head.state_dict().items():
        assert torch.equal(value, head[f'module.{name}'].float()), name
    for name, value in policy.proprio_projector.state_dict().items():
        assert torch.equal(value, proprio[f'module.{name}']), name
    assert set(policy.action_head.state_dict()) == set(head_shapes)


@pytest.mark.parametrize('change, match', [
    ({'action_tokenizer': 'libero_vq_extra_action_tokenizer'}, r"'vla\.action_tokenizer' is "
                                                                r"'libero_vq_extra_action_tokenizer'.*VQ"),
    ({'action_tokenizer': 'fast_action_tokenizer'}, r"'vla\.action_tokenizer' is 'fast_action_tokenizer'; only"),
    ({'image_sequence_len': 2}, r"'vla\.image_sequence_len' is 2"),
    ({'use_wrist_image': False}, r"'vla\.use_wrist_image' is False.*cameras"),
    ('vq folder', r"vq'.* exists.*VQ"),
])
def test_minivla_run_config_is_checked(tmp_path, make_tiny, build_policy, change, match):
    """The real run config `{"vla": {action_tokenizer, image_sequence_len, use_wrist_image, ..}}`."""
    policy = build_policy(make_tiny())
    write_minivla_run(policy, tmp_path / 'run')
    path = tmp_path / 'run' / 'config.json'
    data = json.loads(path.read_text())
    if change == 'vq folder':
        (tmp_path / 'run' / 'vq' / 'pretrain_vq+mx-libero_90+fach-7+ng-7+nemb-128+nlatent-512').mkdir(parents=True)
    else:
        data['vla'].update(change)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=match):
        import_minivla(tmp_path / 'run', policy.config)
