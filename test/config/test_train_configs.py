"""Every YAML under config/train loads as a TrainConfig; minivla_maps has the paper's values; sim_pick_place trains."""

from pathlib import Path

import pytest

from maps_vla.config import load_config
from maps_vla.train.configuration_train import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / 'config' / 'train').glob('*.yaml'))


def test_the_documented_configs_exist():
    assert {p.name for p in CONFIGS} >= {'sim_pick_place.yaml', 'minivla_maps.yaml'}


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_loads(path):
    cfg = load_config(TrainConfig, path)
    assert cfg.method.method == 'maps' and cfg.data.root


def test_minivla_maps_has_the_papers_franka_hyperparameters():
    cfg = load_config(TrainConfig, CONFIGS[0].with_name('minivla_maps.yaml'))
    assert cfg.method.lr == 5e-5 and cfg.method.lambda_max == 1.5 and cfg.method.schedule == 'linear'
    assert cfg.batch_size == 8 and cfg.mixed_precision == 'bf16' and cfg.lr_schedule == 'constant'
    assert not cfg.method.lora and cfg.grad_clip is None and cfg.model.checkpoint


@pytest.mark.slow
def test_sim_pick_place_trains(tmp_path):
    from maps_vla.data import DatasetWriter, collect_episodes
    from maps_vla.sim import EnvConfig, make_env, make_expert
    from maps_vla.train.trainer import train

    with make_env(EnvConfig(image_size=(32, 32))) as env, \
            DatasetWriter.create(tmp_path / 'data', 10, env.features, video=False) as writer:
        collect_episodes(env, make_expert(env), writer, 1, range(10), progress=False)
    cfg = load_config(TrainConfig, CONFIGS[0].with_name('sim_pick_place.yaml'),
                      [f'data.root={tmp_path / "data"}', f'out_dir={tmp_path / "train"}', 'steps=2', 'progress=false'])
    result = train(cfg)
    assert result.steps == 2 and (result.policy_dir / 'model.safetensors').exists()
