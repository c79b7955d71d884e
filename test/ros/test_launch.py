"""The launch files' logic, evaluated with launch's own LaunchContext (no process is started). Needs launch_ros."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip('launch_ros')

from launch import LaunchContext  # noqa: E402
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

pytestmark = pytest.mark.ros
LAUNCH = Path(__file__).resolve().parents[2] / 'launch'


def _evaluate(name: str, **arguments: str) -> list:
    """The actions a launch file produces for `arguments` (defaults otherwise), OpaqueFunctions expanded."""
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    context.launch_configurations.update(arguments)
    actions = []
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            if entity.name not in arguments:
                entity.execute(context)  # sets the default
            elif entity.choices is not None and arguments[entity.name] not in entity.choices:
                raise ValueError(f'{entity.name}={arguments[entity.name]!r} is not one of {entity.choices}')
        elif isinstance(entity, OpaqueFunction):
            actions += entity.execute(context) or []
        else:
            actions.append(entity)
    return actions


def _executables(actions: list) -> list[str]:
    return sorted(a.node_executable for a in actions if isinstance(a, Node))


def _cmd(action: ExecuteProcess) -> list[str]:
    return [''.join(s.perform(LaunchContext()) for s in part) for part in action.cmd]


def _spawned(actions: list) -> list[str]:
    """The arguments of the controller spawner (cmd[0], its path, needs controller_manager installed)."""
    spawner = next(a for a in actions if isinstance(a, Node) and a.node_executable == 'spawner')
    return _cmd_tail(spawner)


def _cmd_tail(action: ExecuteProcess) -> list[str]:
    return [''.join(s.perform(LaunchContext()) for s in part) for part in action.cmd[1:]]


def test_control_stack_nodes_and_bridge_only_mode():
    assert _executables(_evaluate('control.launch.py')) == ['franka_bridge_node', 'policy_node', 'smoother_node']
    assert _executables(_evaluate('control.launch.py', with_policy='false')) == ['franka_bridge_node']
    with pytest.raises(ValueError, match='control_mode'):
        _evaluate('control.launch.py', control_mode='twist')
    assert _executables(_evaluate('control.launch.py', control_mode='servo')) == [
        'franka_bridge_node', 'policy_node', 'smoother_node']


def test_episodes_start_the_episode_runner():
    assert 'episode_runner_node' in _executables(_evaluate('control.launch.py', episodes='3'))
    assert 'episode_runner_node' not in _executables(_evaluate('control.launch.py'))


def test_sim_starts_the_mujoco_bridge_or_includes_gazebo():
    actions = _evaluate('sim.launch.py')
    assert _executables(actions) == ['mujoco_bridge_node']
    assert sum(isinstance(a, IncludeLaunchDescription) for a in actions) == 1  # control.launch.py
    gazebo = _evaluate('sim.launch.py', sim='gazebo')
    assert _executables(gazebo) == [] and sum(isinstance(a, IncludeLaunchDescription) for a in gazebo) == 2
    with pytest.raises(ValueError, match='sim:=gazebo has no arm joint_trajectory_controller'):
        _evaluate('sim.launch.py', sim='gazebo', control_mode='joint_trajectory')


def test_franka_spawns_the_mode_controller_and_cameras_on_request():
    actions = _evaluate('franka.launch.py')
    assert 'cartesian_impedance_example_controller' in _spawned(actions)
    assert 'camera_node' not in _executables(actions)
    assert 'camera_node' in _executables(_evaluate('franka.launch.py', camera_devices='0,2', cameras='a,b'))
    assert 'joint_trajectory_controller' in _spawned(_evaluate('franka.launch.py', control_mode='joint_trajectory'))
    with pytest.raises(ValueError, match='need one camera name each'):  # the cameras default to the checkpoint's
        _evaluate('franka.launch.py', camera_devices='0,2')


def test_teleop_records_and_optionally_bags():
    actions = _evaluate('teleop.launch.py')
    assert _executables(actions) == ['recorder_node']
    assert not any(isinstance(a, ExecuteProcess) and not isinstance(a, Node) for a in actions)
    bagged = _evaluate('teleop.launch.py', record_bag='true', bag='/tmp/b')
    record = next(a for a in bagged if isinstance(a, ExecuteProcess) and not isinstance(a, Node))
    cmd = _cmd(record)
    assert cmd[:5] == ['ros2', 'bag', 'record', '-o', '/tmp/b'] and '/episode_events' in cmd
    assert '--use-sim-time' in cmd


def _prefix(node: Node) -> str:
    return ''.join(s.perform(LaunchContext()) for s in node.process_description.prefix)


def test_teleop_starts_the_device_node_on_request():
    assert 'teleop_node' not in _executables(_evaluate('teleop.launch.py', device='none'))
    actions = _evaluate('teleop.launch.py', device='gamepad')
    teleop = next(a for a in actions if isinstance(a, Node) and a.node_executable == 'teleop_node')
    assert _executables(actions) == ['recorder_node', 'teleop_node']
    assert _prefix(teleop) == ''  # launch's default: the launch-prefix configuration
    prefixed = _evaluate('teleop.launch.py', device='keyboard', teleop_prefix='xterm -e')
    assert _prefix(next(a for a in prefixed if isinstance(a, Node) and a.node_executable == 'teleop_node')) == \
        'xterm -e'
    with pytest.raises(ValueError, match='device'):
        _evaluate('teleop.launch.py', device='joystick')


def test_replay_plays_with_clock_and_moves_recorded_outputs_aside():
    with pytest.raises(ValueError, match='needs bag:='):
        _evaluate('replay.launch.py')
    play = next(a for a in _evaluate('replay.launch.py', bag='/data/run1', rate='0.5')
                if isinstance(a, ExecuteProcess))
    cmd = _cmd(play)
    assert cmd[:4] == ['ros2', 'bag', 'play', '/data/run1'] and '--clock' in cmd and '0.5' in cmd
    assert '/action_chunk:=/recorded/action_chunk' in cmd
