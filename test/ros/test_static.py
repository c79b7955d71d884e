"""Static checks of the ROS skin, without rclpy: launch files, entry points, parameter YAML, package.xml.

Launch files and node modules are read with `ast` (never imported: they import launch / rclpy). A node's declared
parameters come from the dataclasses its module names in `PARAMS` (minus `PARAMS_EXCLUDE`), resolved through
the module's own imports and expanded by `maps_vla.control.ros_params.group_specs`, the same function the node
uses to declare them.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest
import yaml

from maps_vla.control.ros_params import ParamType, build_groups, group_specs

ROOT = Path(__file__).resolve().parents[2]
ROS_DIR = ROOT / 'src' / 'maps_vla' / 'ros'
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))
LAUNCH_IDS = [p.name for p in LAUNCH_FILES]
AUTO_PARAMS = {'use_sim_time'}  # declared by rclpy itself on every node

# Arguments of the franka_ros2 launch files maps_vla includes (docs/reference/ros2_franka.md §1.2, §1.6;
# franka_ros2 v3.4.0 jazzy and v2.5.0 humble for franka.launch.py).
FOREIGN_LAUNCH_ARGS = {
    ('franka_bringup', 'franka.launch.py'): {
        'robot_type', 'arm_prefix', 'namespace', 'robot_ip', 'load_gripper', 'use_fake_hardware',
        'fake_sensor_commands', 'joint_state_rate', 'load_franka_robot_state_broadcaster', 'controllers_yaml'},
    ('franka_gazebo_bringup', 'gazebo_franka_arm_example_controller.launch.py'): {
        'load_gripper', 'franka_hand', 'robot_type', 'namespace', 'controller', 'gz_args', 'rviz'},
}
# Packages built from source with franka_ros2 (no Jazzy apt release), so not exec_depends: imported only inside
# `try: ... except ImportError`, or referenced by launch files only on the robot / Gazebo path.
SOURCE_ONLY_PACKAGES = {'franka_msgs', 'franka_bringup', 'franka_gazebo_bringup'}
PYTHON_DEPENDENCIES = {'maps_vla', 'numpy', 'yaml', 'cv2', 'torch'}  # pip / python3-* keys, not ROS packages


def _setup_nodes() -> list[str]:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    assign = next(n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                  and getattr(n.targets[0] if isinstance(n, ast.Assign) else n.target, 'id', '') == 'NODES')
    return ast.literal_eval(assign.value)


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, 'id', None) == name or getattr(n.func, 'attr', None) == name)]


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _const(node: ast.expr | None):
    return node.value if isinstance(node, ast.Constant) else None


def _launch_args(path: Path) -> dict[str, ast.Call]:
    return {_const(c.args[0]): c for c in _calls(ast.parse(path.read_text()), 'DeclareLaunchArgument')}


def _string_keys(expr: ast.expr | None) -> set[str]:
    """Constant keys of a dict expression: {...}, {**a, ...}, {n: ... for n in ('a', 'b')}, x.items()."""
    keys: set[str] = set()
    for node in ast.walk(expr) if expr is not None else ():
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
        elif isinstance(node, ast.DictComp):
            for gen in node.generators:
                if isinstance(gen.iter, (ast.Tuple, ast.List)):
                    keys |= {e.value for e in gen.iter.elts if isinstance(e, ast.Constant)}
    return keys


def _string_constants(expr: ast.expr) -> list[str]:
    return [n.value for n in ast.walk(expr) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


@cache
def declared_params(node: str) -> dict[str, object]:
    """Full parameter name -> ParamSpec of a node, from its module's PARAMS / PARAMS_EXCLUDE."""
    tree = ast.parse((ROS_DIR / f'{node}.py').read_text())
    imports = {a.asname or a.name: n.module for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    values = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}
    params = values['PARAMS']
    assert isinstance(params, ast.Dict), f'{node}.PARAMS must be a dict literal prefix -> dataclass'
    groups = {}
    for key, value in zip(params.keys, params.values):
        assert isinstance(value, ast.Name) and value.id in imports, f'{node}: PARAMS values must be imported names'
        groups[_const(key)] = getattr(importlib.import_module(imports[value.id]), value.id)
    exclude = ast.literal_eval(values['PARAMS_EXCLUDE']) if 'PARAMS_EXCLUDE' in values else ()
    return {s.name: s for s in group_specs(groups, exclude)} | {'__groups__': (groups, exclude)}


