"""Declare flat config dataclasses as a node's parameters and build them back, validated (see control/ros_params)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from maps_vla.control.ros_params import ParamGroups, ParamType, build_groups, group_specs

__all__ = ['NodeParams']

_ROS_TYPES = {ParamType.BOOL: Parameter.Type.BOOL, ParamType.INTEGER: Parameter.Type.INTEGER,
              ParamType.DOUBLE: Parameter.Type.DOUBLE, ParamType.STRING: Parameter.Type.STRING,
              ParamType.BOOL_ARRAY: Parameter.Type.BOOL_ARRAY, ParamType.INTEGER_ARRAY: Parameter.Type.INTEGER_ARRAY,
              ParamType.DOUBLE_ARRAY: Parameter.Type.DOUBLE_ARRAY, ParamType.STRING_ARRAY: Parameter.Type.STRING_ARRAY}


class NodeParams:
    """The parameters of `node` that back the dataclasses in `groups`; `params[prefix]` is the current config.

    Every field becomes a statically typed parameter with its comment as description; those not named in `dynamic`
    are read-only after start. A set of a dynamic parameter is accepted only if the dataclass accepts the new value
    (its `__post_init__` runs), and `on_change(prefix, config)` is then called for each group that changed.

    Args:
        node: the node to declare on.
        groups: prefix -> flat dataclass ('' = top level).
        exclude: full names the node sets itself (not declared); their values come from `fixed` or the default.
        fixed: full name -> value of excluded fields.
        dynamic: full names that may change at run time.
        on_change: called after an accepted change.

    Raises:
        ValueError, TypeError: the start-up values are invalid (the message names the parameter).
    """

    def __init__(self, node: Node, groups: ParamGroups, *, exclude: Sequence[str] = (),
                 fixed: Mapping[str, Any] | None = None, dynamic: Sequence[str] = (),
                 on_change: Callable[[str, Any], None] | None = None) -> None:
        self._groups, self._fixed, self._on_change = dict(groups), dict(fixed or {}), on_change
        self._specs = {s.name: s for s in group_specs(groups, exclude)}
        unknown = set(dynamic) - set(self._specs)
        if unknown:
            raise ValueError(f'dynamic parameters {sorted(unknown)} are not declared')
        self._values: dict[str, Any] = {}
        for name, spec in self._specs.items():
            constraints = f'one of: {", ".join(spec.choices)}' if spec.choices else ''
            descriptor = ParameterDescriptor(description=spec.description, read_only=name not in dynamic,
                                             additional_constraints=constraints)
            # An empty list would be typed BYTE_ARRAY by rclpy: declare such parameters by type alone.
            default = _ROS_TYPES[spec.type] if spec.type.is_array and not spec.default else spec.default
            node.declare_parameter(name, default, descriptor)
            try:
                value = node.get_parameter(name).value
            except ParameterUninitializedException:
                value = spec.default
            self._values[name] = spec.default if value is None else value
        self._configs = build_groups(self._groups, self._values, self._fixed)
        node.add_on_set_parameters_callback(self._on_set)

    def __getitem__(self, prefix: str) -> Any:
        return self._configs[prefix]

    def _on_set(self, parameters: list[Parameter]) -> SetParametersResult:
        ours = {p.name: p.value for p in parameters if p.name in self._specs}
        if not ours:
            return SetParametersResult(successful=True)
        values = {**self._values, **ours}
        try:
            configs = build_groups(self._groups, values, self._fixed)
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        changed = [p for p in configs if configs[p] != self._configs[p]]
        self._values, self._configs = values, configs
        if self._on_change is not None:
            for prefix in changed:
                self._on_change(prefix, configs[prefix])
        return SetParametersResult(successful=True)
