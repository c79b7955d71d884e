"""`maps-vla pretrain` at its smallest: every stage runs, resumes, and refuses a folder of another run."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from maps_vla.data.dataset import Dataset
from maps_vla.pretrain import PretrainConfig, run_pretrain
from maps_vla.pretrain.pipeline import _emoji_config, vocabulary_texts
from maps_vla.cli import main
from maps_vla.train.cotrain import VLDataset


def test_config_is_validated():
    with pytest.raises(ValueError, match='held-out variant is also trained on'):
        PretrainConfig(variants=('train', 'ood_shape'), heldout_variants=('ood_shape',))
    with pytest.raises(ValueError, match='must be pick_place variants'):
        PretrainConfig(variants=('nope',))
    with pytest.raises(ValueError, match='cotrain_ratio'):
        PretrainConfig(vl_scenes=0, cotrain_ratio=0.2)
    with pytest.raises(ValueError, match='probe_scenes must be >= 0'):
        PretrainConfig(probe_scenes=-1)
    with pytest.raises(ValueError, match='regression_loss'):
        PretrainConfig(regression_loss='huber')
    with pytest.raises(ValueError, match='demo_noise'):
        PretrainConfig(demo_noise=-0.01)
    with pytest.raises(ValueError, match='demo_regrasp_fraction'):
        PretrainConfig(demo_regrasp_fraction=2.0)
    with pytest.raises(ValueError, match='expert_attention'):
        PretrainConfig(expert_attention='prefix')
    with pytest.raises(ValueError, match="eval_smoothing must be None or one of .*'temporal_ensemble'"):
        PretrainConfig(eval_smoothing='ensemble')
    with pytest.raises(ValueError, match='paired_variants must be among variants'):
        PretrainConfig(variants=('train',), paired_variants=('choice',))
    with pytest.raises(ValueError, match='early_frames'):
        PretrainConfig(early_frames=-2)
    with pytest.raises(ValueError, match='vl_emoji_layout must be one of'):
        PretrainConfig(vl_emoji_layout='grid')
    PretrainConfig(vl_scenes=0, scene_vl=1, cotrain_ratio=0.2)  # scene questions alone are co-training data too


def test_vl_scenes_follow_the_emoji_layout():
    from maps_vla.sim import CameraView

    env = _emoji_config(PretrainConfig(vl_emoji_layout='compact', vl_camera=CameraView())).env_config('train')
    assert (env.emoji_layout, env.num_cards, env.third_person) == ('compact', 2, CameraView())
    row = _emoji_config(PretrainConfig(probe_scenes=0)).env_config('ood_emoji')  # probe off: still a valid config
    assert (row.emoji_layout, row.num_cards) == ('row', 4)


def test_vocabulary_covers_held_out_words_and_every_emoji():
    words = ' '.join(vocabulary_texts('task: {instruction}\naction:', 'q: {question}\na:'))
    for word in ('purple', 'cylinder', 'block', 'plate', 'where', 'grinning'):
        assert word in words, word


def test_smallest_run_resumes_and_protects_its_folder(tmp_path, capsys):
    out = tmp_path / 'prior'
    cfg = PretrainConfig(out=str(out), variants=('train',), heldout_variants=('ood_color',), demos_per_variant=1,
                         image_size=28, model_image_size=28, vl_scenes=1, steps=2, batch_size=2, save_every=1,
                         eval_episodes=1, eval_max_steps=3, threads=1, progress=False, use_state=False,
                         state_dropout=0.5, regression_loss='l2', probe_scenes=1, scene_vl=1, demo_noise=0.01,
                         demo_regrasp_fraction=1.0)
    files = run_pretrain(cfg)
    config = json.loads((files['policy'] / 'config.json').read_text())['config']
    assert config['head']['regression_loss'] == 'l2' and config['proprio_dim'] == 0
    card = (files['policy'] / 'MODEL_CARD.md').read_text()
    assert 'preset `prior`' in card and '| train | id | 0/1' in card and '| ood_color | ood |' in card
    assert 'DART noise σ = 0.01 m/step, 100% of them missing their first grasp' in card and '1 pick_place scenes per variant (object positions)' in card
    cotrain = VLDataset(out / 'cotrain')  # the emoji cards and the pick_place scene questions in one folder
    assert {item['image'].split('/')[0] for item in cotrain.items} == {'0', '1'}
    assert any(item['question'].startswith('what is at x ') for item in cotrain.items)
    metrics = json.loads(files['metrics'].read_text())
    assert [s['name'] for s in metrics['summaries']] == ['train', 'ood_color', 'ID (all)', 'OOD (all)']
    probe = metrics['vl_probe']  # one unseen scene per split: 4 where- and 4 what-questions each
    assert sorted(probe) == ['what/ood_emoji', 'what/train', 'where/ood_emoji', 'where/train']
    assert all(value in (0.0, 0.25, 0.5, 0.75, 1.0) for value in probe.values()), probe
    assert '## VL probe (1 unseen emoji scenes per split; chance: where 25%, what 4.2%)' in card
    assert '| where/train |' in card
    weights = files['policy'] / 'model.safetensors'
    stamp = weights.stat().st_mtime_ns

    run_pretrain(cfg)  # finished stages are skipped: the policy is not retrained
    assert weights.stat().st_mtime_ns == stamp

    assert main(['pretrain', f'out={out}', 'demos_per_variant=3']) == 2
    err = capsys.readouterr().err
    assert 'holds a pre-training run with other settings (' in err and 'demos_per_variant' in err


def test_continued_pretraining_starts_from_the_pinned_init(tmp_path):
    small = dict(image_size=28, model_image_size=28, vl_scenes=1, steps=2, batch_size=2, save_every=1, eval_episodes=1,
                 eval_max_steps=3, threads=1, progress=False, use_state=False, probe_scenes=0, demos_per_variant=1)
    first = run_pretrain(PretrainConfig(out=str(tmp_path / 'first'), variants=('train',), **small))['policy']
    init = tmp_path / 'init'
    shutil.copytree(first, init)
    cfg = PretrainConfig(out=str(tmp_path / 'more'), variants=('train', 'choice'), init=str(init),
                         expert_attention='bidirectional', paired_variants=('choice',), early_frames=2,
                         early_frames_repeat=3, **{**small, 'demos_per_variant': 2})
    files = run_pretrain(cfg)
    # the choice scene is recorded once per cube: the same first picture, each colour named
    demos = Dataset(tmp_path / 'more' / 'demos')
    first = [demos.sample(demos.episodes[i].from_index) for i in (2, 3)]
    assert all(np.array_equal(first[0][k], first[1][k]) for k in demos.image_keys)
    assert first[0]['task'] != first[1]['task']
    card = (files['policy'] / 'MODEL_CARD.md').read_text()
    assert "['choice'] recorded once per target" in card and "first 2 frames drawn 3x per epoch" in card
    assert 'early_frames_repeat: 3' in (tmp_path / 'more' / 'train' / 'train_config.yaml').read_text()
    # the run continued `init`'s weights, under its own head settings
    initial = tmp_path / 'more' / 'initial'
    assert json.loads((initial / 'config.json').read_text())['config']['head']['expert_attention'] == 'bidirectional'
    assert (initial / 'model.safetensors').read_bytes() == (init / 'model.safetensors').read_bytes()
    assert (files['policy'] / 'tokenizer.json').read_text() == (init / 'tokenizer.json').read_text()
    digest = json.loads((tmp_path / 'more' / 'init_weights.json').read_text())['sha256']
    assert f'- Continued from: `{init}` (model.safetensors sha256 {digest})' in \
        (files['policy'] / 'MODEL_CARD.md').read_text()
    assert [s['name'] for s in json.loads(files['metrics'].read_text())['summaries']][:2] == ['train', 'choice']
    shutil.copy(files['policy'] / 'model.safetensors', init / 'model.safetensors')  # other weights, same path
    with pytest.raises(ValueError, match='started from other weights'):
        run_pretrain(cfg)
    with pytest.raises(FileNotFoundError, match='PretrainConfig.init'):
        run_pretrain(dataclasses.replace(cfg, out=str(tmp_path / 'none'), init=str(tmp_path / 'missing')))