# ------------------------------------------------------------------------------------------------ launch files
def test_the_four_launch_files_exist():
    assert {'franka.launch.py', 'sim.launch.py', 'teleop.launch.py', 'replay.launch.py'} <= set(LAUNCH_IDS)


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=LAUNCH_IDS)
def test_launch_file_imports_only_launch_and_defines_the_entry_point(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) else []
        for module in modules:
            assert module.split('.')[0] in {'launch', 'launch_ros', 'os'}, f'{path.name} imports {module}'
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description' for n in tree.body)


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=LAUNCH_IDS)
def test_every_launch_argument_has_a_default_and_a_description(path):
    args = _launch_args(path)
    assert args, f'{path.name} declares no arguments'
    for name, call in args.items():
        assert isinstance(name, str) and name, f'{path.name}: an argument name is not a string literal'
        assert _kw(call, 'default_value') is not None, f'{path.name}: {name} has no default_value'
        description = _const(_kw(call, 'description'))
        if description is None and isinstance(_kw(call, 'description'), ast.JoinedStr | ast.BinOp):
            description = 'computed'
        assert isinstance(description, str) and len(description) > 10, f'{path.name}: {name} has no description'
        choices = _kw(call, 'choices')
        default = _const(_kw(call, 'default_value'))
        if choices is not None and isinstance(choices, ast.List) and default is not None:
            assert default in ast.literal_eval(choices), f'{path.name}: {name} default {default!r} not a choice'


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=LAUNCH_IDS)
def test_launched_nodes_are_entry_points_with_declared_parameters(path):
    nodes = _setup_nodes()
    for call in _calls(ast.parse(path.read_text()), 'Node'):
        package, executable = _const(_kw(call, 'package')), _const(_kw(call, 'executable'))
        if package != 'maps_vla':
            continue
        assert executable in nodes, f'{path.name} starts {executable!r}, which setup.py NODES lacks'
        declared = declared_params(executable)
        keys = _string_keys(_kw(call, 'parameters'))
        unknown = keys - set(declared) - AUTO_PARAMS
        assert not unknown, f'{path.name}: {executable} does not declare {sorted(unknown)}'
        yamls = [s for s in _string_constants(_kw(call, 'parameters')) if s.endswith('.yaml')]
        assert yamls == [f'{executable}.yaml'], f'{path.name}: {executable} must load config/{executable}.yaml'


def _includes(path: Path) -> list[tuple[str | None, str, set[str]]]:
    """(package, launch file, argument keys) of every IncludeLaunchDescription; package None for a local helper."""
    out = []
    tree = ast.parse(path.read_text())
    for call in _calls(tree, 'IncludeLaunchDescription'):
        strings = _string_constants(call.args[0])
        target = next(s for s in strings if s.endswith('.launch.py'))
        shares = [_const(c.args[0]) for c in _calls(call.args[0], 'FindPackageShare')]
        if '_share' in {getattr(c.func, 'id', None) for c in _calls(call.args[0], '_share')}:
            shares = ['maps_vla']
        out.append((shares[0] if shares else None, target, _string_keys(_kw(call, 'launch_arguments'))))
    return out


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=LAUNCH_IDS)
def test_included_launch_files_exist_and_take_the_arguments_passed(path):
    for package, target, keys in _includes(path):
        if package == 'maps_vla':
            included = ROOT / 'launch' / target
            assert included.is_file(), f'{path.name} includes missing {target}'
            accepted = set(_launch_args(included))
        else:
            assert (package, target) in FOREIGN_LAUNCH_ARGS, f'{path.name} includes unknown {package}/{target}'
            accepted = FOREIGN_LAUNCH_ARGS[package, target]
        assert keys, f'{path.name}: no arguments passed to {target}'
        assert keys <= accepted, f'{path.name} passes {sorted(keys - accepted)} to {target}, which takes {accepted}'


