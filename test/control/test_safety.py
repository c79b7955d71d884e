import math

import numpy as np
import pytest

from maps_vla.control.franka_limits import FR3_HOME, joint_limits
from maps_vla.control.rotations import (quat_angle, quat_from_euler, quat_from_rotvec, quat_multiply, quat_normalize,
                                        quat_to_rotvec)
from maps_vla.control.safety import SafetyBridge, SafetyConfig, SafetyStatus

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # gripper pointing down
START = np.array([0.5, 0.0, 0.4])


def _bridge(**cfg):
    bridge = SafetyBridge(SafetyConfig(**cfg))
    bridge.on_measured_pose(START, DOWN, 0.0)
    return bridge


def _cmd(dx=0.0, dy=0.0, dz=0.0, rot=(0.0, 0.0, 0.0), grip=0.0):
    return np.array([dx, dy, dz, *rot, grip])


def _drive(bridge, command, ticks, t0=0.0, hz=100.0):
    outs = []
    for k in range(ticks):
        t = t0 + k / hz
        bridge.on_command(command, t)
        outs.append(bridge.tick(t))
    return outs


def test_rotation_helpers():
    rng = np.random.default_rng(0)
    for _ in range(20):
        rv = rng.normal(size=3)
        rv *= min(1.0, 3.0 / np.linalg.norm(rv))
        assert quat_to_rotvec(quat_from_rotvec(rv)) == pytest.approx(rv, abs=1e-9)
    q = quat_from_euler(0.1, -0.2, 0.3)
    assert np.linalg.norm(q) == pytest.approx(1.0)
    assert quat_angle(q, quat_multiply(quat_from_rotvec([0, 0, 0.25]), q)) == pytest.approx(0.25)
    assert quat_from_rotvec([0, 0, math.pi]) == pytest.approx([0, 0, 1, 0], abs=1e-12)
    with pytest.raises(ValueError, match='Cannot normalize'):
        quat_normalize([0, 0, 0, 0])


def test_waiting_until_a_measurement_then_hold_until_a_command():
    bridge = SafetyBridge(SafetyConfig())
    out = bridge.tick(0.0)
    assert out.status is SafetyStatus.WAITING and out.pose is None
    bridge.on_measured_pose(START, DOWN, 0.0)
    out = bridge.tick(0.01)
    assert out.status is SafetyStatus.HOLD_WATCHDOG and out.reason == 'no command yet'
    assert out.pose.position == pytest.approx(START) and out.pose.frame_id == 'fr3_link0'


def test_deltas_are_integrated_per_tick_share():
    bridge = _bridge(control_hz=100.0, action_hz=10.0, max_lead=1.0)
    outs = _drive(bridge, _cmd(dx=0.01, rot=(0.0, 0.0, 0.02)), 10)  # one action step = 10 ticks
    assert outs[-1].status is SafetyStatus.ACTIVE
    assert outs[-1].pose.position == pytest.approx(START + [0.01, 0, 0])
    assert quat_angle(outs[-1].pose.quaternion, DOWN) == pytest.approx(0.02)


def test_workspace_clamp():
    bridge = _bridge(workspace_max=(0.75, 0.45, 0.42), max_lead=1.0)
    outs = _drive(bridge, _cmd(dz=0.01), 200)
    z = np.array([o.pose.position[2] for o in outs])
    assert z.max() == pytest.approx(0.42) and np.all(z <= 0.42 + 1e-12)


def test_per_tick_step_limits_for_huge_commands():
    bridge = _bridge(max_translation_step=0.002, max_rotation_step=0.01, max_lead=10.0, max_lead_rotation=3.0,
                     workspace_min=(-5, -5, -5), workspace_max=(5, 5, 5))
    outs = _drive(bridge, _cmd(dx=5.0, dy=-5.0, rot=(3.0, 0.0, 0.0)), 50)
    pos = np.array([START] + [o.pose.position for o in outs])
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert steps.max() == pytest.approx(0.002) and np.all(steps <= 0.002 + 1e-12)
    quats = [DOWN] + [o.pose.quaternion for o in outs]
    turns = [quat_angle(a, b) for a, b in zip(quats, quats[1:])]
    assert max(turns) == pytest.approx(0.01, rel=1e-6) and max(turns) <= 0.01 + 1e-9


