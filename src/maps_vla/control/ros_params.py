"""Flat config dataclasses as ROS 2 parameters, without rclpy: the schema, the defaults and the way back.

A node's parameters are the fields of one or more flat dataclasses (`ParamGroups`: prefix -> dataclass, '' for the
top level; a field `width` of the group 'camera' is the parameter `camera.width`). This module turns the fields
into `ParamSpec`s (ROS type, default, description taken from the field's one-line comment, allowed values) and
turns parameter values back into validated dataclasses with `maps_vla.config.from_dict`. `maps_vla.ros.params`
declares the specs on an rclpy node; the static tests read the same specs to check the YAML files.

Type mapping: bool/int/float/str -> BOOL/INTEGER/DOUBLE/STRING; Path and Enum -> STRING (an Enum by value);
tuples -> *_ARRAY; `int | None` -> INTEGER with -1 for None; `str | None` and `Path | None` -> STRING with '' for
None. Nested dataclasses are rejected: a parameter group must be flat.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import io
import textwrap
import tokenize
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maps_vla.config import from_dict

__all__ = ['ParamType', 'ParamSpec', 'ParamGroups', 'param_specs', 'group_specs', 'build_config', 'build_groups',
           'to_param_value', 'field_comments']

ParamGroups = Mapping[str, type]  # parameter prefix ('' = top level) -> flat config dataclass


class ParamType(enum.Enum):
    """ROS 2 parameter types (names as in rcl_interfaces/ParameterType, without the PARAMETER_ prefix)."""

    BOOL = 'bool'
    INTEGER = 'integer'
    DOUBLE = 'double'
    STRING = 'string'
    BOOL_ARRAY = 'bool_array'
    INTEGER_ARRAY = 'integer_array'
    DOUBLE_ARRAY = 'double_array'
    STRING_ARRAY = 'string_array'

    @property
    def is_array(self) -> bool:
        return self.value.endswith('_array')


_SCALARS = {bool: ParamType.BOOL, int: ParamType.INTEGER, float: ParamType.DOUBLE, str: ParamType.STRING,
            Path: ParamType.STRING}
_ARRAYS = {bool: ParamType.BOOL_ARRAY, int: ParamType.INTEGER_ARRAY, float: ParamType.DOUBLE_ARRAY,
           str: ParamType.STRING_ARRAY, Path: ParamType.STRING_ARRAY}


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter backed by one dataclass field."""

    name: str  # full parameter name, 'prefix.field' or 'field'
    prefix: str  # the group prefix ('' = top level)
    field: str  # the dataclass field
    type: ParamType
    default: Any  # the field default as a ROS value (bool, int, float, str or a list of one of them)
    description: str  # the field's comment, plus how None and enum values are spelled
    choices: tuple[str, ...] = ()  # allowed values of an Enum field
    none_value: Any = None  # the ROS value that stands for None (-1 or ''), None when the field is not optional


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> the `# comment` that ends its line in the class source ({} when the source is unavailable)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    comments: dict[str, str] = {}
    line_start_name: str | None = None
    tokens = tokenize.generate_tokens(io.StringIO(textwrap.dedent(source)).readline)
    previous = None
    try:
        for tok in tokens:
            if tok.type == tokenize.NAME and previous is not None and previous.type in (
                    tokenize.INDENT, tokenize.NEWLINE, tokenize.DEDENT):
                line_start_name = tok.string
            elif tok.type == tokenize.COMMENT and line_start_name is not None:
                comments.setdefault(line_start_name, tok.string.lstrip('#').strip())
            if tok.type == tokenize.NEWLINE:
                line_start_name = None
            if tok.type not in (tokenize.COMMENT, tokenize.NL):
                previous = tok
    except (tokenize.TokenError, IndentationError):
        pass
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in comments.items() if k in names}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
        raise TypeError(f'union type {tp} is not a parameter type (only X | None is)')
    return tp, False


