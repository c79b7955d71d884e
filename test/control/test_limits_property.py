"""Property tests: whatever the chunks do, the command stream the bridge sends obeys the robot's limits.

Checked by finite differences of the emitted targets (velocity, acceleration, jerk per tick), from rest, over
random and adversarial streams: jumps, chunks far outside the joint limits or the workspace, a robot that lags or is
blocked (the lead clamp), gaps (smoother hold, watchdog, lost policy), resumed streams, e-stops and non-finite
chunks. The limiter alone is checked on thousands of vectorised streams; smoother + bridge on 40 end-to-end
streams per mode by default (1-2 s each); MAPS_VLA_PROPERTY_STREAMS=3000 runs thousands.
"""

import math
import os

import numpy as np
import pytest

from maps_vla.control.chunk import ActionChunk
from maps_vla.control.franka_limits import FR3_HOME, cartesian_limits, joint_limits
from maps_vla.control.limiter import JerkLimiter
from maps_vla.control.rotations import quat_multiply, quat_to_rotvec
from maps_vla.control.safety import SafetyBridge, SafetyConfig, SafetyStatus
from maps_vla.control.smoothing import ChunkSmoother, HoldMode, Interpolation, SmootherConfig, SmoothingMethod

HZ = 100.0
DT = 1.0 / HZ
TOL = 1e-6  # relative slack for the round-off of third differences
STREAMS = int(os.environ.get('MAPS_VLA_PROPERTY_STREAMS', '40'))  # end-to-end streams per mode