def test_target_stays_near_the_measured_pose():
    bridge = _bridge(max_lead=0.03)
    outs = _drive(bridge, _cmd(dx=0.05), 100)  # the robot does not move (blocked)
    lead = np.linalg.norm(outs[-1].pose.position - START)
    assert lead == pytest.approx(0.03)


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_non_finite_commands_are_rejected_and_held(bad):
    bridge = _bridge(max_lead=1.0)
    _drive(bridge, _cmd(dx=0.01), 5)
    before = bridge.tick(0.05).pose.position
    bridge.on_command(_cmd(dx=bad), 0.06)
    out = bridge.tick(0.06)
    assert out.status is SafetyStatus.HOLD_REJECTED and 'non-finite command' in out.reason
    assert np.array_equal(out.pose.position, before) and np.all(np.isfinite(out.pose.quaternion))
    assert bridge.rejections == {'non-finite command': 1}
    bridge.on_measured_pose([math.nan, 0, 0], DOWN, 0.07)  # a broken measurement is ignored too
    assert bridge.rejections['non-finite measured pose'] == 1
    bridge.on_command(_cmd(dx=0.01), 0.08)
    assert bridge.tick(0.08).status is SafetyStatus.ACTIVE


def test_watchdog_holds_when_commands_stop():
    bridge = _bridge(watchdog_timeout=0.1, max_lead=1.0)
    _drive(bridge, _cmd(dx=0.01), 10)
    held = bridge.tick(0.1).pose.position
    out = bridge.tick(0.2)
    assert out.status is SafetyStatus.HOLD_WATCHDOG and out.reason.startswith('no command for 0.11')
    assert np.array_equal(out.pose.position, held)


def test_estop_latches_until_released():
    bridge = _bridge(max_lead=1.0)
    _drive(bridge, _cmd(dx=0.01), 3)
    bridge.engage_estop('operator')
    held = bridge.tick(0.03).pose.position
    outs = _drive(bridge, _cmd(dx=0.01, grip=1.0), 20, t0=0.04)
    assert {o.status for o in outs} == {SafetyStatus.ESTOP} and outs[-1].reason == 'operator'
    assert np.array_equal(outs[-1].pose.position, held) and all(o.gripper is None for o in outs)
    bridge.release_estop()
    out = _drive(bridge, _cmd(dx=0.01), 1, t0=0.5)[0]
    assert out.status is SafetyStatus.ACTIVE and out.pose.position[0] > held[0]


def test_gripper_commands_on_change_only():
    bridge = _bridge()
    outs = _drive(bridge, _cmd(grip=0.2), 3) + _drive(bridge, _cmd(grip=0.9), 3, t0=0.03)
    grips = [(i, o.gripper) for i, o in enumerate(outs) if o.gripper is not None]
    assert [i for i, _ in grips] == [0, 3]
    opened, closed = grips[0][1], grips[1][1]
    assert not opened.grasp and opened.width == pytest.approx(0.08) and opened.finger_position == pytest.approx(0.04)
    assert closed.grasp and closed.width == 0.0 and closed.force == 20.0


def test_joint_mode_limits():
    limits = joint_limits('fr3')
    lower, upper, velocity, _ = limits.arrays()
    bridge = SafetyBridge(SafetyConfig(kind='joint_position', gripper_index=7, joint_margin=0.05,
                                       joint_velocity_scale=0.5, max_joint_lead=10.0))
    assert bridge.tick(0.0).status is SafetyStatus.WAITING
    bridge.on_joint_state(np.array(FR3_HOME), 0.0)
    target = np.append(upper + 1.0, 0.0)  # beyond every upper limit
    outs = _drive(bridge, target, 400)
    q = np.array([FR3_HOME] + [o.joints.positions for o in outs])
    assert np.all(np.abs(np.diff(q, axis=0)) <= velocity * 0.5 / 100.0 + 1e-12)
    assert q[-1] == pytest.approx(upper - 0.05)
    assert outs[-1].joints.names == limits.names
    with pytest.raises(ValueError, match='joint_position command needs 8 values'):
        bridge.on_command(np.zeros(7), 5.0)
    bridge.on_command(np.append(np.full(7, math.nan), 0.0), 5.0)
    assert bridge.tick(5.0).status is SafetyStatus.HOLD_REJECTED


def test_config_validation():
    with pytest.raises(ValueError, match="kind must be 'ee_delta' or 'joint_position'"):
        SafetyConfig(kind='twist')
    with pytest.raises(ValueError, match='workspace_min .* must be below workspace_max'):
        SafetyConfig(workspace_min=(0.8, 0, 0), workspace_max=(0.5, 1, 1))
    with pytest.raises(ValueError, match="Unknown robot type 'fr4'. .* Did you mean 'fr3'"):
        SafetyConfig(robot_type='fr4')
    with pytest.raises(ValueError, match='max_translation_step must be a finite number > 0'):
        SafetyConfig(max_translation_step=math.inf)
