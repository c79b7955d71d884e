"""Differential IK and EE delta control reach reachable targets; joint limits hold."""

import numpy as np
import pytest

from maps_vla.sim import EnvConfig, make_env
from maps_vla.sim import kinematics as K

_HOME = np.array(K.HOME_QPOS[:7])


def _random_reachable_poses(n, seed):
    """TCP poses of random joint configurations around the ready pose (so they are reachable)."""
    rng = np.random.default_rng(seed)
    poses = []
    while len(poses) < n:
        q = np.clip(_HOME + rng.uniform(-0.6, 0.6, 7), np.array(K.JOINT_LOWER) + 0.1, np.array(K.JOINT_UPPER) - 0.1)
        pose = K.forward_kinematics(q)
        if pose[2, 3] > 0.08:  # above the table
            poses.append(pose)
    return poses


def _rot_error_deg(a, b):
    return np.degrees(np.linalg.norm(K.matrix_to_rotvec(a @ b.T)))


@pytest.fixture(scope='module')
def env():
    env = make_env(EnvConfig(render=False, init_joint_noise=0.0, episode_seconds=1000))
    yield env
    env.close()


def test_ik_solver_converges_to_random_targets(env):
    ik = env.controller.ik
    for pose in _random_reachable_poses(20, seed=0):
        q = _HOME.copy()
        for _ in range(15):
            q = ik.solve(q, pose[:3, 3], pose[:3, :3])
        pos, rot = ik.forward(q)
        assert np.linalg.norm(pos - pose[:3, 3]) < 1e-4
        assert _rot_error_deg(rot, pose[:3, :3]) < 0.05
        assert np.all(q >= ik.lower - 1e-9) and np.all(q <= ik.upper + 1e-9)


def test_ee_delta_actions_reach_random_targets(env):
    """Closed loop through env.step, as a policy drives it: within 5 mm and 2 degrees of each target."""
    for i, pose in enumerate(_random_reachable_poses(8, seed=1)):
        env.reset(seed=i)
        p = env.physics
        for _ in range(40):
            dpos = pose[:3, 3] - p.tcp_pos
            drot = K.matrix_to_rotvec(pose[:3, :3] @ p.tcp_rot.T)
            env.step(np.concatenate([dpos, drot, [0.0]]))
        assert np.linalg.norm(p.tcp_pos - pose[:3, 3]) < 0.005
        assert _rot_error_deg(p.tcp_rot, pose[:3, :3]) < 2.0


def test_ee_deltas_are_clipped_per_step(env):
    env.reset(seed=0)
    start = env.physics.tcp_pos
    env.step(np.array([1.0, 0, 0, 0, 0, 0, 0]))
    for _ in range(5):
        env.step(np.zeros(7))
    moved = env.physics.tcp_pos - start
    assert 0.045 < moved[0] < 0.055 and np.all(np.abs(moved[1:]) < 0.003)


def test_unreachable_target_respects_joint_limits(env):
    env.reset(seed=0)
    for _ in range(60):  # push far outside the workspace
        env.step(np.array([0.05, 0.0, 0.05, 0.0, 0.0, 0.0, 0.0]))
    q = env.physics.arm_qpos
    lo, hi = env.physics.arm_range.T
    assert np.all(q >= lo - 1e-3) and np.all(q <= hi + 1e-3)
    assert np.all(np.isfinite(q)) and env.physics.warnings() == {}


def test_gripper_opens_and_closes(env):
    env.reset(seed=0)
    for _ in range(8):
        env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    assert env.physics.gripper_opening < 0.002
    for _ in range(8):
        env.step(np.zeros(7))
    assert env.physics.gripper_opening > 0.078
