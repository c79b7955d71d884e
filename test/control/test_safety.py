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


def _settle(bridge, t0, ticks=100, hz=100.0):
    """Keep the last command fresh-free ticking (ACTIVE within the watchdog? no: tick only) and return the last."""
    out = None
    for k in range(ticks):
        out = bridge.tick(t0 + k / hz)
    return out


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
    bridge = _bridge(control_hz=100.0, action_hz=10.0, max_lead=1.0, watchdog_timeout=2.0)
    outs = _drive(bridge, _cmd(dx=0.01, rot=(0.0, 0.0, 0.02)), 10)  # one action step = 10 ticks
    assert outs[-1].status is SafetyStatus.ACTIVE
    assert outs[-1].goal == pytest.approx(START + [0.01, 0, 0])
    # the emitted target follows the goal under the acceleration and jerk limits, never ahead of it
    xs = np.array([o.pose.position[0] for o in outs]) - START[0]
    goals = np.array([o.goal[0] for o in outs]) - START[0]
    assert np.all(xs > 0) and np.all(xs < goals)
    for k in range(10, 150):  # the last command's step runs to its end (0.019), then the target settles there
        out = bridge.tick(k / 100)
        assert out.pose.position[0] <= out.goal[0] + 1e-12  # no overshoot
    assert out.status is SafetyStatus.ACTIVE and out.goal[0] - START[0] == pytest.approx(0.019)
    assert out.pose.position == pytest.approx(out.goal, abs=1e-4)
    assert quat_angle(out.pose.quaternion, DOWN) == pytest.approx(0.038, abs=1e-3)


def test_workspace_clamp():
    bridge = _bridge(workspace_max=(0.75, 0.45, 0.42), max_lead=1.0)
    outs = _drive(bridge, _cmd(dz=0.01), 200)
    z = np.array([o.pose.position[2] for o in outs])
    assert z.max() == pytest.approx(0.42) and np.all(z <= 0.42 + 1e-12)  # braked before the bound, no overshoot


def test_per_tick_step_limits_for_huge_commands():
    bridge = _bridge(max_translation_step=0.002, max_rotation_step=0.01, max_lead=10.0, max_lead_rotation=3.0,
                     workspace_min=(-5, -5, -5), workspace_max=(5, 5, 5))
    outs = _drive(bridge, _cmd(dx=5.0, dy=-5.0, rot=(3.0, 0.0, 0.0)), 100)
    goals = np.array([START] + [o.goal for o in outs])
    steps = np.linalg.norm(np.diff(goals, axis=0), axis=1)
    assert steps.max() == pytest.approx(0.002) and np.all(steps <= 0.002 + 1e-12)  # the goal: norm per tick
    pos = np.array([START] + [o.pose.position for o in outs])
    axis_steps = np.abs(np.diff(pos, axis=0))  # the emitted target: per axis, at most step / sqrt(3)
    per_axis = 0.002 / math.sqrt(3)
    assert axis_steps.max() == pytest.approx(per_axis) and np.all(axis_steps <= per_axis + 1e-12)
    quats = [DOWN] + [o.pose.quaternion for o in outs]
    turns = [quat_angle(a, b) for a, b in zip(quats, quats[1:])]
    assert max(turns) == pytest.approx(0.01 / math.sqrt(3), rel=1e-6) and max(turns) <= 0.01 / math.sqrt(3) + 1e-9


def test_target_stays_near_the_measured_pose():
    bridge = _bridge(max_lead=0.03)
    outs = _drive(bridge, _cmd(dx=0.05), 100)  # the robot does not move (blocked)
    assert np.linalg.norm(outs[-1].goal - START) == pytest.approx(0.03)
    assert np.linalg.norm(outs[-1].pose.position - START) == pytest.approx(0.03, abs=1e-4)  # the target settled there


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_non_finite_commands_are_rejected_and_held(bad):
    bridge = _bridge(max_lead=1.0)
    _drive(bridge, _cmd(dx=0.01), 5)
    bridge.tick(0.05)
    bridge.on_command(_cmd(dx=bad), 0.06)
    out = bridge.tick(0.06)
    assert out.status is SafetyStatus.HOLD_REJECTED and 'non-finite command' in out.reason
    assert np.all(np.isfinite(out.pose.position)) and np.all(np.isfinite(out.pose.quaternion))
    assert bridge.rejections == {'non-finite command': 1}
    bridge.on_measured_pose([math.nan, 0, 0], DOWN, 0.07)  # a broken measurement is ignored too
    assert bridge.rejections['non-finite measured pose'] == 1
    bridge.on_command(_cmd(dx=0.01), 0.08)
    assert bridge.tick(0.08).status is SafetyStatus.ACTIVE


def test_watchdog_holds_when_commands_stop():
    bridge = _bridge(watchdog_timeout=0.1, max_lead=1.0)
    _drive(bridge, _cmd(dx=0.01), 10)
    bridge.tick(0.1)
    out = bridge.tick(0.2)
    assert out.status is SafetyStatus.HOLD_WATCHDOG and out.reason.startswith('no command for 0.11')
    held = [bridge.tick(0.2 + k / 100) for k in range(1, 60)]
    assert np.array_equal(held[-1].pose.position, held[-30].pose.position)  # stopped, and stays
    assert np.array_equal(held[-1].goal, held[-1].pose.position)  # the goal is frozen where the target stopped


