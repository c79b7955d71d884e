"""The rclpy nodes, wired in-process: parameters, topics, services. Runs only where rclpy exists (colcon test in the
Docker image); the logic behind each node is tested without ROS in test/control and test/sim."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from maps_vla.control import msg_conversion as mc  # noqa: E402
from maps_vla.control.chunk import ActionChunk  # noqa: E402
from maps_vla.control.proprio import TOOL_DOWN_QUAT  # noqa: E402
from maps_vla.control.smoothing import SmootherConfig  # noqa: E402
from maps_vla.ros.params import NodeParams  # noqa: E402
from maps_vla.ros.runtime import MESSAGE_TYPES, RELIABLE_QOS, SENSOR_QOS, now_sec  # noqa: E402

pytestmark = pytest.mark.ros
FINGERS = ['fr3_finger_joint1', 'fr3_finger_joint2']


@pytest.fixture
def graph():
    """An rclpy context with a spinning executor; yields (add_node, probe node)."""
    rclpy.init()
    executor = MultiThreadedExecutor(num_threads=4)
    probe = Node('probe')
    executor.add_node(probe)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    nodes = [probe]

    def add(node: Node) -> Node:
        nodes.append(node)
        executor.add_node(node)
        return node

    yield add, probe
    executor.shutdown()
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown()
    thread.join(5.0)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def collect(probe: Node, msg_type, topic: str, qos=RELIABLE_QOS) -> list:
    out: list = []
    probe.create_subscription(msg_type, topic, out.append, qos)
    return out


def call(probe: Node, srv_type, name: str, request):
    client = probe.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=10.0), f'service {name} not available'
    future = client.call_async(request)
    assert wait_for(future.done), f'service {name} did not answer'
    return future.result()


# ---------------------------------------------------------------------------------------------------- params
def test_the_graph_lives_on_the_test_domain(graph):
    """rcl takes the domain test/ros/conftest.py chose (not the inherited one a robot stack may be running on)."""
    import os

    assert rclpy.get_default_context().get_domain_id() == int(os.environ['ROS_DOMAIN_ID'])


def test_node_params_declare_typed_read_only_and_validate_dynamic_sets(graph):
    add, _ = graph
    node = add(Node('params_test', parameter_overrides=[Parameter('method', value='none'),
                                                         Parameter('max_velocity', value=[0.5, 0.5])]))
    changes = []
    params = NodeParams(node, {'': SmootherConfig}, dynamic=('hold_after',),
                        on_change=lambda prefix, cfg: changes.append(cfg))
    assert params[''].method.value == 'none' and params[''].max_velocity == (0.5, 0.5)
    assert params[''].max_jerk == () and node.get_parameter('gripper_index').value == -1
    descriptor = node.describe_parameter('blend_window')
    assert descriptor.read_only and 'crossfade' in descriptor.description
    assert not node.set_parameters([Parameter('hold_after', value=-1.0)])[0].successful  # __post_init__ rejects
    assert not node.set_parameters([Parameter('blend_window', value=0.3)])[0].successful  # read-only
    assert node.set_parameters([Parameter('hold_after', value=0.8)])[0].successful
    assert params[''].hold_after == 0.8 and changes[-1].hold_after == 0.8


def test_invalid_start_values_fail_the_node(graph):
    from maps_vla.ros.smoother_node import SmootherNode

    with pytest.raises(ValueError, match='control_hz must be in'):
        SmootherNode(parameter_overrides=[Parameter('control_hz', value=0.5)])


# ------------------------------------------------------------------------------------------- policy -> bridge
def test_smoother_turns_chunks_into_ticks(graph):
    from maps_vla.ros.smoother_node import SmootherNode

    add, probe = graph
    add(SmootherNode(parameter_overrides=[Parameter('control_hz', value=50.0)]))
    actions = collect(probe, JointTrajectory, 'action')
    pub = probe.create_publisher(JointTrajectory, 'action_chunk', RELIABLE_QOS)
    names = ('dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper')
    chunk = ActionChunk(now_sec(probe), np.tile([0.01, 0, 0, 0, 0, 0, 1.0], (10, 1)), 0.1, names)
    assert wait_for(lambda: pub.get_subscription_count() > 0)
    pub.publish(mc.chunk_to_trajectory(MESSAGE_TYPES, chunk))
    assert wait_for(lambda: len(actions) >= 10)
    last = actions[-1]
    assert tuple(last.joint_names) == names and len(last.points) == 1
    assert np.all(np.isfinite(last.points[0].positions))


def _publish_observation(probe: Node, image_pub, js_pub, pose_pub) -> float:
    now = now_sec(probe)
    image_pub.publish(mc.numpy_to_image(MESSAGE_TYPES, np.zeros((120, 160, 3), np.uint8), 'bgr8', now, 'cam'))
    js_pub.publish(mc.numpy_to_joint_state(MESSAGE_TYPES, FINGERS, [0.04, 0.04], stamp=now))
    pose_pub.publish(mc.numpy_to_pose(MESSAGE_TYPES, [0.4, 0.0, 0.4], TOOL_DOWN_QUAT, now, 'fr3_link0'))
    return now


def test_policy_node_publishes_chunks_stamped_with_the_observation(graph):
    from maps_vla.ros.policy_node import PolicyNode

    add, probe = graph
    node = add(PolicyNode(parameter_overrides=[Parameter('checkpoint', value='sine'),
                                               Parameter('instruction', value='wave'),
                                               Parameter('policy_hz', value=20.0)]))
    chunks = collect(probe, JointTrajectory, 'action_chunk')
    pubs = (probe.create_publisher(Image, 'camera/third_person/image_raw', SENSOR_QOS),
            probe.create_publisher(JointState, 'joint_states', SENSOR_QOS),
            probe.create_publisher(PoseStamped, 'measured_pose', SENSOR_QOS))
    stamps = []
    for _ in range(40):
        stamps.append(_publish_observation(probe, *pubs))
        if chunks:
            break
        time.sleep(0.05)
    assert wait_for(lambda: len(chunks) >= 1)
    chunk = mc.trajectory_to_chunk(chunks[0])
    assert chunk.horizon == 10 and chunk.dim == 7 and chunk.stamp in stamps  # the observation's own stamp
    assert call(probe, Trigger, 'policy_node/pause', Trigger.Request()).success and node.runner.paused
    assert node.set_parameters([Parameter('instruction', value='stop waving')])[0].successful
    assert node.runner.instruction == 'stop waving'


def test_franka_bridge_follows_actions_without_jumps_and_latches_estop(graph):
    from maps_vla.ros.franka_bridge_node import FrankaBridgeNode

    add, probe = graph
    add(FrankaBridgeNode(parameter_overrides=[Parameter('io.gripper', value='none')]))
    targets = collect(probe, PoseStamped, 'equilibrium_pose')
    status = collect(probe, String, 'safety_status')
    pose_pub = probe.create_publisher(PoseStamped, 'measured_pose', SENSOR_QOS)
    action_pub = probe.create_publisher(JointTrajectory, 'action', RELIABLE_QOS)
    names = ('dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper')
    assert not wait_for(lambda: targets, timeout=0.5)  # nothing before the first measurement
    for _ in range(30):
        now = now_sec(probe)
        pose_pub.publish(mc.numpy_to_pose(MESSAGE_TYPES, [0.4, 0.0, 0.4], TOOL_DOWN_QUAT, now, 'fr3_link0'))
        one = ActionChunk(now, np.array([[0.02, 0, 0, 0, 0, 0, 0]]), 0.01, names)
        action_pub.publish(mc.chunk_to_trajectory(MESSAGE_TYPES, one))
        time.sleep(0.02)
    assert wait_for(lambda: len(targets) > 20)
    positions = np.array([[t.pose.position.x, t.pose.position.y, t.pose.position.z] for t in targets])
    assert np.all(np.isfinite(positions)) and np.abs(np.diff(positions, axis=0)).max() <= 0.004 + 1e-9
    assert positions[-1, 0] > 0.4  # moved along +x
    assert call(probe, SetBool, 'franka_bridge_node/estop', SetBool.Request(data=True)).success
    assert wait_for(lambda: any(s.data.startswith('estop') for s in status))


# --------------------------------------------------------------------------------------------------- the sim
def test_mujoco_bridge_publishes_franka_interfaces_and_accepts_commands(graph):
    from maps_vla.ros.mujoco_bridge_node import MujocoBridgeNode

    add, probe = graph
    add(MujocoBridgeNode(parameter_overrides=[Parameter('cameras', value=['third_person'])]))
    clock = collect(probe, Clock, '/clock')
    arm = collect(probe, JointState, 'franka/joint_states')
    images = collect(probe, Image, 'camera/third_person/image_raw', SENSOR_QOS)
    poses = collect(probe, PoseStamped, 'franka_robot_state_broadcaster/current_pose', SENSOR_QOS)
    instruction = collect(probe, String, 'instruction')
    assert wait_for(lambda: len(clock) > 20 and images and poses and instruction)
    assert list(arm[-1].name) == [f'fr3_joint{i}' for i in range(1, 8)]
    assert images[-1].encoding == 'rgb8' and images[-1].height == 224
    start = np.array([poses[-1].pose.position.x, poses[-1].pose.position.y, poses[-1].pose.position.z])
    target = probe.create_publisher(PoseStamped, 'cartesian_impedance_example_controller/equilibrium_pose',
                                    RELIABLE_QOS)
    assert wait_for(lambda: target.get_subscription_count() > 0)
    target.publish(mc.numpy_to_pose(MESSAGE_TYPES, start + [0.05, 0.0, 0.0], TOOL_DOWN_QUAT, 0.0, 'fr3_link0'))
    assert wait_for(lambda: poses[-1].pose.position.x > start[0] + 0.04)
    assert call(probe, Trigger, 'mujoco_bridge_node/reset', Trigger.Request()).success


def test_recorder_node_writes_an_episode_from_the_sim(graph, tmp_path):
    from maps_vla.data import Dataset
    from maps_vla.ros.mujoco_bridge_node import MujocoBridgeNode
    from maps_vla.ros.recorder_node import RecorderNode

    add, probe = graph
    add(MujocoBridgeNode(parameter_overrides=[Parameter('cameras', value=['third_person'])]))
    add(RecorderNode(parameter_overrides=[Parameter('root', value=str(tmp_path / 'ds')),
                                          Parameter('video', value=False), Parameter('use_sim_time', value=True)],
                     cli_args=['--ros-args', '-r', 'measured_pose:=franka_robot_state_broadcaster/current_pose']))
    events = collect(probe, String, 'episode_events')
    action_pub = probe.create_publisher(JointTrajectory, 'action', RELIABLE_QOS)
    names = ('dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper')
    stop = threading.Event()

    def teleop() -> None:
        while not stop.is_set():
            one = ActionChunk(0.0, np.zeros((1, 7)), 0.1, names)  # stamp 0 = "now" for the recorder
            action_pub.publish(mc.chunk_to_trajectory(MESSAGE_TYPES, one))
            time.sleep(0.02)

    thread = threading.Thread(target=teleop, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)
        assert call(probe, Trigger, 'recorder_node/start', Trigger.Request()).success
        time.sleep(1.5)
        result = call(probe, Trigger, 'recorder_node/stop', Trigger.Request())
    finally:
        stop.set()
        thread.join()
    assert result.success and result.message.startswith('saved episode 0'), result.message
    assert wait_for(lambda: [e.data for e in events] == ['start', 'stop'])
    assert Dataset(tmp_path / 'ds').num_episodes == 1


def test_teleop_node_publishes_actions_from_keys_and_drives_the_recorder(graph, tmp_path, monkeypatch):
    import io

    from maps_vla.ros.recorder_node import RecorderNode
    from maps_vla.ros.teleop_node import TeleopNode

    monkeypatch.setattr('sys.stdin', io.StringIO())  # no terminal: keys come from ~/keys only
    add, probe = graph
    add(RecorderNode(parameter_overrides=[Parameter('root', value=str(tmp_path / 'ds')),
                                          Parameter('video', value=False)]))
    node = add(TeleopNode(parameter_overrides=[Parameter('rate_hz', value=50.0),
                                               Parameter('instruction', value='wave')]))
    actions = collect(probe, JointTrajectory, 'action')
    instructions = collect(probe, String, 'instruction')
    events = collect(probe, String, 'episode_events')
    keys = probe.create_publisher(String, 'teleop_node/keys', RELIABLE_QOS)
    assert wait_for(lambda: keys.get_subscription_count() > 0 and len(actions) > 5)
    last = actions[-1]
    assert tuple(last.joint_names) == ('dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper')
    assert len(last.points) == 1 and list(last.points[0].positions) == [0.0] * 7 and mc.stamp_of(last) > 0
    keys.publish(String(data='w space'))
    assert wait_for(lambda: any(a.points[0].positions[0] > 0 for a in actions))
    moved = next(a for a in actions if a.points[0].positions[0] > 0).points[0].positions
    assert list(moved) == pytest.approx([0.01, 0, 0, 0, 0, 0, 1.0])
    keys.publish(String(data='enter'))
    assert wait_for(lambda: [e.data for e in events] == ['start'] and node.stream.recording)
    assert [i.data for i in instructions] == ['wave']
    keys.publish(String(data='enter'))
    assert wait_for(lambda: [e.data for e in events] == ['start', 'stop'] and not node.stream.recording)
    assert call(probe, Trigger, 'recorder_node/start', Trigger.Request()).success  # started by someone else
    assert wait_for(lambda: node.stream.recording)
    keys.publish(String(data='x'))
    assert wait_for(lambda: [e.data for e in events] == ['start', 'stop', 'start', 'discard'])
    assert node.set_parameters([Parameter('instruction', value='wave again')])[0].successful
    assert wait_for(lambda: [i.data for i in instructions] == ['wave', 'wave again'])


def test_run_node_shuts_down_after_a_failing_constructor():
    from maps_vla.ros.runtime import run_node

    def broken() -> Node:
        raise ValueError('bad parameters')

    with pytest.raises(ValueError, match='bad parameters'):
        run_node(broken, [])
    assert not rclpy.ok()


def test_policy_node_refuses_a_checkpoint_the_control_mode_cannot_run(graph, tmp_path):
    """An ee_delta checkpoint under control_mode:=joint_trajectory stops at start with one line (issue 17)."""
    import dataclasses
    import json

    from maps_vla.config import to_dict
    from maps_vla.control.node_config import NodeConfigError
    from maps_vla.model.vla.configuration_vla import VLAConfig
    from maps_vla.policy import ActionSpec
    from maps_vla.ros.policy_node import PolicyNode

    (tmp_path / 'config.json').write_text(json.dumps({'format': 'maps_vla.vla', 'config': to_dict(VLAConfig())}))
    (tmp_path / 'action_spec.json').write_text(json.dumps(dataclasses.asdict(ActionSpec())))
    with pytest.raises(NodeConfigError, match='launch it with control_mode:=cartesian_impedance'):
        PolicyNode(parameter_overrides=[Parameter('checkpoint', value=str(tmp_path)),
                                        Parameter('action_kind', value='joint_position')])


def test_franka_bridge_suspends_for_a_reset_and_re_anchors_after_it(graph):
    """During a MoveIt reset the bridge publishes nothing; afterwards its target starts at the new measured pose."""
    from maps_vla.ros.franka_bridge_node import FrankaBridgeNode

    add, probe = graph
    add(FrankaBridgeNode(parameter_overrides=[Parameter('io.gripper', value='none')]))
    targets = collect(probe, PoseStamped, 'equilibrium_pose')
    status = collect(probe, String, 'safety_status')
    pose_pub = probe.create_publisher(PoseStamped, 'measured_pose', SENSOR_QOS)

    def measure(x: float) -> None:
        pose_pub.publish(mc.numpy_to_pose(MESSAGE_TYPES, [x, 0.0, 0.4], TOOL_DOWN_QUAT, now_sec(probe), 'fr3_link0'))

    assert wait_for(lambda: (measure(0.4), targets)[1])
    assert call(probe, SetBool, 'franka_bridge_node/suspend', SetBool.Request(data=True)).success
    assert wait_for(lambda: any(s.data.startswith('suspended') for s in status))
    time.sleep(0.1)
    count = len(targets)
    for _ in range(10):  # the arm moves elsewhere under MoveIt
        measure(0.5)
        time.sleep(0.02)
    assert len(targets) == count
    assert call(probe, SetBool, 'franka_bridge_node/suspend', SetBool.Request(data=False)).success
    assert wait_for(lambda: (measure(0.5), len(targets) > count)[1])
    assert targets[-1].pose.position.x == pytest.approx(0.5)  # not the pre-reset 0.4


def test_episode_runner_resets_through_a_move_group_server_and_the_controller_switch(graph):
    """~/reset_arm against fake policy, bridge, controller_manager and MoveGroup servers with the real moveit_msgs
    and controller_manager_msgs types: the calls in order, the goal move_group receives, a planning failure."""
    MoveGroup = pytest.importorskip('moveit_msgs.action').MoveGroup
    SwitchController = pytest.importorskip('controller_manager_msgs.srv').SwitchController
    from rclpy.action import ActionServer
    from rclpy.callback_groups import ReentrantCallbackGroup

    from maps_vla.control.franka_limits import FR3_HOME
    from maps_vla.ros.episode_runner_node import EpisodeRunnerNode

    add, probe = graph
    calls: list[str] = []
    goals: list = []
    codes = [1, -1]  # SUCCESS, then PLANNING_FAILED
    group = ReentrantCallbackGroup()

    def trigger(name):
        def serve(request, response):
            calls.append(name)
            response.success = True
            return response
        return serve

    def suspend(request, response):
        calls.append(f'suspend {request.data}')
        response.success = True
        return response

    def switch(request, response):
        calls.append(f'switch to {",".join(request.activate_controllers)}')
        response.ok = True
        return response

    def move(goal_handle):
        calls.append('move')
        goals.append(goal_handle.request)
        goal_handle.succeed()
        result = MoveGroup.Result()
        result.error_code.val = codes[len(goals) - 1]
        return result

    for name in ('pause', 'resume', 'reset'):
        probe.create_service(Trigger, f'/policy_node/{name}', trigger(name), callback_group=group)
    probe.create_service(SetBool, '/franka_bridge_node/suspend', suspend, callback_group=group)
    probe.create_service(SwitchController, '/controller_manager/switch_controller', switch, callback_group=group)
    ActionServer(probe, MoveGroup, '/move_action', move, callback_group=group)
    add(EpisodeRunnerNode(parameter_overrides=[Parameter('io.autostart', value=False)]))

    done = call(probe, Trigger, 'episode_runner_node/reset_arm', Trigger.Request())
    assert done.success, done.message
    assert calls == ['pause', 'suspend True', 'switch to fr3_arm_controller', 'move',
                     'switch to cartesian_impedance_example_controller', 'suspend False', 'reset']
    request = goals[0].request
    assert request.group_name == 'fr3_arm' and not goals[0].planning_options.plan_only
    assert request.start_state.is_diff and goals[0].planning_options.planning_scene_diff.is_diff
    joints = request.goal_constraints[0].joint_constraints
    assert [j.joint_name for j in joints] == [f'fr3_joint{i}' for i in range(1, 8)]
    assert [j.position for j in joints] == pytest.approx(FR3_HOME)
    assert {j.tolerance_above for j in joints} == {0.01} and request.max_velocity_scaling_factor == 0.2

    calls.clear()
    failed = call(probe, Trigger, 'episode_runner_node/reset_arm', Trigger.Request())
    assert not failed.success and 'PLANNING_FAILED' in failed.message
    assert calls == ['pause', 'suspend True', 'switch to fr3_arm_controller', 'move']  # stops there, paused


def test_franka_bridge_switches_jazzy_servo_to_twists_and_streams_them(graph):
    """control_mode:=servo on Jazzy: switch_command_type TWIST (moveit_msgs/srv/ServoCommandType, the real type) on a
    fake Servo, then TwistStamped on servo_twist toward the policy's target; nothing before Servo accepted."""
    ServoCommandType = pytest.importorskip('moveit_msgs.srv').ServoCommandType
    from geometry_msgs.msg import TwistStamped

    from maps_vla.ros.franka_bridge_node import FrankaBridgeNode

    add, probe = graph
    requests: list[int] = []

    def switch(request, response):
        requests.append(request.command_type)
        response.success = True
        return response

    twists = collect(probe, TwistStamped, 'servo_twist')
    pose_pub = probe.create_publisher(PoseStamped, 'measured_pose', SENSOR_QOS)
    action_pub = probe.create_publisher(JointTrajectory, 'action', RELIABLE_QOS)
    names = ('dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper')
    add(FrankaBridgeNode(parameter_overrides=[Parameter('io.gripper', value='none'), Parameter('io.servo', value=True),
                                              Parameter('servo.distro', value='jazzy')]))

    def drive(steps: int) -> None:
        for _ in range(steps):
            now = now_sec(probe)
            pose_pub.publish(mc.numpy_to_pose(MESSAGE_TYPES, [0.4, 0.0, 0.4], TOOL_DOWN_QUAT, now, 'fr3_link0'))
            one = ActionChunk(now, np.array([[0.02, 0, 0, 0, 0, 0, 0]]), 0.01, names)
            action_pub.publish(mc.chunk_to_trajectory(MESSAGE_TYPES, one))
            time.sleep(0.02)

    drive(10)
    assert not twists  # Servo has not accepted twists yet
    probe.create_service(ServoCommandType, '/servo_node/switch_command_type', switch)
    assert wait_for(lambda: requests, timeout=5.0)
    assert requests == [ServoCommandType.Request.TWIST]
    drive(30)
    assert wait_for(lambda: len(twists) > 10)
    assert twists[-1].header.frame_id == 'fr3_link0' and twists[-1].twist.linear.x > 0  # toward +x