# ------------------------------------------------------------------------------------------------ nodes
def test_nodes_are_exactly_the_ros_node_modules_with_main_params_and_one_node_class():
    modules = sorted(p.stem for p in ROS_DIR.glob('*_node.py'))
    assert sorted(_setup_nodes()) == modules and len(modules) == 8
    for name in modules:
        tree = ast.parse((ROS_DIR / f'{name}.py').read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == 'main' and n.args.args[0].arg == 'args'
                   for n in tree.body), f'{name}: main(args=None) missing'
        node_classes = [n for n in tree.body if isinstance(n, ast.ClassDef)
                        and any(getattr(b, 'id', None) == 'Node' for b in n.bases)]
        assert len(node_classes) == 1, f'{name}: one Node subclass per module'
        assert declared_params(name), f'{name}: PARAMS declares nothing'


# Attributes rclpy's Node keeps on itself (Humble 3.3 and Jazzy 7.1 node.py): a node that assigns one breaks
# rclpy (e.g. `self._clock = create_publisher(...)` makes get_clock() return a publisher).
RCLPY_NODE_ATTRIBUTES = {
    '_allow_undeclared_parameters', '_clients', '_clock', '_context', '_default_callback_group', '_descriptors',
    '_guards', '_logger', '_logger_service', '_on_set_parameters_callbacks', '_parameter_event_publisher',
    '_parameter_overrides', '_parameter_service', '_parameters', '_parameters_callbacks',
    '_post_set_parameters_callbacks', '_pre_set_parameters_callbacks', '_publishers', '_rate_group', '_services',
    '_subscriptions', '_time_source', '_timers', '_type_description_service', '_executor', '_handle'}


@pytest.mark.parametrize('node', _setup_nodes())
def test_nodes_do_not_overwrite_rclpy_node_attributes(node):
    tree = ast.parse((ROS_DIR / f'{node}.py').read_text())
    assigned = {t.attr for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                for t in ast.walk(t) if isinstance(t, ast.Attribute) and getattr(t.value, 'id', '') == 'self'}
    assert not assigned & RCLPY_NODE_ATTRIBUTES, f'{node} overwrites rclpy Node attributes {assigned & RCLPY_NODE_ATTRIBUTES}'


def test_node_classes_live_only_in_ros():
    for path in (ROOT / 'src' / 'maps_vla').rglob('*.py'):
        if ROS_DIR in path.parents:
            continue
        tree = ast.parse(path.read_text())
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            assert not any(getattr(b, 'id', None) in ('Node', 'LifecycleNode') for b in cls.bases), \
                f'{path} defines ROS node class {cls.name} outside maps_vla/ros'


@pytest.mark.parametrize('node', _setup_nodes())
def test_config_yaml_keys_are_declared_with_matching_types_and_valid_values(node):
    path = ROOT / 'config' / f'{node}.yaml'
    assert path.is_file(), f'config/{node}.yaml is missing'
    data = yaml.safe_load(path.read_text())
    assert len(data) == 1 and next(iter(data)) in ('/**', node), f'{path.name}: one section, /** or {node}'
    flat: dict[str, object] = {}

    def flatten(prefix: str, value: dict) -> None:
        for key, sub in value.items():
            name = f'{prefix}.{key}' if prefix else key
            if isinstance(sub, dict):
                flatten(name, sub)
            else:
                flat[name] = sub

    flatten('', next(iter(data.values()))['ros__parameters'])
    declared = declared_params(node)
    unknown = set(flat) - set(declared) - AUTO_PARAMS
    assert not unknown, f'{path.name}: {sorted(unknown)} are not parameters of {node}'
    python = {ParamType.BOOL: bool, ParamType.INTEGER: int, ParamType.DOUBLE: float, ParamType.STRING: str}
    for name, value in flat.items():
        if name in AUTO_PARAMS:
            continue
        ptype = declared[name].type
        scalar = python[ParamType(ptype.value.removesuffix('_array'))]
        items = value if ptype.is_array else [value]
        assert isinstance(items, list) and items, f'{path.name}: {name} must be a non-empty list (rcl cannot type [])'
        # rcl types a YAML value by its spelling: 1 is an integer, not a double, and is rejected for a double.
        assert all(type(v) is scalar for v in items), f'{path.name}: {name}={value!r} is not {ptype.value}'
    groups, exclude = declared['__groups__']
    build_groups(groups, flat)  # the dataclasses accept the values