def _differences(y: np.ndarray, dt: float, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Velocity, acceleration and jerk by finite differences of y (T, n), the ticks after a rest at `start`."""
    y = np.concatenate([np.repeat(np.asarray(start, dtype=np.float64).reshape(1, -1), 3, axis=0), y])
    v = np.diff(y, axis=0) / dt
    a = np.diff(v, axis=0) / dt
    return v, a, np.diff(a, axis=0) / dt


def _assert_within(name: str, values: np.ndarray, limit: np.ndarray) -> None:
    ratio = np.max(np.abs(values) / limit)
    assert ratio <= 1.0 + TOL, f'{name} reaches {ratio:.6f} x its limit'


def test_limiter_obeys_its_limits_on_thousands_of_adversarial_streams():
    rng = np.random.default_rng(1)
    n, ticks = 4000, 250
    vmax, amax, jmax = rng.uniform(0.05, 3.0, n), rng.uniform(0.2, 20.0, n), rng.uniform(5.0, 5000.0, n)
    limiter = JerkLimiter(vmax, amax, jmax, DT)
    y, ref = np.zeros(n), np.zeros(n)
    out = []
    for _ in range(ticks):
        event = rng.integers(0, 6, n)
        ref = np.where(event == 0, ref + rng.normal(0.0, 2.0, n), ref)  # a jump
        ref = np.where(event == 1, -ref, ref)  # a reversal
        ref = np.where(event == 2, ref + rng.normal(0.0, 0.02, n), ref)  # a small step
        ref_velocity = np.where(rng.random(n) < 0.2, rng.normal(0.0, 50.0, n), 0.0)  # wild feed-forward
        if rng.random() < 0.1:
            v = limiter.stop(DT)  # a hold, then the stream resumes
        else:
            v = limiter.velocity_towards(ref - y, ref_velocity, DT)
        y = y + v * DT
        out.append(y)
    v, a, j = _differences(np.array(out), DT, np.zeros(n))
    _assert_within('velocity', v, vmax)
    _assert_within('acceleration', a, amax)
    _assert_within('jerk', j, jmax)
    with pytest.raises(ValueError, match='finite inputs'):
        limiter.velocity_towards(np.full(n, math.nan), np.zeros(n), DT)
    assert np.all(np.isfinite(limiter.v)) and np.all(np.isfinite(limiter.a))


def _angular_velocity(q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    return quat_to_rotvec(quat_multiply(q1, np.array([-q0[0], -q0[1], -q0[2], q0[3]]))) / DT


def _random_smoother(rng: np.random.Generator, dim: int, gripper: int | None, keep: bool) -> ChunkSmoother:
    limited = rng.random() < 0.5
    cfg = SmootherConfig(
        method=rng.choice(list(SmoothingMethod)), interpolation=rng.choice(list(Interpolation)), control_hz=HZ,
        hold_after=float(rng.uniform(0.1, 0.6)), hold_mode=HoldMode.KEEP if keep else HoldMode.ZERO,
        max_velocity=(float(rng.uniform(0.05, 3.0)),) if limited else (),
        max_acceleration=(float(rng.uniform(0.5, 30.0)),) if limited else (),
        max_jerk=(float(rng.uniform(10.0, 3000.0)),) if limited else (), gripper_index=gripper)
    return ChunkSmoother(cfg)


def _chunk_actions(rng: np.random.Generator, kind: str, base: np.ndarray, k: int) -> np.ndarray:
    """Random and adversarial action chunks around `base` (joint positions) or of deltas."""
    scale = {'joint': 0.3, 'ee': 0.01}[kind]
    style = rng.integers(0, 5)
    if style == 0:  # smooth
        actions = base + np.cumsum(rng.normal(0.0, scale / 5, (k, base.size)), axis=0)
    elif style == 1:  # a jump far away (beyond the joint limits / workspace)
        actions = np.repeat(base[None] + rng.normal(0.0, 30 * scale, base.size), k, axis=0)
    elif style == 2:  # noise every step
        actions = base + rng.normal(0.0, 5 * scale, (k, base.size))
    elif style == 3:  # huge values
        actions = np.full((k, base.size), float(rng.choice([-1e6, 1e6])))
    else:  # alternating extremes
        actions = base + scale * 10 * np.where(np.arange(k)[:, None] % 2 == 0, 1.0, -1.0)
    return actions


def _run_stream(rng: np.random.Generator, kind: str, ticks: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """One end-to-end stream; returns the emitted targets (T, 3 or 7), orientations (T, 4) and the statuses."""
    names = joint_limits('fr3').names
    joint = kind == 'joint'
    dim = 8 if joint else 7  # 7 joints or 6 deltas, plus the gripper
    gripper = 7 if joint else 6
    smoother = _random_smoother(rng, dim, gripper, keep=joint)
    bridge = SafetyBridge(SafetyConfig(kind='joint_position' if joint else 'ee_delta', control_hz=HZ,
                                       gripper_index=gripper, max_lead=float(rng.uniform(0.01, 0.2)),
                                       max_joint_lead=float(rng.uniform(0.02, 0.5)),
                                       watchdog_timeout=float(rng.uniform(0.05, 0.3)),
                                       policy_timeout=float(rng.uniform(0.2, 1.0))))
    lower, upper, _, _ = joint_limits('fr3').arrays()
    home = np.clip(np.asarray(FR3_HOME) + rng.normal(0.0, 0.3, 7), lower + 0.1, upper - 0.1)
    pose = np.array([0.5, 0.0, 0.4]) + rng.normal(0.0, 0.05, 3)
    down = np.array([1.0, 0.0, 0.0, 0.0])
    measured_lag = int(rng.integers(0, 30))  # the robot follows its target this many ticks late
    blocked = rng.random() < 0.3  # ... or not at all (contact)
    history: list[np.ndarray] = []
    targets, quats, statuses = [], [], {}
    next_chunk = 0
    gap_until = -1
    for k in range(ticks):
        now = k * DT
        # measurement: the start pose, a lagging copy of the target, or blocked
        if joint:
            q_meas = home if blocked or len(history) <= measured_lag else history[-1 - measured_lag]
            bridge.on_joint_state(q_meas, now)
        else:
            p_meas = pose if blocked or len(history) <= measured_lag else history[-1 - measured_lag]
            bridge.on_measured_pose(p_meas, down, now)
        if k >= next_chunk and k >= gap_until:
            base = (history[-1] if history else home) if joint else np.zeros(6)
            k_steps = int(rng.integers(1, 12))
            arm = _chunk_actions(rng, kind, base, k_steps)
            actions = np.column_stack([arm, rng.integers(0, 2, k_steps).astype(float)])
            if rng.random() < 0.05:
                actions[rng.integers(0, k_steps), rng.integers(0, dim)] = rng.choice([math.nan, math.inf])
            stamp = now - float(rng.uniform(0.0, 0.3))  # observation time: in the past
            try:
                chunk = ActionChunk(stamp, actions, 0.1, ())
            except ValueError:
                chunk = None  # a non-finite chunk never gets further
            if chunk is not None:
                smoother.on_chunk(chunk)
                bridge.on_chunk(now)
            next_chunk = k + int(rng.integers(3, 25))
            if rng.random() < 0.1:
                gap_until = k + int(rng.integers(20, 150))  # the policy stalls or dies for a while
        out = smoother.tick(now)
        if out is not None and rng.random() > 0.05:  # a few commands are lost on the way
            assert np.all(np.isfinite(out.command))
            bridge.on_command(out.command, now)
        if rng.random() < 0.01:
            bridge.engage_estop('test')
        elif bridge.estopped and rng.random() < 0.05:
            bridge.release_estop()
        safe = bridge.tick(now)
        statuses[safe.status] = statuses.get(safe.status, 0) + 1
        if joint:
            assert safe.joints is not None and safe.joints.names == names
            targets.append(safe.joints.positions)
        else:
            targets.append(safe.pose.position)
            quats.append(safe.pose.quaternion)
        history.append(targets[-1])
    return np.array(targets), np.array(quats), statuses, home if joint else pose


@pytest.mark.parametrize('kind', ['joint', 'ee'])
def test_bridge_stream_obeys_the_robot_limits_on_random_and_adversarial_chunk_streams(kind):
    rng = np.random.default_rng(7 if kind == 'joint' else 8)
    cfg = SafetyConfig()
    seen: dict = {}
    limits, cart = joint_limits('fr3'), cartesian_limits('fr3')
    lower, upper, velocity, acceleration = limits.arrays()
    for _ in range(STREAMS):
        targets, quats, statuses, start = _run_stream(rng, kind, ticks=100)
        for status, count in statuses.items():
            seen[status] = seen.get(status, 0) + count
        assert np.all(np.isfinite(targets))
        v, a, j = _differences(targets, DT, start)
        if kind == 'joint':
            _assert_within('joint velocity', v, velocity * cfg.joint_velocity_scale)
            _assert_within('joint acceleration', a, acceleration * cfg.acceleration_scale)
            _assert_within('joint jerk', j, np.asarray(limits.jerk) * cfg.jerk_scale)
            margin = cfg.joint_margin  # the target brakes before the limits less the margin, never past them
            assert np.all(targets >= lower + margin - 1e-9) and np.all(targets <= upper - margin + 1e-9)
        else:
            axes = math.sqrt(3.0)
            _assert_within('translation velocity', v, min(cfg.max_translation_step * HZ, cart.translation_velocity)
                           / axes)
            _assert_within('translation acceleration', a, cart.translation_acceleration * cfg.acceleration_scale / axes)
            _assert_within('translation jerk', j, cart.translation_jerk * cfg.jerk_scale / axes)
            assert np.linalg.norm(v, axis=1).max() <= cart.translation_velocity
            assert np.all(targets >= cfg.workspace_min) and np.all(targets <= cfg.workspace_max)
            assert np.linalg.norm(a, axis=1).max() <= cart.translation_acceleration
            assert np.linalg.norm(j, axis=1).max() <= cart.translation_jerk
            # rotation: the angular velocity between ticks, then its differences
            w = np.array([_angular_velocity(q0, q1) for q0, q1 in zip(quats[:-1], quats[1:])])
            w = np.concatenate([np.zeros((2, 3)), _angular_velocity(np.array([1.0, 0.0, 0.0, 0.0]), quats[0])[None],
                                w])
            alpha = np.diff(w, axis=0) / DT
            _assert_within('rotation velocity', w, cart.rotation_velocity / axes)
            _assert_within('rotation acceleration', alpha, cart.rotation_acceleration * cfg.acceleration_scale / axes)
            _assert_within('rotation jerk', np.diff(alpha, axis=0) / DT, cart.rotation_jerk * cfg.jerk_scale / axes)
    # the streams did exercise every kind of hold
    assert {SafetyStatus.ACTIVE, SafetyStatus.HOLD_WATCHDOG, SafetyStatus.POLICY_LOST, SafetyStatus.ESTOP} <= set(seen)
