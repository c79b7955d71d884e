"""The maps_vla control stack on a running robot or sim: policy_node -> smoother_node -> franka_bridge_node.

Included by franka.launch.py, sim.launch.py and replay.launch.py (teleop.launch.py runs the bridge alone with
with_policy:=false). All topics are wired to franka_ros2's names in the root namespace:
  policy_node   <- /camera/<name>/image_raw, /joint_states, /franka_robot_state_broadcaster/current_pose,
                   /instruction;  -> /action_chunk
  smoother_node <- /action_chunk;  -> /action
  franka_bridge_node <- /action, current_pose or /franka/joint_states;
                   -> /cartesian_impedance_example_controller/equilibrium_pose (control_mode cartesian_impedance)
                   or /joint_trajectory_controller/joint_trajectory (control_mode joint_trajectory)
                   or /servo_node/delta_twist_cmds (control_mode servo: MoveIt Servo must run, see docs/ros.md);
                   gripper goals on /franka_gripper/*.
  episode_runner_node (episodes:=N > 0) -> reset (MoveGroup on /move_action; sim: /mujoco_bridge_node/reset
                   too), run, mark (/episode_runner_node/success|failure|abort), report in episodes_out.
Example: ros2 launch maps_vla control.launch.py checkpoint:=/ckpt/run1 instruction:="pick up the cube"
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

CONTROL_MODES = ('cartesian_impedance', 'joint_trajectory', 'servo')
# The controller each control mode commands (switched back to after a MoveIt reset); servo: Servo's, no switch.
POLICY_CONTROLLERS = {'cartesian_impedance': 'cartesian_impedance_example_controller',
                      'joint_trajectory': 'joint_trajectory_controller', 'servo': ''}
ARGUMENTS = [
    DeclareLaunchArgument('checkpoint', default_value='zero', description=(
        "policy: a checkpoint folder, or a built-in test policy 'zero' (no motion) or 'sine'")),
    DeclareLaunchArgument('instruction', default_value='', description=(
        'language instruction (later ones arrive on /instruction)')),
    DeclareLaunchArgument('control_mode', default_value='cartesian_impedance', choices=list(CONTROL_MODES),
                          description='cartesian_impedance: ee_delta actions -> equilibrium_pose; joint_trajectory: '
                                      'joint_position actions -> /joint_trajectory_controller; servo: ee_delta '
                                      'actions -> MoveIt Servo twists'),
    DeclareLaunchArgument('cameras', default_value='', description=(
        "comma-separated camera names the policy reads on /camera/<name>/image_raw; empty: the checkpoint's")),
    DeclareLaunchArgument('state', default_value='', choices=['', 'ee_pose', 'joint_positions'], description=(
        "observation.state layout: ee_pose (the sim layout) or joint_positions; empty: the checkpoint's")),
    DeclareLaunchArgument('robot_type', default_value='fr3', description=(
        'franka robot type: fr3, fp3 or fer (joints <robot_type>_joint1..7)')),
    DeclareLaunchArgument('device', default_value='auto', description=(
        'torch device of a checkpoint: auto, cpu, cuda, cuda:1 ...')),
    DeclareLaunchArgument('gripper', default_value='franka', choices=['franka', 'gripper_command', 'none'],
                          description='gripper interface: franka Move/Grasp actions, control_msgs GripperCommand, '
                                      'or none'),
    DeclareLaunchArgument('with_policy', default_value='true', description=(
        'start policy_node and smoother_node (false: only the bridge, e.g. for teleop)')),
    DeclareLaunchArgument('use_sim_time', default_value='false', description='follow /clock (sim, bag replay)'),
    DeclareLaunchArgument('servo_distro', default_value='jazzy', choices=['humble', 'jazzy'], description=(
        "control_mode servo: moveit_servo's API (start_servo on humble, switch_command_type on jazzy)")),
    DeclareLaunchArgument('episodes', default_value='0', description=(
        'start episode_runner_node for this many episodes (0: none): reset, run, mark, report')),
    DeclareLaunchArgument('episode_reset', default_value='moveit', choices=['moveit', 'mujoco'], description=(
        "episodes: 'moveit' (move_group + controller switch, robot) or 'mujoco' (the MuJoCo bridge's scene "
        'reset and MoveGroup server)')),
    DeclareLaunchArgument('episodes_out', default_value='outputs/episodes', description=(
        'episodes: folder of the report (report.md, summary.csv, episodes.csv, outcomes.jsonl)')),
]


def _flag(context, name):
    return LaunchConfiguration(name).perform(context).strip().lower() in ('true', '1', 'yes', 'on')


def _config(filename):
    return PathJoinSubstitution([FindPackageShare('maps_vla'), 'config', filename])


def _nodes(context):
    arg = {a.name: LaunchConfiguration(a.name).perform(context) for a in ARGUMENTS}
    ee = arg['control_mode'] != 'joint_trajectory'
    servo = arg['control_mode'] == 'servo'
    robot = arg['robot_type']
    cameras = [c.strip() for c in arg['cameras'].split(',') if c.strip()]
    sim_time = {'use_sim_time': _flag(context, 'use_sim_time')}
    gripper_index = 6 if ee else 7
    # What the smoother and bridge execute; the policy node stops at start if the checkpoint disagrees.
    actions = {'action_kind': 'ee_delta' if ee else 'joint_position', 'action_dim': 7 if ee else 8,
               'gripper_index': gripper_index}
    joints = [f'{robot}_joint{i}' for i in range(1, 8)]
    fingers = [f'{robot}_finger_joint1', f'{robot}_finger_joint2']
    pose = ('measured_pose', '/franka_robot_state_broadcaster/current_pose')
    bridge = Node(
        package='maps_vla', executable='franka_bridge_node', name='franka_bridge_node', output='screen',
        parameters=[_config('franka_bridge_node.yaml'), {
            **sim_time, 'kind': 'ee_delta' if ee else 'joint_position', 'robot_type': robot,
            'frame_id': f'{robot}_link0', 'gripper_index': gripper_index, 'io.gripper': arg['gripper'],
            'io.servo': servo, 'servo.distro': arg['servo_distro'], 'servo.frame_id': f'{robot}_link0'}],
        remappings=[('action', '/action'), pose, ('joint_states', '/franka/joint_states'),
                    ('equilibrium_pose', '/cartesian_impedance_example_controller/equilibrium_pose'),
                    ('joint_trajectory', '/joint_trajectory_controller/joint_trajectory'),
                    ('servo_twist', '/servo_node/delta_twist_cmds'), ('safety_status', '/safety_status')])
    if not _flag(context, 'with_policy'):
        return [bridge]
    policy = Node(
        package='maps_vla', executable='policy_node', name='policy_node', output='screen',
        parameters=[_config('policy_node.yaml'), {
            **sim_time, 'checkpoint': arg['checkpoint'], 'instruction': arg['instruction'],
            'device': arg['device'], **actions, **({'cameras': cameras} if cameras else {}),
            'state_layout': arg['state'], 'state.joints': joints, 'state.finger_joints': fingers}],
        remappings=[('joint_states', '/joint_states'), pose, ('instruction', '/instruction'),
                    ('action_chunk', '/action_chunk')])
    smoother = Node(
        package='maps_vla', executable='smoother_node', name='smoother_node', output='screen',
        parameters=[_config('smoother_node.yaml'), {
            **sim_time, 'gripper_index': gripper_index, 'hold_mode': 'zero' if ee else 'keep'}],
        remappings=[('action_chunk', '/action_chunk'), ('action', '/action')])
    return [policy, smoother, bridge, *_episodes(arg, robot, sim_time)]


def _episodes(arg, robot, sim_time):
    episodes = int(arg['episodes'])
    if episodes <= 0:
        return []
    sim = arg['episode_reset'] == 'mujoco'
    policy_controller = '' if sim else POLICY_CONTROLLERS[arg['control_mode']]
    return [Node(
        package='maps_vla', executable='episode_runner_node', name='episode_runner_node', output='screen',
        parameters=[_config('episode_runner_node.yaml'), {
            **sim_time, 'episodes': episodes, 'out_dir': arg['episodes_out'], 'reset.robot_type': robot,
            'reset.group': f'{robot}_arm', 'reset.frame_id': f'{robot}_link0',
            'reset.moveit_controller': f'{robot}_arm_controller' if policy_controller else '',
            'reset.policy_controller': policy_controller,
            'io.scene_reset': '/mujoco_bridge_node/reset' if sim else '',
            'io.success_topic': '/sim/success' if sim else ''}],
        remappings=[('instruction', '/instruction'), ('episode_mark', '/episode_mark')])]


def generate_launch_description():
    return LaunchDescription([*ARGUMENTS, OpaqueFunction(function=_nodes)])