# ------------------------------------------------------------------------------------------------ package.xml
def _imported_roots(path: Path) -> set[str]:
    """Top-level modules a file imports outside `try: ... except ImportError` blocks."""
    tree = ast.parse(path.read_text())
    optional = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try)
                and any(getattr(h.type, 'id', None) in ('ImportError', 'ModuleNotFoundError') for h in t.handlers)
                for n in ast.walk(t)}
    roots = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            roots |= {a.name.split('.')[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split('.')[0])
    return roots


def test_package_xml_exec_depends_cover_ros_imports_and_launch_references():
    depends = {e.text for e in ET.parse(ROOT / 'package.xml').getroot() if e.tag in ('exec_depend', 'depend')}
    files = [*ROS_DIR.glob('*.py'), *LAUNCH_FILES]
    imported = set().union(*(_imported_roots(p) for p in files))
    ros_imports = imported - set(sys.stdlib_module_names) - PYTHON_DEPENDENCIES
    assert ros_imports - depends == set(), f'package.xml lacks exec_depend {sorted(ros_imports - depends)}'
    referenced = set()
    for path in LAUNCH_FILES:
        tree = ast.parse(path.read_text())
        referenced |= {_const(c.args[0]) for c in _calls(tree, 'FindPackageShare')}
        referenced |= {_const(_kw(c, 'package')) for c in _calls(tree, 'Node')}
        if any('ros2' in _string_constants(c) and 'bag' in _string_constants(c) for c in _calls(tree, 'ExecuteProcess')):
            referenced.add('ros2bag')
    missing = referenced - depends - SOURCE_ONLY_PACKAGES - {'maps_vla', None}
    assert not missing, f'package.xml lacks exec_depend {sorted(missing)}'
    optional = {'franka_msgs'} & set().union(*(_optional_imports(p) for p in files))
    assert optional == {'franka_msgs'}  # the franka_msgs import really is optional in the nodes using it


def _optional_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.module.split('.')[0] for t in ast.walk(tree) if isinstance(t, ast.Try) for n in ast.walk(t)
            if isinstance(n, ast.ImportFrom) and n.module}


def test_setup_installs_launch_and_config_files():
    tree = ast.parse((ROOT / 'setup.py').read_text())
    globs = {_const(c.args[0]) for c in _calls(tree, 'glob')}
    assert {'launch/*.launch.py', 'config/*.yaml'} <= globs


# ------------------------------------------------------------------------------------------------ pytest
def test_the_ros_tests_run_on_a_domain_of_their_own():
    """test/ros/conftest.py moves the session off the inherited ROS_DOMAIN_ID (a robot's or a running sim's) and keeps
    discovery on this host: the node tests publish equilibrium_pose targets under franka_ros2's names."""
    inherited = os.environ.get('MAPS_VLA_INHERITED_ROS_DOMAIN_ID', '')
    assert os.environ.get('ROS_DOMAIN_ID', '') not in ('', inherited.strip() or '0')
    assert os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE') == 'LOCALHOST'


@pytest.mark.parametrize('plugin', ['launch_testing', 'launch_ros'])
def test_the_launch_testing_plugins_are_blocked(request, plugin):
    """Under a sourced Jazzy, launch_testing's pytest plugin fails to load with pytest >= 9.1 (ros2/launch#979) and
    pytest exits 3 before any test runs; once it is blocked, launch_testing_ros's plugin (entry point `launch_ros`)
    fails instead ("unknown hook 'pytest_launch_collect_makemodule'": launch_testing declares that hook), so
    setup.cfg's addopts block both (a no-op where they are not installed)."""
    assert request.config.pluginmanager.is_blocked(plugin)


@pytest.mark.parametrize('name', ['control.launch.py', 'sim.launch.py', 'franka.launch.py', 'replay.launch.py'])
def test_policy_launch_files_take_the_cameras_from_the_checkpoint_by_default(name):
    """`cameras` defaulted to third_person while every trained checkpoint reads third_person and wrist (issue 17)."""
    assert _const(_kw(_launch_args(ROOT / 'launch' / name)['cameras'], 'default_value')) == ''