def _param_type(tp: Any, where: str) -> tuple[ParamType, tuple[str, ...], bool]:
    """(ROS type, enum choices, optional) of a field annotation."""
    tp, optional = _unwrap_optional(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return ParamType.STRING, tuple(str(e.value) for e in tp), optional
    if tp in _SCALARS:
        if optional and tp not in (int, str, Path):
            raise TypeError(f'{where}: optional {tp.__name__} has no parameter spelling (only int, str, Path)')
        return _SCALARS[tp], (), optional
    if typing.get_origin(tp) in (tuple, list) and not optional:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if args and all(a is args[0] for a in args) and args[0] in _ARRAYS:
            return _ARRAYS[args[0]], (), False
    if dataclasses.is_dataclass(tp):
        raise TypeError(f'{where}: nested dataclass {tp.__name__}; a parameter group must be flat')
    raise TypeError(f'{where}: annotation {tp} has no ROS parameter type')


def to_param_value(spec_type: ParamType, value: Any, none_value: Any = None) -> Any:
    """A field value as the ROS parameter value of `spec_type` (enums by value, tuples as lists, None as sentinel)."""
    if value is None:
        return none_value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if spec_type.is_array:
        cast = {ParamType.DOUBLE_ARRAY: float, ParamType.INTEGER_ARRAY: int, ParamType.BOOL_ARRAY: bool,
                ParamType.STRING_ARRAY: str}[spec_type]
        return [cast(v) for v in value]
    if spec_type is ParamType.DOUBLE:
        return float(value)
    return value


def param_specs(cls: type, prefix: str = '', exclude: Sequence[str] = ()) -> list[ParamSpec]:
    """The parameters of flat dataclass `cls` under `prefix`, in field order.

    Args:
        cls: a flat config dataclass (fields with defaults).
        prefix: group prefix; parameter names are 'prefix.field' ('' gives 'field').
        exclude: full parameter names the node sets itself (not declared).

    Raises:
        TypeError: `cls` is not a dataclass, or a field has no ROS parameter type.
        ValueError: a field without a default.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f'parameters need a dataclass type, got {cls!r}')
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    defaults = cls()
    specs = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        name = f'{prefix}.{f.name}' if prefix else f.name
        if name in exclude:
            continue
        ptype, choices, optional = _param_type(hints[f.name], f'{cls.__name__}.{f.name}')
        none_value = None
        description = comments.get(f.name, '')
        if optional:
            none_value = -1 if ptype is ParamType.INTEGER else ''
            description += f' ({none_value!r} = none)'
        if choices:
            description += f' (one of: {", ".join(choices)})'
        default = to_param_value(ptype, getattr(defaults, f.name), none_value)
        specs.append(ParamSpec(name, prefix, f.name, ptype, default, description.strip(), choices, none_value))
    return specs


def group_specs(groups: ParamGroups, exclude: Sequence[str] = ()) -> list[ParamSpec]:
    """The parameters of every group, group by group (names are unique: each prefix holds one dataclass)."""
    return [spec for prefix, cls in groups.items() for spec in param_specs(cls, prefix, exclude)]


def _from_param_value(spec: ParamSpec, value: Any) -> Any:
    if spec.none_value is not None and value == spec.none_value:
        return None
    if spec.type.is_array:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) and not hasattr(value, 'tolist'):
            raise TypeError(f'parameter {spec.name!r} needs a list ({spec.type.value}), got {value!r}')
        return list(value.tolist() if hasattr(value, 'tolist') else value)  # array.array -> list
    return value


def build_config(cls: type, values: Mapping[str, Any], prefix: str = '', exclude_fixed: Mapping[str, Any] | None = None
                 ) -> Any:
    """Dataclass `cls` from parameter values (full names); missing names keep the field default.

    Args:
        values: parameter name -> ROS value (array.array and lists are both accepted for arrays).
        prefix: the group prefix of `cls`.
        exclude_fixed: field name -> value the node sets itself (for excluded parameters).

    Raises:
        ValueError, TypeError: a value the dataclass (or its enum) rejects; the message names the parameter.
    """
    data: dict[str, Any] = dict(exclude_fixed or {})
    try:
        for spec in param_specs(cls, prefix):
            if spec.name in values:
                data[spec.field] = _from_param_value(spec, values[spec.name])
        return from_dict(cls, data, prefix or cls.__name__)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f'invalid parameters for {cls.__name__}: {exc}') from exc


def build_groups(groups: ParamGroups, values: Mapping[str, Any],
                 fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """prefix -> config of every group; `fixed` maps excluded full names to the values the node chose."""
    fixed = dict(fixed or {})
    out = {}
    for prefix, cls in groups.items():
        lead = f'{prefix}.' if prefix else ''
        own = {k[len(lead):]: v for k, v in fixed.items() if k.startswith(lead) and '.' not in k[len(lead):]}
        out[prefix] = build_config(cls, values, prefix, own)
    return out
