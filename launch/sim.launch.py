"""A simulated Franka running a maps_vla policy: the MuJoCo bridge (or franka's Gazebo bringup) + the control stack.

sim:=mujoco starts mujoco_bridge_node, which publishes /clock, joint states, the TCP pose and camera images under
franka_ros2's names and accepts equilibrium_pose / joint_trajectory / gripper goals like franka's controllers, so
control.launch.py runs unchanged (with use_sim_time). sim:=gazebo includes franka_gazebo_bringup's
gazebo_franka_arm_example_controller.launch.py with the cartesian_impedance_example_controller instead; that
bringup publishes neither the TCP pose, nor camera images, nor gripper actions, so the stack only waits there
until those are added (see docs/ros.md).
Example: ros2 launch maps_vla sim.launch.py checkpoint:=sine task:=pick_place
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = [
    DeclareLaunchArgument('sim', default_value='mujoco', choices=['mujoco', 'gazebo'], description=(
        'mujoco: maps_vla MuJoCo bridge; gazebo: franka_gazebo_bringup (cartesian_impedance only)')),
    DeclareLaunchArgument('checkpoint', default_value='sine', description=(
        "policy: a checkpoint folder, or a built-in test policy 'zero' or 'sine'")),
    DeclareLaunchArgument('instruction', default_value='', description=(
        "language instruction; empty: the sim task's own instruction (published by the MuJoCo bridge)")),
    DeclareLaunchArgument('task', default_value='pick_place', description='MuJoCo task: pick_place or emoji'),
    DeclareLaunchArgument('variant', default_value='train', description='MuJoCo task variant (train or held-out)'),
    DeclareLaunchArgument('control_mode', default_value='cartesian_impedance',
                          choices=['cartesian_impedance', 'joint_trajectory'],
                          description='cartesian_impedance (equilibrium_pose) or joint_trajectory (JTC; MuJoCo only)'),
    DeclareLaunchArgument('cameras', default_value='', description=(
        "comma-separated cameras the policy reads; empty: the checkpoint's (MuJoCo renders third_person and "
        'wrist unless cameras are given)')),
    DeclareLaunchArgument('robot_type', default_value='fr3', description='joint names <robot_type>_joint1..7'),
    DeclareLaunchArgument('realtime_factor', default_value='1.0', description=(
        'MuJoCo: simulated seconds per wall second')),
    DeclareLaunchArgument('device', default_value='auto', description='torch device: auto, cpu, cuda ...'),
    DeclareLaunchArgument('gripper', default_value='gripper_command',
                          choices=['franka', 'gripper_command', 'none'], description=(
                              'gripper interface the bridge drives; the MuJoCo bridge serves GripperCommand always '
                              'and franka Move/Grasp where franka_msgs is installed')),
    DeclareLaunchArgument('with_policy', default_value='true', description=(
        'start the policy and smoother (false: bridge only, as teleop.launch.py does)')),
    DeclareLaunchArgument('episodes', default_value='0', description=(
        "start episode_runner_node for this many episodes (0: none); MuJoCo: scene reset, the bridge's MoveGroup "
        'server and the task success end each one')),
    DeclareLaunchArgument('episodes_out', default_value='outputs/episodes', description=(
        'episodes: folder of the report (report.md, summary.csv, episodes.csv, outcomes.jsonl)')),
]


def _perform(context, name):
    return LaunchConfiguration(name).perform(context)


def _sim(context):
    if _perform(context, 'sim') == 'gazebo':
        if _perform(context, 'control_mode') != 'cartesian_impedance':
            raise ValueError("sim:=gazebo has no arm joint_trajectory_controller: use "
                             "control_mode:=cartesian_impedance")
        return [IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution(
                [FindPackageShare('franka_gazebo_bringup'), 'launch',
                 'gazebo_franka_arm_example_controller.launch.py'])),
            launch_arguments={'robot_type': _perform(context, 'robot_type'), 'load_gripper': 'true',
                              'controller': 'cartesian_impedance_example_controller'}.items())]
    cameras = [c.strip() for c in _perform(context, 'cameras').split(',') if c.strip()]
    return [Node(
        package='maps_vla', executable='mujoco_bridge_node', name='mujoco_bridge_node', output='screen',
        parameters=[PathJoinSubstitution([FindPackageShare('maps_vla'), 'config', 'mujoco_bridge_node.yaml']), {
            'use_sim_time': False, 'task': _perform(context, 'task'), 'variant': _perform(context, 'variant'),
            **({'cameras': cameras} if cameras else {}), 'robot_type': _perform(context, 'robot_type'),
            'realtime_factor': float(_perform(context, 'realtime_factor')),
            'instruction_period': 0.0 if _perform(context, 'instruction') else 1.0}])]


def generate_launch_description():
    control = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare('maps_vla'), 'launch',
                                                            'control.launch.py'])),
        launch_arguments={**{name: LaunchConfiguration(name) for name in (
            'checkpoint', 'instruction', 'control_mode', 'cameras', 'robot_type', 'device', 'gripper',
            'with_policy', 'episodes', 'episodes_out')}, 'use_sim_time': 'true', 'episode_reset': 'mujoco'}.items())
    return LaunchDescription([*ARGUMENTS, OpaqueFunction(function=_sim), control])
