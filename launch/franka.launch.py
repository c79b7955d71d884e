"""A Franka arm running a maps_vla policy: franka_ros2 bringup + controller + cameras + the control stack.

Starts franka_bringup's franka.launch.py (robot_type / robot_ip / load_gripper / use_fake_hardware /
controllers_yaml, the argument names of franka_ros2 >= v3.2 on Jazzy and the current humble branch), spawns
cartesian_impedance_example_controller (control_mode cartesian_impedance; franka_ros2 >= v3.3, Jazzy) or
joint_trajectory_controller (control_mode joint_trajectory, an effort JTC defined in maps_vla's
config/franka_controllers.yaml), a camera_node when camera devices or topics are given, and control.launch.py.
Move the arm to its start pose first, e.g.
  ros2 launch franka_bringup example.launch.py controller_names:=move_to_start_example_controller
Example:
  ros2 launch maps_vla franka.launch.py robot_ip:=172.16.0.2 checkpoint:=/ckpt/run1 instruction:="pick up the cube" \
      camera_devices:=0
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

CONTROLLERS = {'cartesian_impedance': 'cartesian_impedance_example_controller',
               'joint_trajectory': 'joint_trajectory_controller'}
ARGUMENTS = [
    DeclareLaunchArgument('robot_ip', default_value='172.16.0.2', description='hostname or IP of the robot (FCI)'),
    DeclareLaunchArgument('robot_type', default_value='fr3', description='franka robot type: fr3, fp3 or fer'),
    DeclareLaunchArgument('use_fake_hardware', default_value='false', description=(
        "franka's mock hardware (effort controllers, i.e. both control modes here, do not move it)")),
    DeclareLaunchArgument('load_gripper', default_value='true', description='start the franka_gripper node'),
    DeclareLaunchArgument('controllers_yaml', default_value=PathJoinSubstitution(
        [FindPackageShare('maps_vla'), 'config', 'franka_controllers.yaml']), description=(
        'controller_manager config: franka broadcasters, cartesian_impedance_example_controller and an fr3 JTC')),
    DeclareLaunchArgument('checkpoint', default_value='zero', description=(
        "policy: a checkpoint folder, or a built-in test policy 'zero' (no motion) or 'sine'")),
    DeclareLaunchArgument('instruction', default_value='', description='language instruction'),
    DeclareLaunchArgument('control_mode', default_value='cartesian_impedance', choices=list(CONTROLLERS),
                          description='cartesian_impedance (equilibrium_pose) or joint_trajectory (JTC)'),
    DeclareLaunchArgument('cameras', default_value='', description=(
        "comma-separated camera names the policy reads; empty: the checkpoint's (name them, in device order, "
        'when camera_devices or camera_topics start a camera_node)')),
    DeclareLaunchArgument('camera_devices', default_value='', description=(
        "comma-separated OpenCV device indices or video files, one per camera (e.g. '0,2')")),
    DeclareLaunchArgument('camera_topics', default_value='', description=(
        'comma-separated driver image topics, one per camera, used when camera_devices is empty; both empty: '
        'something else publishes /camera/<name>/image_raw')),
    DeclareLaunchArgument('device', default_value='auto', description='torch device: auto, cpu, cuda ...'),
    DeclareLaunchArgument('with_policy', default_value='true', description=(
        'start the policy and smoother (false: bridge only, as teleop.launch.py does)')),
    DeclareLaunchArgument('episodes', default_value='0', description=(
        "start episode_runner_node for this many episodes (0: none); needs MoveIt's move_group running "
        '(franka_fr3_moveit_config move_group.launch.py) for the resets')),
    DeclareLaunchArgument('episodes_out', default_value='outputs/episodes', description=(
        'episodes: folder of the report (report.md, summary.csv, episodes.csv, outcomes.jsonl)')),
]


def _split(context, name):
    return [v.strip() for v in LaunchConfiguration(name).perform(context).split(',') if v.strip()]


def _robot(context):
    mode = LaunchConfiguration('control_mode').perform(context)
    actions = [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(PathJoinSubstitution(
                [FindPackageShare('franka_bringup'), 'launch', 'franka.launch.py'])),
            launch_arguments={'robot_type': LaunchConfiguration('robot_type'),
                              'robot_ip': LaunchConfiguration('robot_ip'),
                              'load_gripper': LaunchConfiguration('load_gripper'),
                              'use_fake_hardware': LaunchConfiguration('use_fake_hardware'),
                              'controllers_yaml': LaunchConfiguration('controllers_yaml')}.items()),
        Node(package='controller_manager', executable='spawner', output='screen',
             arguments=[CONTROLLERS[mode], '--controller-manager', '/controller_manager']),
    ]
    cameras, devices, topics = (_split(context, n) for n in ('cameras', 'camera_devices', 'camera_topics'))
    source = {'source.devices': devices} if devices else ({'topics': topics} if topics else None)
    if source is not None:
        if len(cameras) != len(devices or topics):
            raise ValueError(f'camera_devices / camera_topics need one camera name each: set cameras:=<names> '
                             f'(the checkpoint\'s, e.g. third_person,wrist) in their order; got cameras {cameras}')
        actions.append(Node(
            package='maps_vla', executable='camera_node', name='camera_node', output='screen',
            parameters=[PathJoinSubstitution([FindPackageShare('maps_vla'), 'config', 'camera_node.yaml']),
                        {'names': cameras, **source}],
            remappings=[(f'camera/{c}/image_raw', f'/camera/{c}/image_raw') for c in cameras]))
    return actions


def generate_launch_description():
    control = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare('maps_vla'), 'launch',
                                                            'control.launch.py'])),
        launch_arguments={name: LaunchConfiguration(name) for name in (
            'checkpoint', 'instruction', 'control_mode', 'cameras', 'robot_type', 'device',
            'with_policy', 'episodes', 'episodes_out')}.items())
    return LaunchDescription([*ARGUMENTS, OpaqueFunction(function=_robot), control])
