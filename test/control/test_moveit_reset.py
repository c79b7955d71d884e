"""control.moveit_reset: the MoveGroup joint goal against moveit_msgs' definitions (Humble and Jazzy) and the reset
sequence with fake steps. Nothing here talks to MoveIt: the message types come from the .msg texts via rosbags."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from maps_vla.control.franka_limits import FR3_HOME
from maps_vla.control.moveit_reset import (MOVEIT_ERROR_CODES, JointGoal, MoveItConfig, ResetSequence, ResetStep,
                                           StepResult, error_name, joint_goal, joint_goal_of, move_group_goal)

GOAL = 'moveit_msgs/action/MoveGroup_Goal'


def _mocks():
    name = 'maps_vla_test_moveit_msgs'
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / 'mocks' / 'moveit_msgs.py'
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope='module', params=['humble', 'jazzy'])
def store(request):
    return _mocks().typestore(request.param)


def test_move_group_goal_serializes_with_the_real_definitions(store):
    """Every field set exists with its type on both distros (CDR round trip through rosbags)."""
    cfg = MoveItConfig(planner_id='RRTConnectkConfigDefault', velocity_scaling=0.1)
    start = np.array(FR3_HOME) + 0.1
    msg = move_group_goal(_mocks().Defaulting(store), cfg, joint_goal(cfg, start), stamp=12.25)
    back = store.deserialize_cdr(store.serialize_cdr(msg, GOAL), GOAL)
    request = back.request
    assert request.group_name == 'fr3_arm' and request.planner_id == 'RRTConnectkConfigDefault'
    assert request.max_velocity_scaling_factor == 0.1 and request.num_planning_attempts == 1
    assert request.start_state.is_diff and back.planning_options.planning_scene_diff.is_diff
    assert not back.planning_options.plan_only
    assert request.workspace_parameters.header.frame_id == 'fr3_link0'
    assert request.workspace_parameters.header.stamp.sec == 12
    joints = request.goal_constraints[0].joint_constraints
    assert [j.joint_name for j in joints] == [f'fr3_joint{i}' for i in range(1, 8)]
    np.testing.assert_allclose([j.position for j in joints], start)
    assert all(j.tolerance_above == j.tolerance_below == cfg.tolerance and j.weight == 1.0 for j in joints)
    assert joint_goal_of(request) == joint_goal(cfg, start)  # the sim bridge's reading of the same goal


def test_error_code_names_match_the_definition(store):
    consts = {value: name for name, _, value in store.fielddefs['moveit_msgs/msg/MoveItErrorCodes'][0]}
    assert {code: consts[code] for code in MOVEIT_ERROR_CODES} == MOVEIT_ERROR_CODES
    assert error_name(-1) == 'PLANNING_FAILED' and error_name(12345) == 'code 12345'


def test_start_poses_outside_the_joint_limits_are_refused():
    cfg = MoveItConfig()
    bad = list(FR3_HOME)
    bad[3] = -0.1  # fr3_joint4 upper limit is -0.1518
    with pytest.raises(ValueError, match='fr3_joint4=-0.100 outside'):
        joint_goal(cfg, bad)
    with pytest.raises(ValueError, match='7 finite joint positions'):
        joint_goal(cfg, [0.0] * 6)
    assert joint_goal(cfg) == JointGoal(tuple(f'fr3_joint{i}' for i in range(1, 8)), tuple(FR3_HOME))


class Calls:
    """Fake steps that log their calls; `fail` names the step that fails."""

    def __init__(self, fail: str = '') -> None:
        self.log: list[str] = []
        self.fail = fail

    def step(self, name: str, result=None):
        def run(*args):
            self.log.append(name if not args else f'{name}{args}')
            if name == self.fail:
                raise RuntimeError(f'{name} broke')
            return result
        return run


def _sequence(calls: Calls, cfg: MoveItConfig, sim: bool = False) -> ResetSequence:
    return ResetSequence(cfg, pause=calls.step('pause'), resume=calls.step('resume'),
                         reset_policy=calls.step('reset_policy'),
                         move=lambda goal: calls.step('move', StepResult(True, 'SUCCESS'))(goal.positions[3]),
                         switch=None if sim else calls.step('switch'), bridge=calls.step('bridge'),
                         scene=calls.step('scene', StepResult(True, 'pick up the cube')) if sim else None)


def test_robot_reset_pauses_moves_and_switches_back():
    calls = Calls()
    report = _sequence(calls, MoveItConfig()).run()
    assert report.ok and report.message() == 'reset done'
    assert calls.log == ['pause', 'bridge(True,)',
                         "switch('fr3_arm_controller', 'cartesian_impedance_example_controller')",
                         f'move({FR3_HOME[3]},)',
                         "switch('cartesian_impedance_example_controller', 'fr3_arm_controller')",
                         'bridge(False,)', 'reset_policy', 'resume']


def test_sim_reset_resets_the_scene_without_controller_switch():
    calls = Calls()
    cfg = MoveItConfig(moveit_controller='', policy_controller='')
    report = _sequence(calls, cfg, sim=True).run(seed=7, resume=False)
    # the bridge stops publishing before the scene resets: its old target would pull the new scene's arm
    assert report.ok and calls.log == ['pause', 'bridge(True,)', 'scene(7,)', f'move({FR3_HOME[3]},)',
                                       'bridge(False,)', 'reset_policy']
    assert [s for s, _ in report.steps] == [ResetStep.PAUSE, ResetStep.SUSPEND_BRIDGE, ResetStep.SCENE,
                                            ResetStep.MOVE, ResetStep.RESUME_BRIDGE, ResetStep.RESET_POLICY]


def test_a_failed_move_leaves_the_policy_paused():
    calls = Calls(fail='move')
    report = _sequence(calls, MoveItConfig()).run()
    assert not report.ok and report.failed[0] is ResetStep.MOVE
    assert report.message() == "reset failed at 'move to the start pose': RuntimeError: move broke"
    assert 'resume' not in calls.log and not any(c.startswith("switch('cartesian") for c in calls.log)
    assert 'bridge(False,)' not in calls.log  # the old target is not sent again


def test_an_invalid_start_pose_fails_before_anything_moves():
    calls = Calls()
    report = _sequence(calls, MoveItConfig()).run([0.0] * 7)  # joint 4 = 0 is above its upper limit
    assert not report.ok and calls.log == [] and 'outside the joint limits' in report.message()


@pytest.mark.parametrize('kwargs, match', [
    (dict(start_joints=(0.0,) * 6), 'needs 7 values'),
    (dict(velocity_scaling=1.5), 'must be <= 1'),
    (dict(moveit_controller=''), 'must both be set'),
    (dict(group=''), 'planning group'),
    (dict(robot_type='ur5'), 'robot type'),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MoveItConfig(**kwargs)
