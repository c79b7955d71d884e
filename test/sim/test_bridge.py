"""sim.bridge.SimBridge: the MuJoCo Franka behind franka_ros2's command and state interfaces."""

from __future__ import annotations

import numpy as np
import pytest

from maps_vla.control.franka_limits import FR3_HOME
from maps_vla.control.proprio import ProprioAssembler, TOOL_DOWN_QUAT
from maps_vla.control.rotations import quat_angle, quat_from_euler, quat_multiply
from maps_vla.policy import OBS_STATE
from maps_vla.sim.bridge import CommandMode, SimBridge, SimBridgeConfig


@pytest.fixture(scope='module')
def bridge():
    with SimBridge(SimBridgeConfig(cameras=('third_person',), image_width=64, image_height=48, camera_hz=15.0)) as b:
        yield b


def _run(bridge, steps):
    for _ in range(steps):
        state = bridge.step()
    return state


def test_starts_at_franka_home_and_reports_like_franka(bridge):
    bridge.reset(0)
    assert bridge.mode is CommandMode.HOLD and bridge.instruction
    t0 = bridge.time
    frame_times = []
    for _ in range(100):  # one simulated second at 100 Hz
        state = bridge.step()
        if state.images:
            assert state.images['third_person'].shape == (48, 64, 3)
            frame_times.append(state.time)
    assert state.time == pytest.approx(t0 + 1.0)
    gaps = np.diff(frame_times)  # due at t0, t0 + 1/15, ..., t0 + 1: on the 100 Hz step grid 0.06 or 0.07 s apart
    assert len(frame_times) == 16 and np.all((gaps > 0.055) & (gaps < 0.075))
    np.testing.assert_allclose(state.arm_position, FR3_HOME, atol=2e-3)  # holds home, sagging < 2 mrad
    np.testing.assert_allclose(state.tcp_quaternion, TOOL_DOWN_QUAT, atol=2e-3)
    assert state.finger_position == pytest.approx([0.04, 0.04], abs=1e-3)
    assert bridge.cfg.arm_joints[0] == 'fr3_joint1' and bridge.cfg.base_frame == 'fr3_link0'


def test_ee_pose_state_equals_the_sim_observation(bridge):
    bridge.reset(1)
    state = _run(bridge, 3)
    proprio = ProprioAssembler()
    proprio.on_joint_state(bridge.cfg.finger_joints, state.finger_position, state.time)
    proprio.on_pose(state.tcp_position, state.tcp_quaternion, state.time)
    obs = bridge.env.task.get_observation(bridge.physics)
    np.testing.assert_allclose(proprio.state()[0], obs[OBS_STATE], atol=1e-5)


def test_equilibrium_pose_is_tracked(bridge):
    bridge.reset(0)
    start = _run(bridge, 1)
    target = start.tcp_position + [0.05, -0.04, -0.03]
    turn = quat_multiply(quat_from_euler(0.0, 0.0, 0.3), TOOL_DOWN_QUAT)
    bridge.on_pose_target(target, turn)
    state = _run(bridge, 150)
    assert bridge.mode is CommandMode.POSE
    np.testing.assert_allclose(state.tcp_position, target, atol=3e-3)
    assert quat_angle(state.tcp_quaternion, turn) < 0.01


def test_joint_trajectory_is_interpolated_in_time(bridge):
    bridge.reset(0)
    state = _run(bridge, 1)
    q0 = state.arm_position
    goal = q0 + np.array([0.2, 0.0, 0.0, 0.1, 0.0, 0.0, -0.2])
    names = list(reversed(bridge.cfg.arm_joints))  # any order
    bridge.on_joint_trajectory(names, [1.0], [goal[::-1]])
    half = _run(bridge, 50)  # halfway along the 1 s ramp
    np.testing.assert_allclose(half.arm_position, q0 + 0.5 * (goal - q0), atol=0.02)
    done = _run(bridge, 100)
    np.testing.assert_allclose(done.arm_position, goal, atol=5e-3)


