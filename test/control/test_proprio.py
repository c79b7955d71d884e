"""control.proprio: observation.state from joint states and the EE pose, the sim's layout included."""

from __future__ import annotations

import numpy as np
import pytest

from maps_vla.control.proprio import ProprioAssembler, StateConfig, StateKind, TOOL_DOWN_QUAT, tool_rotvec
from maps_vla.control.rotations import quat_from_rotvec

FINGERS = ('fr3_finger_joint1', 'fr3_finger_joint2')


def test_tool_down_quaternion_is_the_sims_tool_down_matrix():
    kin = pytest.importorskip('maps_vla.sim.kinematics')
    x, y, z, w = TOOL_DOWN_QUAT
    rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    np.testing.assert_allclose(rot, kin.TOOL_DOWN, atol=1e-12)


@pytest.mark.parametrize('rotvec', [(0.1, -0.2, 0.3), (0.0, 0.0, 0.0), (1.2, 0.4, -2.0)])
def test_tool_rotvec_matches_the_sims_observation_state(rotvec):
    kin = pytest.importorskip('maps_vla.sim.kinematics')
    rot = kin.TOOL_DOWN @ kin.rotvec_to_matrix(np.array([0.3, 0.2, -0.1])) @ kin.rotvec_to_matrix(np.array(rotvec))
    sim = kin.matrix_to_rotvec(kin.TOOL_DOWN.T @ rot)  # Physics.tcp_rotvec
    q = quat_from_rotvec(kin.matrix_to_rotvec(rot))
    np.testing.assert_allclose(tool_rotvec(q), sim, atol=1e-9)
    np.testing.assert_allclose(tool_rotvec(-q), sim, atol=1e-9)  # either quaternion sign


def test_ee_pose_state_waits_for_every_part_and_takes_the_oldest_stamp():
    p = ProprioAssembler()
    assert p.cfg.names == ('tcp_x', 'tcp_y', 'tcp_z', 'tcp_rx', 'tcp_ry', 'tcp_rz', *FINGERS) and p.needs_pose
    assert p.state() is None and p.missing() == ['ee_pose', *FINGERS]
    assert p.on_joint_state(['fr3_joint1', *FINGERS], [0.5, 0.01, 0.02], 10.0) == 2
    assert p.state() is None and p.missing() == ['ee_pose']
    p.on_pose([0.4, 0.1, 0.3], TOOL_DOWN_QUAT, 10.5)
    state, stamp = p.state()
    assert state.dtype == np.float32 and stamp == 10.0
    np.testing.assert_allclose(state, [0.4, 0.1, 0.3, 0, 0, 0, 0.01, 0.02], atol=1e-7)
    p.on_joint_state(list(FINGERS), [0.03, 0.03], 11.0)  # e.g. franka_gripper/joint_states
    assert p.state()[1] == 10.5


def test_joint_positions_state_orders_by_config_and_ignores_non_finite():
    cfg = StateConfig(kind=StateKind.JOINT_POSITIONS, joints=('b', 'a'), finger_joints=())
    p = ProprioAssembler(cfg)
    assert cfg.names == ('b', 'a') and not p.needs_pose
    assert p.on_joint_state(['a', 'b', 'c'], [1.0, np.nan, 3.0], 1.0) == 1
    assert p.state() is None and p.missing() == ['b']
    p.on_joint_state(['b'], [2.0], 2.0)
    state, stamp = p.state()
    np.testing.assert_array_equal(state, [2.0, 1.0])
    assert stamp == 1.0


@pytest.mark.parametrize('kwargs, match', [
    (dict(kind=StateKind.JOINT_POSITIONS, joints=()), 'must name at least one joint'),
    (dict(joints=('a', 'a')), 'distinct non-empty names'),
])
def test_state_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StateConfig(**kwargs)


def test_pose_validation():
    with pytest.raises(ValueError, match='3 finite values'):
        ProprioAssembler().on_pose([0.0, np.inf, 0.0], TOOL_DOWN_QUAT, 0.0)
    with pytest.raises(ValueError, match='Cannot normalize'):
        ProprioAssembler().on_pose([0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], 0.0)
