"""Every YAML under config/pretrain loads as a PretrainConfig, and a continued run starts from something the
documented commands produce: the shipped prior, or the policy another of these configs writes."""

from pathlib import Path

import pytest

from maps_vla.config import load_config
from maps_vla.pretrain.configuration_pretrain import PretrainConfig
from maps_vla.pretrain.shipped import PRIOR_DIR

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / 'config' / 'pretrain').glob('*.yaml'))


def test_the_documented_configs_exist():
    assert {p.name for p in CONFIGS} >= {'prior_cpu.yaml', 'prior_cpu_vl.yaml', 'prior_cpu_vl_read.yaml'}


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_loads_and_continues_from_a_known_policy(path):
    cfg = load_config(PretrainConfig, path)  # PretrainConfig checks its own fields
    if cfg.init is None:
        return
    others = {str(Path(load_config(PretrainConfig, p).out) / 'train' / 'policy') for p in CONFIGS if p != path}
    shipped = (ROOT / cfg.init).resolve() == PRIOR_DIR and (PRIOR_DIR / 'config.json').is_file()
    assert shipped or cfg.init in others, f'{path.name}: init {cfg.init!r} is neither shipped nor another config\'s policy'
