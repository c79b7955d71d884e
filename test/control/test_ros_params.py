"""control.ros_params: flat dataclasses <-> ROS parameter specs, without rclpy."""

from __future__ import annotations

import array
import dataclasses
import enum
from pathlib import Path

import pytest

from maps_vla.control.ros_params import (ParamType, build_config, build_groups, field_comments, group_specs,
                                         param_specs)
from maps_vla.control.safety import SafetyConfig
from maps_vla.control.smoothing import SmootherConfig, SmoothingMethod


class _Color(enum.Enum):
    RED = 'red'
    BLUE = 'blue'


@dataclasses.dataclass(frozen=True)
class _Flat:
    """A config with every supported field type."""

    flag: bool = True  # a switch
    count: int = 3  # how many
    rate: float = 2.5  # s^-1
    name: str = 'x'  # a label
    path: Path = Path('/tmp/a')  # a file
    color: _Color = _Color.RED  # which colour
    index: int | None = None  # optional dimension
    label: str | None = 'y'  # optional label
    gains: tuple[float, ...] = (1.0, 2.0)  # per joint
    box: tuple[float, float, float] = (0.0, 0.0, 1.0)  # xyz
    names: tuple[str, ...] = ()  # none by default

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f'_Flat.count must be >= 0, got {self.count}')


@dataclasses.dataclass(frozen=True)
class _Nested:
    inner: _Flat = dataclasses.field(default_factory=_Flat)  # not flat


def test_specs_map_every_field_type_with_its_comment_and_default():
    specs = {s.name: s for s in param_specs(_Flat)}
    assert [s.name for s in param_specs(_Flat)] == [f.name for f in dataclasses.fields(_Flat)]
    expected = {'flag': (ParamType.BOOL, True), 'count': (ParamType.INTEGER, 3), 'rate': (ParamType.DOUBLE, 2.5),
                'name': (ParamType.STRING, 'x'), 'path': (ParamType.STRING, '/tmp/a'),
                'color': (ParamType.STRING, 'red'), 'index': (ParamType.INTEGER, -1),
                'label': (ParamType.STRING, 'y'), 'gains': (ParamType.DOUBLE_ARRAY, [1.0, 2.0]),
                'box': (ParamType.DOUBLE_ARRAY, [0.0, 0.0, 1.0]), 'names': (ParamType.STRING_ARRAY, [])}
    assert {n: (s.type, s.default) for n, s in specs.items()} == expected
    assert specs['rate'].description == 's^-1'
    assert specs['color'].choices == ('red', 'blue') and specs['color'].description == 'which colour (one of: red, blue)'
    assert specs['index'].none_value == -1 and specs['index'].description == "optional dimension (-1 = none)"
    assert specs['label'].none_value == ''


def test_prefix_and_exclude():
    specs = param_specs(_Flat, 'grp', exclude=('grp.count',))
    assert specs[0].name == 'grp.flag' and specs[0].prefix == 'grp' and specs[0].field == 'flag'
    assert 'grp.count' not in {s.name for s in specs} and len(specs) == len(dataclasses.fields(_Flat)) - 1
    names = [s.name for s in group_specs({'': SmootherConfig, 'safety': SafetyConfig}, exclude=('safety.kind',))]
    assert names[0] == 'method' and 'safety.control_hz' in names and 'safety.kind' not in names


def test_nested_and_unsupported_types_are_rejected():
    with pytest.raises(TypeError, match='nested dataclass _Flat; a parameter group must be flat'):
        param_specs(_Nested)
    with pytest.raises(TypeError, match='need a dataclass type'):
        param_specs(dict)


def test_build_round_trips_ros_values_and_sentinels():
    values = {'count': 5, 'color': 'blue', 'index': 2, 'label': '', 'gains': array.array('d', [0.5]),
              'box': [1.0, 2.0, 3.0], 'names': ['a', 'b'], 'path': '/x'}
    cfg = build_config(_Flat, values)
    assert cfg == _Flat(count=5, color=_Color.BLUE, index=2, label=None, gains=(0.5,), box=(1.0, 2.0, 3.0),
                        names=('a', 'b'), path=Path('/x'))
    assert build_config(_Flat, {'index': -1}).index is None
    assert build_config(_Flat, {}) == _Flat()
    # defaults -> parameters -> config is the identity for the real configs too
    for cls in (SafetyConfig, SmootherConfig):
        assert build_config(cls, {s.name: s.default for s in param_specs(cls)}) == cls()


@pytest.mark.parametrize('values, error, match', [
    ({'count': -1}, ValueError, 'count must be >= 0, got -1'),
    ({'color': 'green'}, ValueError, "'green' is not a valid _Color"),
    ({'box': [1.0, 2.0]}, ValueError, 'expected 3 items'),
    ({'gains': 'abc'}, TypeError, "parameter 'gains' needs a list"),
    ({'flag': 'yes'}, TypeError, 'expected bool'),
])
def test_build_rejects_invalid_values_naming_the_class(values, error, match):
    with pytest.raises(error, match=match) as info:
        build_config(_Flat, values)
    assert 'invalid parameters for _Flat' in str(info.value)


def test_build_groups_with_fixed_excluded_fields():
    configs = build_groups({'': SmootherConfig, 'safety': SafetyConfig},
                           {'method': 'none', 'safety.control_hz': 50.0, 'safety.gripper_index': -1},
                           fixed={'safety.kind': 'joint_position'})
    assert configs[''].method is SmoothingMethod.NONE
    assert configs['safety'] == SafetyConfig(control_hz=50.0, gripper_index=None, kind='joint_position')


def test_field_comments_come_from_the_source_lines():
    assert field_comments(_Flat)['gains'] == 'per joint'
    assert set(field_comments(SafetyConfig)) == {f.name for f in dataclasses.fields(SafetyConfig)}
