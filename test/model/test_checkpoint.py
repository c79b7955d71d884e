"""Our checkpoint folder: save -> load gives identical outputs; every bad file gives one named error."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from maps_vla.model import VLAPolicy
from maps_vla.policy import ActionSpec


@pytest.mark.parametrize('head, dual', [('l1_regression', False), ('l1_regression', True), ('discrete_bins', False)])
def test_save_load_gives_identical_outputs(head, dual, tmp_path, make_tiny, make_batch, build_policy):
    cfg = make_tiny(head, dual=dual)
    spec = ActionSpec(names=('x', 'y', 'z', 'rx', 'ry', 'rz', 'grip'), control_hz=15.0)
    policy = build_policy(cfg)
    policy.action_spec = spec
    with torch.no_grad():  # make the frozen copy differ from the trainable encoder, as after training
        for p in policy.vision_backbone.featurizer.parameters():
            p.add_(0.01)
    policy.eval()
    batch = make_batch(cfg)
    before = policy.predict_action_chunk(batch)
    policy.save_pretrained(tmp_path / 'ckpt')
    assert {'config.json', 'model.safetensors', 'normalization.json', 'action_spec.json',
            'tokenizer.json', 'tokenizer_config.json'} <= {p.name for p in (tmp_path / 'ckpt').iterdir()}
    loaded = VLAPolicy.from_pretrained(tmp_path / 'ckpt')
    assert not loaded.training
    assert loaded.config == cfg and loaded.norm_stats == policy.norm_stats and loaded.action_spec == spec
    assert torch.equal(loaded.predict_action_chunk(batch), before)
    for (name, a), (_, b) in zip(policy.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert [n for n, p in loaded.named_parameters() if not p.requires_grad] == \
        [n for n, p in policy.named_parameters() if not p.requires_grad]
    assert loaded.language_model.lm_head.weight is loaded.language_model.model.embed_tokens.weight


def test_load_with_dtype(tmp_path, make_tiny, build_policy):
    build_policy(make_tiny()).save_pretrained(tmp_path)
    loaded = VLAPolicy.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}


@pytest.fixture
def saved(tmp_path, make_tiny, build_policy):
    build_policy(make_tiny()).save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize('name', ['config.json', 'model.safetensors', 'normalization.json', 'action_spec.json',
                                  'tokenizer_config.json'])
def test_missing_file_is_named(saved, name):
    (saved / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        VLAPolicy.from_pretrained(saved)


def _drop_hashes(folder):
    """Make the folder look like a checkpoint saved before weight hashes were recorded."""
    payload = json.loads((folder / 'config.json').read_text())
    payload.pop('files', None)
    (folder / 'config.json').write_text(json.dumps(payload))


def _rewrite(folder, change):
    """Edit the weights by hand (so the recorded hash no longer applies: it is dropped)."""
    state = load_file(folder / 'model.safetensors')
    change(state)
    save_file(state, folder / 'model.safetensors')
    _drop_hashes(folder)


def test_shape_mismatch_names_file_and_key(saved):
    key = 'projector.fc2.weight'
    _rewrite(saved, lambda s: s.__setitem__(key, s[key][:, :-1].contiguous()))
    with pytest.raises(ValueError, match=rf'model\.safetensors.*shape.*{key}') as info:
        VLAPolicy.from_pretrained(saved)
    assert 'more problem' not in str(info.value)


def test_wrong_dtype_names_file_and_key(saved):
    key = 'language_model.model.layers.1.mlp.up_proj.weight'
    _rewrite(saved, lambda s: s.__setitem__(key, s[key].to(torch.int64)))
    with pytest.raises(TypeError, match=rf'model\.safetensors.*int64.*{key}'):
        VLAPolicy.from_pretrained(saved)


def test_missing_and_unexpected_keys_are_named(saved):
    _rewrite(saved, lambda s: s.pop('action_head.model.fc2.bias'))
    with pytest.raises(ValueError, match=r"model\.safetensors: missing key 'action_head\.model\.fc2\.bias'"):
        VLAPolicy.from_pretrained(saved)
    _rewrite(saved, lambda s: s.update({'action_head.model.fc2.bias': torch.zeros(7), 'extra.weight': torch.zeros(1)}))
    with pytest.raises(ValueError, match=r"unexpected key 'extra\.weight'"):
        VLAPolicy.from_pretrained(saved)


def test_foreign_config_is_refused(saved):
    (saved / 'config.json').write_text(json.dumps({'model_type': 'openvla'}))
    with pytest.raises(ValueError, match='not a maps_vla checkpoint'):
        VLAPolicy.from_pretrained(saved)


def test_saving_records_the_weights_sha256(saved):
    from maps_vla.model.checkpoint import file_sha256

    files = json.loads((saved / 'config.json').read_text())['files']
    assert files == {'model.safetensors': {'sha256': file_sha256(saved / 'model.safetensors'),
                                           'bytes': (saved / 'model.safetensors').stat().st_size}}


def test_a_flipped_weight_byte_is_detected_at_load(saved):
    from maps_vla.model.checkpoint import CheckpointError

    path = saved / 'model.safetensors'
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x40  # inside the last tensor: it would load silently as another value
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors' does not match the sha256 recorded in "
                                              r"config\.json"):
        VLAPolicy.from_pretrained(saved)


def test_a_truncated_weight_file_is_named(saved):
    from maps_vla.model.checkpoint import CheckpointError

    path = saved / 'model.safetensors'
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    with pytest.raises(CheckpointError, match=r"model\.safetensors' has \d+ bytes, but config\.json recorded"):
        VLAPolicy.from_pretrained(saved)
    _drop_hashes(saved)  # an old checkpoint: safetensors itself fails, and the error still names the file
    with pytest.raises(CheckpointError, match=r"model\.safetensors' is not a readable safetensors file"):
        VLAPolicy.from_pretrained(saved)


def test_a_corrupt_safetensors_header_is_named(saved):
    from maps_vla.model.checkpoint import CheckpointError

    path = saved / 'model.safetensors'
    data = bytearray(path.read_bytes())
    data[8:16] = b'{garbage'
    path.write_bytes(bytes(data))
    _drop_hashes(saved)
    with pytest.raises(CheckpointError, match=r"model\.safetensors' is not a readable safetensors file"):
        VLAPolicy.from_pretrained(saved)


@pytest.mark.parametrize('name', ['config.json', 'action_spec.json'])
def test_a_truncated_json_file_is_named(saved, name):
    from maps_vla.model.checkpoint import CheckpointError

    path = saved / name
    path.write_text(path.read_text()[: len(path.read_text()) // 2])
    with pytest.raises(CheckpointError, match=rf"{name}' is not valid JSON \(.*\); the file is truncated"):
        VLAPolicy.from_pretrained(saved)


def test_an_old_checkpoint_without_hashes_loads_with_a_debug_note(saved, caplog):
    _drop_hashes(saved)
    with caplog.at_level('DEBUG', logger='maps_vla.model.checkpoint'):
        VLAPolicy.from_pretrained(saved)
    assert 'has no recorded sha256' in caplog.text


def test_cli_eval_and_replay_report_a_corrupt_checkpoint_in_one_line(saved, tmp_path, capsys):
    from maps_vla.cli import main

    path = saved / 'model.safetensors'
    path.write_bytes(path.read_bytes()[:-100])
    assert main(['eval', '--policy', str(saved), '--episodes', '1']) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('maps-vla eval: error: ') and 'model.safetensors' in err[0]
    assert main(['replay', str(tmp_path / 'no_bag'), '--out', str(tmp_path / 'out'), '--policy', str(saved)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'model.safetensors' in err[0]
