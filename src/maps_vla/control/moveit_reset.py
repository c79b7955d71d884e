"""Episode resets through MoveIt, as plain logic: the MoveGroup joint goal and the pause -> move -> switch sequence.

Before each policy episode the arm goes to a start pose (home, or the first frame of a demonstration) along a
collision-free path planned and executed by MoveIt's `move_group` (action `move_action`, moveit_msgs/action/MoveGroup,
the same on Humble and Jazzy). `move_group_goal` builds that goal from a `JointGoal` with message classes passed
as `types` (as in msg_conversion), setting only the fields listed in `motion_plan_fields`; every other field keeps
its default, which keeps one builder valid for Humble's and Jazzy's MotionPlanRequest (they differ in one field
this module never sets, the Cartesian speed link).

`ResetSequence` runs the steps around it with injected callables, so the same sequence serves the robot (MoveIt
+ controller_manager switch) and the MuJoCo bridge (scene reset + its MoveGroup server, no controller switch):
pause the policy -> suspend the bridge (it stops publishing targets) -> reset the scene -> activate MoveIt's
controller -> move -> re-activate the policy's controller -> resume the bridge (its target re-anchored at the
new pose, so the pre-reset target is never sent again) -> reset the policy -> resume. A failed step stops the
sequence with the policy paused (and the bridge suspended once it was).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from maps_vla.control import msg_conversion as mc
from maps_vla.control.franka_limits import FR3_HOME, joint_limits

__all__ = ['MoveItConfig', 'JointGoal', 'joint_goal', 'motion_plan_fields', 'move_group_goal', 'joint_goal_of',
           'MOVEIT_ERROR_CODES', 'error_name', 'ResetStep', 'ResetReport', 'ResetSequence', 'StepResult']

logger = logging.getLogger(__name__)

# moveit_msgs/msg/MoveItErrorCodes constants the messages here name (identical on Humble and Jazzy).
MOVEIT_ERROR_CODES = {1: 'SUCCESS', 99999: 'FAILURE', -1: 'PLANNING_FAILED', -2: 'INVALID_MOTION_PLAN',
                      -3: 'MOTION_PLAN_INVALIDATED_BY_ENVIRONMENT_CHANGE', -4: 'CONTROL_FAILED',
                      -5: 'UNABLE_TO_AQUIRE_SENSOR_DATA', -6: 'TIMED_OUT', -7: 'PREEMPTED',
                      -10: 'START_STATE_IN_COLLISION', -11: 'START_STATE_VIOLATES_PATH_CONSTRAINTS',
                      -12: 'GOAL_IN_COLLISION', -13: 'GOAL_VIOLATES_PATH_CONSTRAINTS',
                      -14: 'GOAL_CONSTRAINTS_VIOLATED', -15: 'INVALID_GROUP_NAME',
                      -16: 'INVALID_GOAL_CONSTRAINTS', -17: 'INVALID_ROBOT_STATE', -18: 'INVALID_LINK_NAME',
                      -19: 'INVALID_OBJECT_NAME', -21: 'FRAME_TRANSFORM_FAILURE', -22: 'COLLISION_CHECKING_UNAVAILABLE',
                      -23: 'ROBOT_STATE_STALE', -24: 'SENSOR_INFO_STALE', -25: 'COMMUNICATION_FAILURE',
                      -26: 'START_STATE_INVALID', -27: 'GOAL_STATE_INVALID', -28: 'UNRECOGNIZED_GOAL_TYPE',
                      -29: 'CRASH', -30: 'ABORT', -31: 'NO_IK_SOLUTION'}


def error_name(code: int) -> str:
    """'SUCCESS', 'PLANNING_FAILED', ... for a MoveItErrorCodes value ('code <n>' when unknown)."""
    return MOVEIT_ERROR_CODES.get(int(code), f'code {int(code)}')


@dataclasses.dataclass(frozen=True)
class MoveItConfig:
    """How resets are planned (MoveGroup) and which controllers take turns (controller_manager)."""

    group: str = 'fr3_arm'  # MoveIt planning group (franka_fr3_moveit_config: fr3_arm)
    robot_type: str = 'fr3'  # joint names <robot_type>_joint1..7 and their limits
    start_joints: tuple[float, ...] = FR3_HOME  # rad, the start pose when the episode gives none (franka's 'ready')
    tolerance: float = 0.01  # rad each goal joint may miss by
    planning_time: float = 5.0  # s MoveIt may plan
    planning_attempts: int = 1  # planning attempts
    velocity_scaling: float = 0.2  # fraction of the joint velocity limits
    acceleration_scaling: float = 0.2  # fraction of the joint acceleration limits
    pipeline_id: str = ''  # planning pipeline; '' = move_group's default
    planner_id: str = ''  # planner; '' = the pipeline's default
    frame_id: str = 'fr3_link0'  # frame of the planning workspace box
    workspace_min: tuple[float, float, float] = (-1.0, -1.0, -0.1)  # m, lower corner of the planning workspace
    workspace_max: tuple[float, float, float] = (1.0, 1.0, 1.5)  # m, upper corner
    joint_margin: float = 0.02  # rad a start pose must keep from each joint limit
    moveit_controller: str = 'fr3_arm_controller'  # controller MoveIt executes with; '' = no switch (sim)
    policy_controller: str = 'cartesian_impedance_example_controller'  # the policy's; '' = no switch

    def __post_init__(self) -> None:
        limits = joint_limits(self.robot_type)  # raises with the known robot types
        if len(self.start_joints) != len(limits.names):
            raise ValueError(f'MoveItConfig.start_joints needs {len(limits.names)} values, got '
                             f'{list(self.start_joints)}')
        for name in ('tolerance', 'planning_time', 'velocity_scaling', 'acceleration_scaling'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'MoveItConfig.{name} must be a finite number > 0, got {value}')
        if self.velocity_scaling > 1 or self.acceleration_scaling > 1:
            raise ValueError(f'MoveItConfig velocity_scaling and acceleration_scaling must be <= 1, got '
                             f'{self.velocity_scaling} and {self.acceleration_scaling}')
        if self.planning_attempts < 1:
            raise ValueError(f'MoveItConfig.planning_attempts must be >= 1, got {self.planning_attempts}')
        if not self.group:
            raise ValueError('MoveItConfig.group must name the MoveIt planning group (e.g. fr3_arm)')
        if len(self.workspace_min) != 3 or len(self.workspace_max) != 3 or any(
                lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ValueError(f'MoveItConfig.workspace_min {self.workspace_min} must be below workspace_max '
                             f'{self.workspace_max} on x, y and z')
        if self.joint_margin < 0:
            raise ValueError(f'MoveItConfig.joint_margin must be >= 0, got {self.joint_margin}')
        if bool(self.moveit_controller) != bool(self.policy_controller):
            raise ValueError('MoveItConfig.moveit_controller and policy_controller must both be set (robot) or both '
                             f"be '' (no controller switch), got {self.moveit_controller!r} and "
                             f'{self.policy_controller!r}')


class JointGoal(NamedTuple):
    """A start pose: joint names and positions (rad), validated against the joint limits."""

    names: tuple[str, ...]
    positions: tuple[float, ...]


def joint_goal(cfg: MoveItConfig, positions: Sequence[float] | None = None) -> JointGoal:
    """The goal for `positions` (None: cfg.start_joints), in the joint order of cfg.robot_type.

    Raises:
        ValueError: a wrong count, a non-finite value, or a joint closer than cfg.joint_margin to its limit.
    """
    limits = joint_limits(cfg.robot_type)
    q = np.asarray(cfg.start_joints if positions is None else positions, dtype=np.float64).reshape(-1)
    if q.shape != (len(limits.names),) or not np.all(np.isfinite(q)):
        raise ValueError(f'a start pose needs {len(limits.names)} finite joint positions, got {q.tolist()}')
    lower, upper, _, _ = limits.arrays()
    bad = [f'{n}={v:.3f} outside [{lo + cfg.joint_margin:.3f}, {hi - cfg.joint_margin:.3f}]'
           for n, v, lo, hi in zip(limits.names, q, lower, upper)
           if not lo + cfg.joint_margin <= v <= hi - cfg.joint_margin]
    if bad:
        raise ValueError(f'start pose outside the joint limits: {"; ".join(bad)}')
    return JointGoal(tuple(limits.names), tuple(float(v) for v in q))


def motion_plan_fields(cfg: MoveItConfig, goal: JointGoal) -> dict[str, Any]:
    """The MotionPlanRequest fields a joint-goal reset sets, as plain data (nested dicts and lists).

    start_state.is_diff = True plans from the current state, as MoveGroupInterface does; the goal is one
    Constraints with a JointConstraint per joint (weight 1, symmetric tolerance).
    """
    return {
        'workspace_parameters': {'frame_id': cfg.frame_id, 'min_corner': tuple(cfg.workspace_min),
                                 'max_corner': tuple(cfg.workspace_max)},
        'start_state': {'is_diff': True},
        'goal_constraints': [{'name': 'reset', 'joint_constraints': [
            {'joint_name': n, 'position': p, 'tolerance_above': cfg.tolerance, 'tolerance_below': cfg.tolerance,
             'weight': 1.0} for n, p in zip(goal.names, goal.positions)]}],
        'pipeline_id': cfg.pipeline_id,
        'planner_id': cfg.planner_id,
        'group_name': cfg.group,
        'num_planning_attempts': cfg.planning_attempts,
        'allowed_planning_time': cfg.planning_time,
        'max_velocity_scaling_factor': cfg.velocity_scaling,
        'max_acceleration_scaling_factor': cfg.acceleration_scaling,
    }


def _new(types: mc.MessageTypes, msgtype: str, /, **fields: Any) -> Any:
    return mc.message_class(types, msgtype)(**fields)


def _vector3(types: mc.MessageTypes, xyz: Sequence[float]) -> Any:
    return _new(types, 'geometry_msgs/msg/Vector3', x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def move_group_goal(types: mc.MessageTypes, cfg: MoveItConfig, goal: JointGoal, stamp: float = 0.0) -> Any:
    """moveit_msgs/action/MoveGroup Goal: plan and execute (plan_only false) to `goal` from the current state."""
    f = motion_plan_fields(cfg, goal)
    ws = f['workspace_parameters']
    constraints = [_new(types, 'moveit_msgs/msg/Constraints', name=c['name'], joint_constraints=[
        _new(types, 'moveit_msgs/msg/JointConstraint', **j) for j in c['joint_constraints']])
        for c in f['goal_constraints']]
    request = _new(
        types, 'moveit_msgs/msg/MotionPlanRequest',
        workspace_parameters=_new(types, 'moveit_msgs/msg/WorkspaceParameters',
                                  header=mc.make_header(types, stamp, ws['frame_id']),
                                  min_corner=_vector3(types, ws['min_corner']),
                                  max_corner=_vector3(types, ws['max_corner'])),
        start_state=_new(types, 'moveit_msgs/msg/RobotState', **f['start_state']),
        goal_constraints=constraints,
        **{k: f[k] for k in ('pipeline_id', 'planner_id', 'group_name', 'num_planning_attempts',
                             'allowed_planning_time', 'max_velocity_scaling_factor',
                             'max_acceleration_scaling_factor')})
    # Only the changes to the planning scene are sent (none), as MoveGroupInterface does.
    scene = _new(types, 'moveit_msgs/msg/PlanningScene', is_diff=True,
                 robot_state=_new(types, 'moveit_msgs/msg/RobotState', is_diff=True))
    options = _new(types, 'moveit_msgs/msg/PlanningOptions', planning_scene_diff=scene, plan_only=False,
                   look_around=False, replan=False)
    return _new(types, 'moveit_msgs/action/MoveGroup_Goal', request=request, planning_options=options)


def joint_goal_of(request: Any) -> JointGoal:
    """The joint goal of a MotionPlanRequest (any object with its field names): the first goal Constraints' joints.

    Raises:
        ValueError: no goal constraints, or a goal that is not a pure joint goal.
    """
    goals = list(request.goal_constraints)
    if not goals or not list(goals[0].joint_constraints):
        raise ValueError('the MoveGroup request has no joint goal constraints')
    first = goals[0]
    if list(first.position_constraints) or list(first.orientation_constraints):
        raise ValueError('only joint goals are supported (the request has position/orientation constraints)')
    joints = list(first.joint_constraints)
    return JointGoal(tuple(str(j.joint_name) for j in joints), tuple(float(j.position) for j in joints))


# ------------------------------------------------------------------------------------------------ sequence
class ResetStep(enum.Enum):
    """The steps of a reset, in order."""

    PAUSE = 'pause policy'
    SUSPEND_BRIDGE = 'suspend the bridge'
    SCENE = 'reset scene'
    TO_MOVEIT = "activate MoveIt's controller"
    MOVE = 'move to the start pose'
    TO_POLICY = "activate the policy's controller"
    RESUME_BRIDGE = 'resume the bridge'
    RESET_POLICY = 'reset policy'
    RESUME = 'resume policy'


class StepResult(NamedTuple):
    """What one step returned: success and a message (e.g. the scene's instruction, MoveIt's error name)."""

    ok: bool
    message: str = ''


@dataclasses.dataclass
class ResetReport:
    """The steps a reset ran and how each ended; `ok` when all succeeded."""

    steps: list[tuple[ResetStep, StepResult]] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(r.ok for _, r in self.steps)

    @property
    def failed(self) -> tuple[ResetStep, StepResult] | None:
        return next(((s, r) for s, r in self.steps if not r.ok), None)

    def message(self) -> str:
        """One line: 'reset done' or the failed step and why."""
        failed = self.failed
        return 'reset done' if failed is None else f'reset failed at {failed[0].value!r}: {failed[1].message}'


Step = Callable[[], StepResult | bool | None]


class ResetSequence:
    """pause -> suspend bridge -> scene -> switch -> move -> switch back -> resume bridge -> policy reset -> resume.

    Each callable returns a StepResult, a bool, or None (= success) and may raise (= failure with the exception's
    text). A step that is None is skipped (e.g. no scene reset on the robot, no controller switch in sim).

    Args:
        pause / resume / reset_policy: the policy node's services.
        move: (JointGoal) -> result; MoveGroup on the robot, the bridge's MoveGroup server in sim.
        switch: (activate, deactivate) -> result; controller_manager switch_controller; None: no switch.
        scene: (seed or None) -> result whose message is the new instruction; None: the scene is not reset.
        bridge: (suspend: bool) -> result; the franka bridge's ~/suspend; None: no bridge to hand over.
        cfg: the goal's defaults and the controller names.
    """

    def __init__(self, cfg: MoveItConfig, *, pause: Step, move: Callable[[JointGoal], Any], resume: Step,
                 reset_policy: Step | None = None, switch: Callable[[str, str], Any] | None = None,
                 scene: Callable[[int | None], Any] | None = None,
                 bridge: Callable[[bool], Any] | None = None) -> None:
        self.cfg = cfg
        self._bridge = bridge
        self._pause, self._move, self._resume, self._reset_policy = pause, move, resume, reset_policy
        self._switch = switch if cfg.moveit_controller else None
        self._scene = scene

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> StepResult:
        try:
            out = fn(*args)
        except Exception as exc:  # a step's failure is reported, never raised through the episode loop
            logger.exception('reset step failed')
            return StepResult(False, f'{type(exc).__name__}: {exc}')
        if out is None or out is True:
            return StepResult(True)
        if out is False:
            return StepResult(False, 'returned false')
        return out if isinstance(out, StepResult) else StepResult(bool(out[0]), str(out[1]))

    def run(self, positions: Sequence[float] | None = None, seed: int | None = None,
            resume: bool = True) -> ResetReport:
        """Reset to `positions` (None: cfg.start_joints) and, with `resume`, hand the arm back to the policy.

        The goal is validated before anything moves; a failed step ends the sequence (the policy stays paused).
        """
        report = ResetReport()
        try:
            goal = joint_goal(self.cfg, positions)
        except ValueError as exc:
            report.steps.append((ResetStep.MOVE, StepResult(False, str(exc))))
            return report
        plan: list[tuple[ResetStep, Callable[[], Any] | None]] = [
            (ResetStep.PAUSE, self._pause),
            (ResetStep.SUSPEND_BRIDGE, None if self._bridge is None else lambda: self._bridge(True)),
            (ResetStep.SCENE, None if self._scene is None else lambda: self._scene(seed)),
            (ResetStep.TO_MOVEIT, None if self._switch is None else
             lambda: self._switch(self.cfg.moveit_controller, self.cfg.policy_controller)),
            (ResetStep.MOVE, lambda: self._move(goal)),
            (ResetStep.TO_POLICY, None if self._switch is None else
             lambda: self._switch(self.cfg.policy_controller, self.cfg.moveit_controller)),
            (ResetStep.RESUME_BRIDGE, None if self._bridge is None else lambda: self._bridge(False)),
            (ResetStep.RESET_POLICY, self._reset_policy),
            (ResetStep.RESUME, self._resume if resume else None),
        ]
        for step, fn in plan:
            if fn is None:
                continue
            result = self._call(fn)
            report.steps.append((step, result))
            if not result.ok:
                logger.error('%s', report.message())
                break
        return report
