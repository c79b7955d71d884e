import dataclasses
import enum
from pathlib import Path

import pytest

from maps_vla.config import from_dict, load_config, save_config, to_dict
from maps_vla.registry import Registry


class Mode(enum.Enum):
    A = 'a'
    B = 'b'


@dataclasses.dataclass
class Inner:
    size: int = 4
    scale: float = 1.0


@dataclasses.dataclass
class Outer:
    name: str = 'x'
    mode: Mode = Mode.A
    inner: Inner = dataclasses.field(default_factory=Inner)
    shape: tuple[int, int] = (2, 3)
    path: Path | None = None


def test_round_trip_through_yaml(tmp_path):
    cfg = Outer(name='y', mode=Mode.B, inner=Inner(size=7, scale=0.5), shape=(4, 5), path=Path('/tmp/z'))
    save_config(cfg, tmp_path / 'c.yaml')
    assert load_config(Outer, tmp_path / 'c.yaml') == cfg


def test_overrides_reach_sections_the_file_leaves_out(tmp_path):
    (tmp_path / 'c.yaml').write_text('name: q\n')
    cfg = load_config(Outer, tmp_path / 'c.yaml', ['inner.scale=2', 'mode=b'])
    assert cfg == Outer(name='q', mode=Mode.B, inner=Inner(size=4, scale=2.0))
    assert isinstance(cfg.inner.scale, float)
    assert load_config(Outer, None, ['inner.scale=3e-4']).inner.scale == 3e-4  # YAML 1.1 reads this as a str


def test_unknown_key_suggests_closest():
    with pytest.raises(ValueError, match=r"Unknown config key in inner 'sise'.*Did you mean 'size'"):
        from_dict(Outer, {'inner': {'sise': 3}})


def test_wrong_type_names_the_field():
    with pytest.raises(TypeError, match='inner.size'):
        from_dict(Outer, {'inner': {'size': 'big'}})
    with pytest.raises(ValueError, match='expected 2 items'):
        from_dict(Outer, {'shape': [1, 2, 3]})


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.yaml'):
        load_config(Outer, tmp_path / 'nope.yaml')
    with pytest.raises(ValueError, match='key.sub=value'):
        load_config(Outer, None, ['inner.size'])


def test_to_dict_is_plain():
    assert to_dict(Outer()) == {'name': 'x', 'mode': 'a', 'inner': {'size': 4, 'scale': 1.0}, 'shape': [2, 3], 'path': None}


def test_registry_unknown_name_lists_known_and_hint():
    reg: Registry[int] = Registry('policy')
    reg.register('minivla')(1)
    reg.register('openvla')(2)
    assert reg.get('openvla') == 2
    with pytest.raises(ValueError, match=r"Unknown policy 'minivlaa'. Known: minivla, openvla. Did you mean 'minivla'"):
        reg.get('minivlaa')
    with pytest.raises(ValueError, match='twice'):
        reg.register('minivla')(3)
