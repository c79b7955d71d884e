"""The one config system: dataclasses, read from and written to YAML, overridden by `a.b=value` strings.

Every component is built from a dataclass that validates itself in `__post_init__`; this module only turns
nested dicts into those dataclasses (with typo hints for unknown keys) and back.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from maps_vla.registry import unknown_name_error

__all__ = ['from_dict', 'to_dict', 'load_config', 'save_config', 'apply_overrides']

C = TypeVar('C')


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Convert a YAML value to the annotated type `tp` (dataclasses, enums, tuples, lists, optionals)."""
    origin = typing.get_origin(tp)
    if tp is Any or value is None and (origin in (typing.Union, types.UnionType)):
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _convert(args[0], value, where)
        return value
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, dict):
            raise TypeError(f'{where}: expected a mapping for {tp.__name__}, got {value!r}')
        return from_dict(tp, value, where)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return value if isinstance(value, tp) else tp(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f'{where}: expected a list, got {value!r}')
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ValueError(f'{where}: expected {len(args)} items, got {len(value)}: {value!r}')
            return tuple(_convert(a, v, f'{where}[{i}]') for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(item, v, f'{where}[{i}]') for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        # PyYAML (YAML 1.1) reads '3e-4' as a string: accept any spelling Python reads as a float.
        try:
            return float(value)
        except ValueError:
            raise TypeError(f'{where}: expected float, got {value!r}') from None
    if tp is Path:
        return Path(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise TypeError(f'{where}: expected {tp.__name__}, got {value!r}')
    return value


def from_dict(cls: type[C], data: dict[str, Any], where: str = '') -> C:
    """Build dataclass `cls` from a (nested) dict; unknown keys raise ValueError with the closest field name."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise unknown_name_error(f'config key in {where or cls.__name__}', key, list(fields))
        kwargs[key] = _convert(hints[key], value, f'{where}.{key}' if where else key)
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """A YAML-safe nested dict of a config dataclass (enums by value, tuples as lists, paths as strings)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, enum.Enum):
        return cfg.value
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, os.PathLike):
        return os.fspath(cfg)
    return cfg


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` strings (value parsed as YAML) to a nested dict, in place; returns it."""
    for item in overrides:
        key, sep, raw = item.partition('=')
        if not sep or not key:
            raise ValueError(f'Override {item!r} is not of the form key.sub=value')
        node = data
        *parents, leaf = key.split('.')
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f'Override {item!r}: {part!r} is not a section')
        node[leaf] = yaml.safe_load(raw)
    return data


def load_config(cls: type[C], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> C:
    """Read `cls` from a YAML file (or its defaults when `path` is None), then apply `overrides`."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'Config file {str(path)!r} does not exist')
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f'Config file {str(path)!r} must hold a mapping at the top level')
    if overrides:
        # A section the file leaves out is created here; from_dict fills the rest of it from its defaults.
        apply_overrides(data, overrides)
    return from_dict(cls, data)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write a config dataclass as YAML (round-trips through `load_config`)."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
