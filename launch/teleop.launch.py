"""Demonstration collection: a robot (MuJoCo sim or Franka) + franka_bridge_node + recorder_node (+ teleop_node, a bag).

With device:=keyboard|gamepad|spacemouse a teleop_node publishes /action (one-point JointTrajectory: EE deltas +
gripper, the policy's action layout) and /instruction, and its episode keys (enter: start / stop and save, x:
discard, q: quit) call the recorder's services; device:=none (default) leaves /action to you. The bridge moves the
robot, the recorder samples camera, state and action at `fps` into a LeRobot dataset. Episodes by hand:
`ros2 service call /recorder_node/start std_srvs/srv/Trigger` (and /stop, /discard). With record_bag:=true a
rosbag of the same topics (plus /episode_events) is written as well, which `maps-vla bag2episodes BAG --out
DATASET` turns into the same episodes offline.
The keyboard reads a terminal, which `ros2 launch` does not give a node: start teleop_node in a terminal of its own,
`ros2 run maps_vla teleop_node --ros-args -p use_sim_time:=true` (false on the robot), or pass
teleop_prefix:="xterm -e"; without one it takes keys from /teleop_node/keys only.
Example: ros2 launch maps_vla teleop.launch.py robot:=mujoco device:=gamepad dataset:=datasets/cube
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = [
    DeclareLaunchArgument('robot', default_value='mujoco', choices=['mujoco', 'franka'], description=(
        'mujoco: the MuJoCo bridge (sim time); franka: franka.launch.py without the policy')),
    DeclareLaunchArgument('robot_ip', default_value='172.16.0.2', description='franka: hostname or IP of the robot'),
    DeclareLaunchArgument('robot_type', default_value='fr3', description='franka robot type: fr3, fp3 or fer'),
    DeclareLaunchArgument('use_fake_hardware', default_value='false', description="franka: franka's mock hardware"),
    DeclareLaunchArgument('camera_devices', default_value='', description=(
        'franka: comma-separated OpenCV devices, one per camera')),
    DeclareLaunchArgument('cameras', default_value='third_person', description='comma-separated camera names'),
    DeclareLaunchArgument('task', default_value='pick_place', description='mujoco: sim task'),
    DeclareLaunchArgument('dataset', default_value='datasets/teleop', description=(
        'dataset folder (created, or appended to when it exists)')),
    DeclareLaunchArgument('fps', default_value='10', description='dataset frames per second'),
    DeclareLaunchArgument('instruction', default_value='', description=(
        'task of the episodes; empty: the sim task instruction or /instruction')),
    DeclareLaunchArgument('record_bag', default_value='false', description='also record a rosbag of the inputs'),
    DeclareLaunchArgument('bag', default_value='teleop_bag', description='bag directory for record_bag:=true'),
    DeclareLaunchArgument('device', default_value='none', choices=['keyboard', 'gamepad', 'spacemouse', 'none'],
                          description='teleop_node device publishing /action; none: no teleop_node'),
    DeclareLaunchArgument('teleop_prefix', default_value='', description=(
        "command prefix of teleop_node, e.g. 'xterm -e' to give the keyboard a terminal")),
]


def _perform(context, name):
    return LaunchConfiguration(name).perform(context)


def _share(*parts):
    return PathJoinSubstitution([FindPackageShare('maps_vla'), *parts])


def _nodes(context):
    robot = _perform(context, 'robot')
    cameras = [c.strip() for c in _perform(context, 'cameras').split(',') if c.strip()]
    sim_time = robot == 'mujoco'
    common = {'checkpoint': 'zero', 'with_policy': 'false', 'cameras': _perform(context, 'cameras'),
              'instruction': _perform(context, 'instruction'), 'robot_type': _perform(context, 'robot_type')}
    if sim_time:
        bringup = IncludeLaunchDescription(
            PythonLaunchDescriptionSource(_share('launch', 'sim.launch.py')),
            launch_arguments={**common, 'task': _perform(context, 'task')}.items())
    else:
        bringup = IncludeLaunchDescription(
            PythonLaunchDescriptionSource(_share('launch', 'franka.launch.py')),
            launch_arguments={**common, 'robot_ip': _perform(context, 'robot_ip'),
                              'use_fake_hardware': _perform(context, 'use_fake_hardware'),
                              'camera_devices': _perform(context, 'camera_devices')}.items())
    robot_type = _perform(context, 'robot_type')
    recorder = Node(
        package='maps_vla', executable='recorder_node', name='recorder_node', output='screen',
        parameters=[_share('config', 'recorder_node.yaml'), {
            'use_sim_time': sim_time, 'root': _perform(context, 'dataset'), 'fps': int(_perform(context, 'fps')),
            'cameras': cameras, 'instruction': _perform(context, 'instruction'),
            'state.finger_joints': [f'{robot_type}_finger_joint1', f'{robot_type}_finger_joint2']}],
        remappings=[('joint_states', '/joint_states'),
                    ('measured_pose', '/franka_robot_state_broadcaster/current_pose'),
                    ('action', '/action'), ('instruction', '/instruction'), ('episode_events', '/episode_events'),
                    *((f'camera/{c}/image_raw', f'/camera/{c}/image_raw') for c in cameras)])
    actions = [bringup, recorder]
    device = _perform(context, 'device')
    if device != 'none':
        prefix = _perform(context, 'teleop_prefix')
        actions.append(Node(
            package='maps_vla', executable='teleop_node', name='teleop_node', output='screen',
            **({'prefix': prefix} if prefix else {}),
            parameters=[_share('config', 'teleop_node.yaml'), {
                'use_sim_time': sim_time, 'device': device, 'instruction': _perform(context, 'instruction')}],
            remappings=[('action', '/action'), ('instruction', '/instruction'),
                        ('episode_events', '/episode_events')]))
    if _perform(context, 'record_bag').lower() in ('true', '1', 'yes'):
        topics = ['/joint_states', '/franka/joint_states', '/franka_gripper/joint_states',
                  '/franka_robot_state_broadcaster/current_pose', '/action', '/instruction', '/episode_events',
                  *(f'/camera/{c}/image_raw' for c in cameras)]
        record = ['ros2', 'bag', 'record', '-o', _perform(context, 'bag'), *topics]
        actions.append(ExecuteProcess(cmd=record + (['--use-sim-time'] if sim_time else []), output='screen'))
    return actions


def generate_launch_description():
    return LaunchDescription([*ARGUMENTS, OpaqueFunction(function=_nodes)])