def test_gripper_closes_and_settles(bridge):
    bridge.reset(0)
    bridge.on_gripper(0.0)
    _run(bridge, 5)
    assert bridge.gripper_moving
    _run(bridge, 150)
    assert not bridge.gripper_moving and bridge.gripper_width < 0.005
    bridge.on_gripper(0.08)
    _run(bridge, 150)
    assert bridge.gripper_width > 0.075


def test_reset_keeps_the_clock_monotonic(bridge):
    _run(bridge, 10)
    before = bridge.time
    bridge.reset()
    assert bridge.time >= before and bridge.step().time > before


@pytest.mark.parametrize('call, match', [
    (lambda b: b.on_pose_target([0.4, 0.0, np.nan], TOOL_DOWN_QUAT), '3 \\+ 4 finite values'),
    (lambda b: b.on_pose_target([0.4, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0]), 'Cannot normalize'),
    (lambda b: b.on_joint_trajectory(['a'] * 7, [1.0], np.zeros((1, 7))), 'must name the arm joints'),
    (lambda b: b.on_joint_trajectory(b.cfg.arm_joints, [1.0, 0.5], np.zeros((2, 7))), 'increasing'),
    (lambda b: b.on_joint_trajectory(b.cfg.arm_joints, [1.0], np.zeros((2, 7))), r'positions \(P, 7\)'),
    (lambda b: b.on_gripper(float('nan')), 'gripper width must be finite'),
])
def test_invalid_commands_are_rejected(bridge, call, match):
    with pytest.raises(ValueError, match=match):
        call(bridge)


@pytest.mark.parametrize('kwargs, match', [
    (dict(cameras=('top',)), 'cameras must be distinct names'),
    (dict(control_hz=0.0), 'control_hz must be'),
    (dict(instruction_period=-1.0), 'instruction_period must be'),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimBridgeConfig(**kwargs)


def test_rates_must_divide():
    with pytest.raises(ValueError, match='whole number'):
        SimBridgeConfig(control_hz=300.0).env_config()


def test_move_to_a_start_pose_at_scaled_joint_speed(bridge):
    """The sim's side of a MoveIt reset: the MoveGroup goal's joints reached at velocity_scaling of the limits."""
    bridge.reset(0)
    q0 = _run(bridge, 1).arm_position
    goal = q0 + np.array([0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    names = list(reversed(bridge.cfg.arm_joints))
    duration = bridge.move_to(names, goal[::-1], velocity_scaling=0.2)
    assert duration == pytest.approx(0.3 / (2.62 * 0.2), rel=0.02)  # fr3_joint1: 2.62 rad/s
    assert not bridge.reached(goal)
    _run(bridge, int(duration * 100) + 30)
    assert bridge.reached(goal, tolerance=0.01)
    bridge.end_move()
    with pytest.raises(ValueError, match='outside the joint range'):
        bridge.move_to(bridge.cfg.arm_joints, q0 + np.array([10.0, 0, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match='velocity_scaling'):
        bridge.move_to(bridge.cfg.arm_joints, q0, velocity_scaling=0.0)


def test_a_move_to_motion_is_not_taken_over_by_late_policy_targets(bridge):
    """On the Jazzy build an episode's second MoveGroup reset timed out: equilibrium_pose targets queued before the
    reset arrived after it and turned the motion into a pose hold. Until end_move() they are refused, as on the robot,
    where MoveIt's controller has replaced the cartesian impedance controller."""
    bridge.reset(0)
    state = _run(bridge, 1)
    stale = state.tcp_position + np.array([0.05, 0.05, -0.08])
    goal = state.arm_position + np.array([0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    duration = bridge.move_to(bridge.cfg.arm_joints, goal, velocity_scaling=0.2)
    with pytest.raises(ValueError, match='MoveGroup motion owns the arm'):
        bridge.on_pose_target(stale, state.tcp_quaternion)
    with pytest.raises(ValueError, match='MoveGroup motion owns the arm'):
        bridge.on_joint_trajectory(bridge.cfg.arm_joints, [1.0], state.arm_position[None])
    _run(bridge, int(duration * 100) + 30)
    assert bridge.reached(goal, tolerance=0.01) and bridge.mode is CommandMode.TRAJECTORY
    bridge.end_move()
    bridge.on_pose_target(stale, state.tcp_quaternion)
    assert bridge.mode is CommandMode.POSE
