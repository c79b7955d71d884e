"""A recorded bag played into the graph on its own clock, optionally with the maps_vla control stack on top.

Runs `ros2 bag play BAG --clock` (the bag's time becomes /clock) and, with with_control:=true, control.launch.py
with use_sim_time, so the policy, smoother and bridge run on the recorded camera / joint-state / pose topics exactly
as on the robot (their commands reach no controller). `maps-vla replay BAG --out OUT` does the same offline and
deterministically without ROS.
Example: ros2 launch maps_vla replay.launch.py bag:=runs/cube_bag checkpoint:=/ckpt/run1 rate:=0.5
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = [
    DeclareLaunchArgument('bag', default_value='', description='the bag to play (directory or .mcap/.db3 file)'),
    DeclareLaunchArgument('rate', default_value='1.0', description='playback rate'),
    DeclareLaunchArgument('loop', default_value='false', description='play the bag in a loop'),
    DeclareLaunchArgument('topics', default_value='', description=(
        'comma-separated topics to play (empty: all; recorded stack outputs such as /action_chunk, /action and '
        'the controller commands are remapped under /recorded so they do not mix with the live ones)')),
    DeclareLaunchArgument('with_control', default_value='true', description='run control.launch.py on the bag'),
    DeclareLaunchArgument('checkpoint', default_value='zero', description=(
        "policy: a checkpoint folder, or a built-in test policy 'zero' or 'sine'")),
    DeclareLaunchArgument('instruction', default_value='', description='instruction when the bag has none'),
    DeclareLaunchArgument('control_mode', default_value='cartesian_impedance',
                          choices=['cartesian_impedance', 'joint_trajectory'], description='as in control.launch.py'),
    DeclareLaunchArgument('cameras', default_value='', description=(
        "comma-separated camera names the policy reads; empty: the checkpoint's")),
]
_STACK_OUTPUTS = ('/action_chunk', '/action', '/cartesian_impedance_example_controller/equilibrium_pose',
                  '/joint_trajectory_controller/joint_trajectory', '/safety_status')


def _play(context):
    bag = LaunchConfiguration('bag').perform(context)
    if not bag:
        raise ValueError('replay.launch.py needs bag:=<path of a ROS 2 bag>')
    cmd = ['ros2', 'bag', 'play', bag, '--clock', '--rate', LaunchConfiguration('rate').perform(context)]
    if LaunchConfiguration('loop').perform(context).lower() in ('true', '1', 'yes'):
        cmd.append('--loop')
    topics = [t.strip() for t in LaunchConfiguration('topics').perform(context).split(',') if t.strip()]
    if topics:
        cmd += ['--topics', *topics]
    # Humble's `ros2 bag play` cannot exclude topics; both distros can remap them.
    cmd += ['--remap', *(f'{t}:=/recorded{t}' for t in _STACK_OUTPUTS)]
    return [ExecuteProcess(cmd=cmd, output='screen')]


def generate_launch_description():
    control = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare('maps_vla'), 'launch',
                                                            'control.launch.py'])),
        launch_arguments={**{name: LaunchConfiguration(name) for name in (
            'checkpoint', 'instruction', 'control_mode', 'cameras')}, 'use_sim_time': 'true',
            'gripper': 'none'}.items(),
        condition=IfCondition(LaunchConfiguration('with_control')))
    return LaunchDescription([*ARGUMENTS, OpaqueFunction(function=_play), control])
