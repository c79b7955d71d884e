"""Static checks that the ament_python skeleton stays installable by colcon and by pip."""

import ast
import configparser
import importlib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_call() -> ast.Call:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'setup')


def test_package_xml_is_format3_ament_python():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'maps_vla'
    assert root.find('export/build_type').text == 'ament_python'
    setup_version = next(k.value.value for k in _setup_call().keywords if k.arg == 'version')
    assert root.findtext('version') == setup_version


def test_setup_cfg_puts_executables_where_ros2_run_looks():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    assert cfg['develop']['script_dir'] == '$base/lib/maps_vla'
    assert cfg['install']['install_scripts'] == '$base/lib/maps_vla'


def test_resource_marker_and_src_layout():
    assert (ROOT / 'resource' / 'maps_vla').is_file()
    assert (ROOT / 'src' / 'maps_vla' / '__init__.py').is_file()
    keywords = {k.arg: k.value for k in _setup_call().keywords}
    assert ast.literal_eval(keywords['package_dir']) == {'': 'src'}


def test_cli_verbs_point_at_modules_with_the_verb_surface():
    from maps_vla import cli

    for verb, (module_name, _) in cli._VERBS.items():
        module = importlib.import_module(module_name)
        assert callable(getattr(module, 'add_arguments', None)), f'{verb}: {module_name} lacks add_arguments'
        assert callable(getattr(module, 'run', None)), f'{verb}: {module_name} lacks run'


def test_nothing_outside_ros_imports_rclpy_and_nothing_imports_ros():
    for path in (ROOT / 'src' / 'maps_vla').rglob('*.py'):
        tree = ast.parse(path.read_text())
        in_ros = 'ros' in path.relative_to(ROOT / 'src' / 'maps_vla').parts[:1]
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if not in_ros:
                    assert not name.startswith('rclpy'), f'{path} imports {name}'
                    assert not name.startswith('maps_vla.ros'), f'{path} imports {name}'