def test_estop_latches_until_released():
    bridge = _bridge(max_lead=1.0)
    _drive(bridge, _cmd(dx=0.01), 3)
    bridge.engage_estop('operator')
    bridge.tick(0.03)
    outs = _drive(bridge, _cmd(dx=0.01, grip=1.0), 50, t0=0.04)
    assert {o.status for o in outs} == {SafetyStatus.ESTOP} and outs[-1].reason == 'operator'
    held = outs[-1].pose.position
    assert np.array_equal(outs[-20].pose.position, held) and all(o.gripper is None for o in outs)
    bridge.release_estop()
    outs = _drive(bridge, _cmd(dx=0.01), 3, t0=0.6)
    assert outs[-1].status is SafetyStatus.ACTIVE and outs[-1].pose.position[0] > held[0]


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
    outs = _drive(bridge, target, 600)
    q = np.array([FR3_HOME] + [o.joints.positions for o in outs])
    assert np.all(np.abs(np.diff(q, axis=0)) <= velocity * 0.5 / 100.0 + 1e-12)
    assert q[-1] == pytest.approx(upper - 0.05, abs=1e-3) and np.all(q <= upper - 0.05 + 1e-12)
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


# ---------------------------------------------------------------------------------- hold for one action step
def _stream(bridge, command, publish_hz, seconds=1.0, control_hz=100.0):
    """Tick at control_hz for `seconds`, sending `command` every control_hz / publish_hz ticks; x per tick."""
    every = round(control_hz / publish_hz)
    xs = []
    for k in range(round(seconds * control_hz)):
        t = k / control_hz
        if k % every == 0:
            bridge.on_command(command, t)
        xs.append(bridge.tick(t).goal[0])
    return np.array(xs) - START[0]


def test_a_fresh_command_every_tick_moves_exactly_one_share_per_tick():
    # The smoother path (one command per 100 Hz tick) keeps its per-tick motion: share = action_hz / control_hz.
    bridge = _bridge(control_hz=100.0, action_hz=10.0, max_lead=1.0)
    x = _stream(bridge, _cmd(dx=0.005), 100.0)
    assert x == pytest.approx(0.005 * 0.1 * np.arange(1, 101), abs=1e-12)


@pytest.mark.parametrize('publish_hz', [100.0, 50.0, 20.0, 10.0])
def test_distance_per_second_does_not_depend_on_the_command_rate(publish_hz):
    # delta 5 mm per action step at 10 Hz = 5 cm/s, whether the commands come at 100, 50, 20 or 10 Hz.
    bridge = _bridge(control_hz=100.0, action_hz=10.0, max_lead=1.0)
    x = _stream(bridge, _cmd(dx=0.005), publish_hz)
    assert x[-1] == pytest.approx(0.05, abs=0.005 * 0.1 + 1e-12)  # within one tick's share
    assert np.all(np.diff(x) >= 0) and np.diff(x).max() == pytest.approx(0.0005)  # never faster than one share


def test_a_command_holds_for_one_action_step_then_the_target_stops():
    bridge = _bridge(control_hz=100.0, action_hz=10.0, max_lead=1.0, watchdog_timeout=0.5)
    x = _stream(bridge, _cmd(dx=0.005), 5.0, seconds=0.4)  # 5 Hz: commands at 0 and 0.2 s
    assert x[9] == pytest.approx(0.005) and x[19] == pytest.approx(0.005)  # one whole step, then still
    assert x[29] == pytest.approx(0.01) and x[39] == pytest.approx(0.01)
    out = bridge.tick(0.4)
    assert out.status is SafetyStatus.ACTIVE and out.goal[0] - START[0] == pytest.approx(0.01)


def test_non_integer_tick_ratio_applies_exactly_one_step():
    bridge = _bridge(control_hz=100.0, action_hz=15.0, max_lead=1.0)  # 6.67 ticks per action step
    bridge.on_command(_cmd(dy=0.006), 0.0)
    y = [bridge.tick(k / 100).goal[1] for k in range(12)]
    assert y[5] == pytest.approx(0.006 * 0.9) and y[6] == pytest.approx(0.006) and y[11] == pytest.approx(0.006)


def test_a_newer_command_replaces_the_one_in_force():
    bridge = _bridge(control_hz=100.0, action_hz=10.0, max_lead=1.0)
    bridge.on_command(_cmd(dx=0.01), 0.0)
    for k in range(3):
        bridge.tick(k / 100)
    bridge.on_command(_cmd(dx=-0.01), 0.03)  # the rest of the first step is dropped; the new one runs in full
    outs = [bridge.tick(k / 100) for k in range(3, 20)]
    assert outs[-1].goal[0] - START[0] == pytest.approx(0.003 - 0.01)


def test_watchdog_holds_even_within_an_action_step():
    bridge = _bridge(control_hz=100.0, action_hz=1.0, watchdog_timeout=0.05, max_lead=1.0)  # a 1 s step
    bridge.on_command(_cmd(dx=0.1), 0.0)
    outs = [bridge.tick(k / 100) for k in range(40)]
    x = [o.goal[0] for o in outs]
    assert x[5] > x[4] and outs[6].status is SafetyStatus.HOLD_WATCHDOG  # moving until the watchdog trips
    assert x[39] == x[30] == outs[39].pose.position[0]  # then the target stops and the goal freezes there
    assert x[39] < x[5]  # the rest of the step is not carried out after the hold


def test_joint_target_stays_in_force_until_reached():
    _, upper, velocity, _ = joint_limits('fr3').arrays()
    bridge = SafetyBridge(SafetyConfig(kind='joint_position', gripper_index=None, max_joint_lead=10.0,
                                       watchdog_timeout=1.0))
    bridge.on_joint_state(np.array(FR3_HOME), 0.0)
    goal = np.array(FR3_HOME) + 0.05
    bridge.on_command(goal, 0.0)  # one command, then none: the target keeps moving towards it
    q = [bridge.tick(k / 100).joints.positions for k in range(100)]
    assert q[-1] == pytest.approx(goal, abs=1e-3)
    assert np.all(np.abs(np.diff(q, axis=0)) <= velocity * 0.5 / 100.0 + 1e-12)
