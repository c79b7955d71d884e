"""The robot bridge's safety logic: smoothed commands -> bounded robot targets (no ROS types).

End-effector delta mode (ActionSpec.kind 'ee_delta'): each command is a per-action-step delta (dx, dy, dz in m,
then a rotation vector in rad, in the base frame) plus a gripper value in [0, 1]. A command stays in force for one
action step, i.e. 1/action_hz s of bridge ticks (control_hz / action_hz ticks), or until a newer command replaces
it: every tick in force adds the command's share of a step (action_hz / control_hz of it) to a target pose that
starts at the measured pose. So the target covers delta * action_hz per second whatever rate the commands arrive at
(a 100 Hz smoother stream, whose every command is replaced after one tick, or a 20 Hz teleop stream), as long as
they arrive at least every 1/action_hz s; once a command's step is used up and none is newer, the target stops
(and is emitted unchanged). The period is counted in ticks, so it follows the clock the ticks run on (sim time
under use_sim_time). The target is kept within `max_lead` of the measured pose (no wind-up against contact),
clamped into the workspace box, and moved by at most `max_translation_step` / `max_rotation_step` per tick. The
result is a pose for the Cartesian impedance controller's `~/equilibrium_pose`.

Joint mode ('joint_position'): commands are absolute joint positions, in force until a newer one arrives; the
goal is the command clamped into the joint limits (less a margin) and within `max_joint_lead` of the measured joints.

The goal is not sent as is: the emitted target follows it through a velocity/acceleration/jerk limiter
(`maps_vla.control.limiter.JerkLimiter`), so the finite differences of the command stream stay within the robot's
limits (`franka_limits`: joint limits in joint mode, the Cartesian translation/rotation limits per axis, i.e. the
norm limits / sqrt(3), in ee_delta mode), scaled by `joint_velocity_scale` / `max_translation_step` /
`max_rotation_step` (velocity), `acceleration_scale` and `jerk_scale` -- whatever the goal does (a jump, a lead clamp
while the robot lags, a new chunk, a stream that resumes after a hold).

In both modes a non-finite command is rejected (logged, counted, hold), no command for `watchdog_timeout` s holds
(even within a step), no action chunk for `policy_timeout` s after the first one holds as `policy_lost` (the policy
died: zero deltas from the smoother must not keep the target alive), and an e-stop latch holds until released.
Holding means stopping the emitted target as fast as the limits allow and freezing the goal where it stops: a held
target is a fixed pose, never re-derived from a (drifting) measurement. Entering and leaving `policy_lost` is
logged. The gripper dimension is thresholded into open/close commands, emitted only when the state changes.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math

import numpy as np

from maps_vla.control.franka_limits import GRIPPER_MAX_WIDTH, cartesian_limits, joint_limits
from maps_vla.control.limiter import JerkLimiter
from maps_vla.control.rotations import quat_from_rotvec, quat_multiply, quat_normalize, quat_to_rotvec

__all__ = ['SafetyConfig', 'SafetyStatus', 'PoseTarget', 'JointTarget', 'GripperCommand', 'SafetyOutput',
           'SafetyBridge']

logger = logging.getLogger(__name__)


class SafetyStatus(enum.Enum):
    WAITING = 'waiting'  # no measured pose / joint state yet: nothing to anchor the target to
    ACTIVE = 'active'  # following commands
    HOLD_WATCHDOG = 'hold_watchdog'  # no command for watchdog_timeout s (or none yet)
    HOLD_REJECTED = 'hold_rejected'  # this tick's command was rejected
    POLICY_LOST = 'policy_lost'  # action chunks stopped for policy_timeout s: the policy is gone, holding
    ESTOP = 'estop'  # e-stop latched


@dataclasses.dataclass(frozen=True)
class SafetyConfig:
    """Limits of the bridge between the smoother and the robot."""

    kind: str = 'ee_delta'  # ActionSpec.kind: 'ee_delta' (Cartesian target) or 'joint_position'
    control_hz: float = 100.0  # bridge tick rate
    action_hz: float = 10.0  # ee_delta: a delta is meant per 1/action_hz s (ActionSpec.control_hz), held as long
    frame_id: str = 'fr3_link0'  # frame of the target pose
    workspace_min: tuple[float, float, float] = (0.25, -0.45, 0.02)  # m, lower corner of the allowed box
    workspace_max: tuple[float, float, float] = (0.75, 0.45, 0.70)  # m, upper corner
    max_translation_step: float = 0.004  # m the target may move per tick (0.4 m/s at 100 Hz)
    max_rotation_step: float = 0.02  # rad the target may turn per tick
    max_lead: float = 0.05  # m the target may run ahead of the measured position
    max_lead_rotation: float = 0.3  # rad the target may turn ahead of the measured orientation
    watchdog_timeout: float = 0.2  # s without a command after which the target holds
    robot_type: str = 'fr3'  # joint-limit table: fr3, fp3, fer, panda
    joint_margin: float = 0.05  # rad kept clear of each joint limit
    joint_velocity_scale: float = 0.5  # fraction of each joint's velocity limit the target may use
    acceleration_scale: float = 0.5  # fraction of the robot's acceleration limits (joint or Cartesian) it may use
    jerk_scale: float = 0.05  # fraction of the robot's jerk limits (franka_limits) it may use
    policy_timeout: float = 1.0  # s without an action chunk (after the first) that counts as a lost policy; 0 = off
    max_joint_lead: float = 0.2  # rad a joint target may run ahead of the measured joint
    gripper_index: int | None = 6  # command dimension holding the gripper (0 open .. 1 closed); None: no gripper
    gripper_threshold: float = 0.5  # closed when the command is >= this
    gripper_open_width: float = GRIPPER_MAX_WIDTH  # m, Move goal when opening
    gripper_grasp_width: float = 0.0  # m, Grasp goal when closing
    gripper_speed: float = 0.1  # m/s
    gripper_force: float = 20.0  # N, Grasp force / GripperCommand max_effort

    def __post_init__(self) -> None:
        if self.kind not in ('ee_delta', 'joint_position'):
            raise ValueError(f"SafetyConfig.kind must be 'ee_delta' or 'joint_position', got {self.kind!r}")
        positive = ('control_hz', 'action_hz', 'max_translation_step', 'max_rotation_step', 'max_lead',
                    'max_lead_rotation', 'watchdog_timeout', 'joint_velocity_scale', 'max_joint_lead',
                    'gripper_speed', 'gripper_force')
        for name in positive:
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'SafetyConfig.{name} must be a finite number > 0, got {value!r}')
        for name in ('joint_velocity_scale', 'acceleration_scale', 'jerk_scale'):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f'SafetyConfig.{name} is a fraction of the robot\'s limits: it must be in (0, 1], '
                                 f'got {value!r}')
        if not (self.policy_timeout >= 0 and math.isfinite(self.policy_timeout)):
            raise ValueError(f'SafetyConfig.policy_timeout must be a finite number >= 0 (0 = off), got '
                             f'{self.policy_timeout!r}')
        if len(self.workspace_min) != 3 or len(self.workspace_max) != 3 or any(
                lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ValueError(f'SafetyConfig.workspace_min {self.workspace_min} must be below workspace_max '
                             f'{self.workspace_max} on x, y and z')
        joint_limits(self.robot_type)  # raises with the known robot types
        if self.joint_margin < 0:
            raise ValueError(f'SafetyConfig.joint_margin must be >= 0, got {self.joint_margin}')
        if not 0 <= self.gripper_grasp_width <= self.gripper_open_width <= GRIPPER_MAX_WIDTH:
            raise ValueError(f'SafetyConfig gripper widths must satisfy 0 <= grasp ({self.gripper_grasp_width}) '
                             f'<= open ({self.gripper_open_width}) <= {GRIPPER_MAX_WIDTH}')


@dataclasses.dataclass(frozen=True)
class PoseTarget:
    """A PoseStamped for `~/equilibrium_pose`."""

    stamp: float
    position: np.ndarray  # (3,) m
    quaternion: np.ndarray  # (4,) x, y, z, w
    frame_id: str


@dataclasses.dataclass(frozen=True)
class JointTarget:
    """A one-point joint trajectory."""

    stamp: float
    names: tuple[str, ...]
    positions: np.ndarray  # (7,) rad


@dataclasses.dataclass(frozen=True)
class GripperCommand:
    """An open (franka_msgs Move) or close (Grasp) goal; `finger_position` for control_msgs GripperCommand."""

    stamp: float
    width: float  # m between the fingers
    speed: float  # m/s
    force: float  # N (Grasp only)
    grasp: bool  # True: close with Grasp, False: open with Move

    @property
    def finger_position(self) -> float:
        """control_msgs/GripperCommand.position, which is per finger (half the width)."""
        return 0.5 * self.width


@dataclasses.dataclass(frozen=True)
class SafetyOutput:
    """What the bridge sends this tick; `pose`/`joints` is the (possibly held) target, None while WAITING."""

    stamp: float
    status: SafetyStatus
    pose: PoseTarget | None = None
    joints: JointTarget | None = None
    gripper: GripperCommand | None = None  # only on a change of the open/closed state
    reason: str = ''
    goal: np.ndarray | None = None  # what the target is heading for: position (3,) or joints (7,), unlimited


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.sqrt(v @ v))
    return v * (limit / norm) if norm > limit else v


def _turn_towards(q_from: np.ndarray, q_to: np.ndarray, max_angle: float) -> np.ndarray:
    """q_to, or the rotation `max_angle` of the way from q_from towards it."""
    rel = quat_to_rotvec(quat_multiply(q_to, np.array([-q_from[0], -q_from[1], -q_from[2], q_from[3]])))
    return quat_normalize(quat_multiply(quat_from_rotvec(_clip_norm(rel, max_angle)), q_from))


def _rotvec_between(q_from: np.ndarray, q_to: np.ndarray) -> np.ndarray:
    """The rotation vector (base frame) that turns q_from into q_to."""
    return quat_to_rotvec(quat_multiply(q_to, np.array([-q_from[0], -q_from[1], -q_from[2], q_from[3]])))


class SafetyBridge:
    """Bounded targets from smoothed commands; see the module docstring.

    Args:
        cfg: mode and limits.
    """

    def __init__(self, cfg: SafetyConfig | None = None) -> None:
        self.cfg = cfg or SafetyConfig()
        cfg = self.cfg
        limits = joint_limits(cfg.robot_type)
        self.joint_names = limits.names
        lower, upper, velocity, acceleration = limits.arrays()
        self._q_lo, self._q_hi = lower + cfg.joint_margin, upper - cfg.joint_margin
        self._dt = 1.0 / cfg.control_hz
        self._joint_limiter = JerkLimiter(velocity * cfg.joint_velocity_scale, acceleration * cfg.acceleration_scale,
                                          np.asarray(limits.jerk) * cfg.jerk_scale, self._dt, self._q_lo, self._q_hi,
                                          brake_at_goal=True)
        # Per-axis Cartesian limits: the robot's norm limits / sqrt(3) keep the norms inside them.
        cart, axes = cartesian_limits(cfg.robot_type), math.sqrt(3.0)
        self._trans_limiter = JerkLimiter(
            np.full(3, min(cfg.max_translation_step * cfg.control_hz, cart.translation_velocity) / axes),
            np.full(3, cart.translation_acceleration * cfg.acceleration_scale / axes),
            np.full(3, cart.translation_jerk * cfg.jerk_scale / axes), self._dt,
            np.asarray(cfg.workspace_min, float), np.asarray(cfg.workspace_max, float), brake_at_goal=True)
        self._rot_limiter = JerkLimiter(
            np.full(3, min(cfg.max_rotation_step * cfg.control_hz, cart.rotation_velocity) / axes),
            np.full(3, cart.rotation_acceleration * cfg.acceleration_scale / axes),
            np.full(3, cart.rotation_jerk * cfg.jerk_scale / axes), self._dt, brake_at_goal=True)
        self._ws_lo, self._ws_hi = np.asarray(self.cfg.workspace_min, float), np.asarray(self.cfg.workspace_max, float)
        self._delta_scale = self.cfg.action_hz / self.cfg.control_hz
        self.rejections: dict[str, int] = {}  # reason -> count
        self._estop_reason: str | None = None
        self._measured_pose: tuple[np.ndarray, np.ndarray] | None = None
        self._measured_q: np.ndarray | None = None
        self._pos = self._quat = self._q = None  # the goal
        self._out_pos = self._out_quat = self._out_q = None  # the emitted (limited) target
        self._goal_prev: tuple[np.ndarray, ...] | None = None  # last tick's goal, for its feed-forward velocity
        self._last_chunk_time: float | None = None
        self._policy_lost = False
        self._command: np.ndarray | None = None  # the command in force
        self._step_left = 0.0  # ee_delta: the fraction of the command's action step not yet applied
        self._rejected: str | None = None
        self._last_command_time: float | None = None
        self._gripper_closed: bool | None = None

    # ----------------------------------------------------------------------------------------------- inputs
    def on_measured_pose(self, position: np.ndarray, quaternion: np.ndarray, stamp: float) -> None:
        """The robot's measured end-effector pose (base frame); non-finite values are ignored and counted."""
        position, quaternion = np.asarray(position, float), np.asarray(quaternion, float)
        if not (np.all(np.isfinite(position)) and np.all(np.isfinite(quaternion))) or quaternion @ quaternion < 1e-12:
            self._count('non-finite measured pose')
            return
        self._measured_pose = (position.copy(), quat_normalize(quaternion))

    def on_joint_state(self, positions: np.ndarray, stamp: float) -> None:
        """Measured arm joint positions (7,), in `joint_names` order; non-finite ones are ignored and counted."""
        positions = np.asarray(positions, float)
        if positions.shape != (len(self.joint_names),):
            raise ValueError(f'joint state needs {len(self.joint_names)} positions ({self.joint_names}), got '
                             f'shape {positions.shape}')
        if not np.all(np.isfinite(positions)):
            self._count('non-finite joint state')
            return
        self._measured_q = positions.copy()

    def anchor(self, position: np.ndarray, quaternion: np.ndarray) -> None:
        """Start the Cartesian target at this pose without a measurement (open loop, e.g. a bag without poses).

        Raises:
            ValueError: a non-finite position or a quaternion that cannot be normalized.
        """
        position = np.asarray(position, float).reshape(-1)
        if position.shape != (3,) or not np.all(np.isfinite(position)):
            raise ValueError(f'anchor position must be 3 finite values, got {position.tolist()}')
        self._pos, self._quat = position.copy(), quat_normalize(quaternion)

    def on_command(self, command: np.ndarray, stamp: float) -> None:
        """One smoothed command (A,), used by the next tick; a non-finite one is rejected there.

        Raises:
            ValueError: a command whose length does not fit the mode (7 deltas or joints, plus the gripper).
        """
        command = np.asarray(command, dtype=np.float64).reshape(-1)
        want = (6 if self.cfg.kind == 'ee_delta' else len(self.joint_names)) + (self.cfg.gripper_index is not None)
        if command.size != want:
            raise ValueError(f'{self.cfg.kind} command needs {want} values (gripper_index '
                             f'{self.cfg.gripper_index}), got {command.size}')
        if not np.all(np.isfinite(command)):
            self._rejected = f'non-finite command {command.tolist()}'
            self._command = None
            return
        self._rejected = None
        self._command = command
        self._step_left = 1.0
        self._last_command_time = stamp

    def on_chunk(self, stamp: float) -> None:
        """An action chunk reached the smoother at time `stamp` (s): the policy is alive.

        Only a stack that has shown chunks can lose its policy; teleop (commands, no chunks) never does.
        """
        if not math.isfinite(stamp):
            return
        if self._policy_lost:
            logger.info('action chunks are back: the policy is running again')
            self._policy_lost = False
        self._last_chunk_time = stamp

    def engage_estop(self, reason: str = 'e-stop') -> None:
        """Latch the e-stop: hold until release_estop()."""
        if self._estop_reason is None:
            logger.warning('e-stop engaged: %s', reason)
        self._estop_reason = reason or 'e-stop'
        self._command = None

    def release_estop(self) -> None:
        """Release the latch; commands older than the release are not replayed."""
        if self._estop_reason is not None:
            logger.info('e-stop released')
        self._estop_reason = None
        self._command = None
        self._last_command_time = None

    @property
    def estopped(self) -> bool:
        return self._estop_reason is not None

    # ------------------------------------------------------------------------------------------------- tick
    def tick(self, now: float) -> SafetyOutput:
        """The target for this tick (see SafetyOutput)."""
        ee = self.cfg.kind == 'ee_delta'
        if ee and self._pos is None and self._measured_pose is not None:
            self._pos, self._quat = self._measured_pose[0].copy(), self._measured_pose[1].copy()
            if np.any(self._pos < self._ws_lo) or np.any(self._pos > self._ws_hi):
                logger.warning('measured position %s is outside the workspace %s..%s; the target moves into it '
                               'within the limits', self._pos.tolist(), self._ws_lo.tolist(), self._ws_hi.tolist())
        if ee and self._pos is not None and self._out_pos is None:  # anchored (measured or anchor()): at rest
            self._out_pos, self._out_quat = self._pos.copy(), self._quat.copy()
            self._trans_limiter.reset()
            self._rot_limiter.reset()
        if not ee and self._q is None and self._measured_q is not None:
            self._q = self._measured_q.copy()
            self._out_q = self._q.copy()
            self._joint_limiter.reset()
        if (self._pos if ee else self._q) is None:
            self._command = None
            return SafetyOutput(now, SafetyStatus.WAITING, reason='no measured state yet')
        gripper = None
        lost = (self.cfg.policy_timeout > 0 and self._last_chunk_time is not None
                and now - self._last_chunk_time > self.cfg.policy_timeout)
        if lost and not self._policy_lost:
            logger.warning('no action chunk for %.3f s (policy_timeout %gs): the policy is lost; holding the target '
                           'at a fixed pose until chunks arrive again', now - self._last_chunk_time,
                           self.cfg.policy_timeout)
        self._policy_lost = lost
        if self._estop_reason is not None:
            status, reason = SafetyStatus.ESTOP, self._estop_reason
        elif lost:
            status, reason = SafetyStatus.POLICY_LOST, f'no action chunk for {now - self._last_chunk_time:.3f}s'
            self._command = None
        elif self._rejected is not None:
            status, reason = SafetyStatus.HOLD_REJECTED, self._rejected
            self._count(self._rejected)
            self._rejected = None
        elif self._last_command_time is None or now - self._last_command_time > self.cfg.watchdog_timeout:
            status = SafetyStatus.HOLD_WATCHDOG
            reason = 'no command yet' if self._last_command_time is None else \
                f'no command for {now - self._last_command_time:.3f}s'
        else:
            status, reason = SafetyStatus.ACTIVE, ''
            command = self._command
            if command is not None:
                if ee:
                    share = min(self._delta_scale, self._step_left)
                    self._step_ee(command, share)
                    self._step_left -= share
                    if self._step_left <= 1e-9 * self._delta_scale:  # the whole step is applied: stop here
                        self._command = None
                else:
                    self._step_joints(command)
                gripper = self._gripper(command, now)
        self._emit(hold=status is not SafetyStatus.ACTIVE)
        if ee:
            pose = PoseTarget(now, self._out_pos.copy(), self._out_quat.copy(), self.cfg.frame_id)
            return SafetyOutput(now, status, pose=pose, gripper=gripper, reason=reason, goal=self._pos.copy())
        return SafetyOutput(now, status, joints=JointTarget(now, self.joint_names, self._out_q.copy()),
                            gripper=gripper, reason=reason, goal=self._q.copy())

    def _emit(self, hold: bool) -> None:
        """Move the emitted target one tick towards the goal under the limits; a hold stops it and freezes the goal
        where it stops (a fixed pose: nothing is re-derived from the measurement while holding)."""
        dt = self._dt
        if self.cfg.kind == 'ee_delta':
            if hold:
                v, w = self._trans_limiter.stop(dt), self._rot_limiter.stop(dt)
            else:
                prev = self._goal_prev
                v_ref = np.zeros(3) if prev is None else (self._pos - prev[0]) / dt
                w_ref = np.zeros(3) if prev is None else _rotvec_between(prev[1], self._quat) / dt
                v = self._trans_limiter.velocity_towards(self._pos - self._out_pos, v_ref, dt, position=self._out_pos)
                w = self._rot_limiter.velocity_towards(_rotvec_between(self._out_quat, self._quat), w_ref, dt)
            self._out_pos = self._out_pos + v * dt
            self._out_quat = quat_normalize(quat_multiply(quat_from_rotvec(w * dt), self._out_quat))
            if hold:
                self._pos, self._quat = self._out_pos.copy(), self._out_quat.copy()
            self._goal_prev = (self._pos.copy(), self._quat.copy())
        else:
            if hold:
                v = self._joint_limiter.stop(dt)
            else:
                prev = self._goal_prev
                v_ref = np.zeros(self._q.size) if prev is None else (self._q - prev[0]) / dt
                v = self._joint_limiter.velocity_towards(self._q - self._out_q, v_ref, dt, position=self._out_q)
            self._out_q = self._out_q + v * dt
            if hold:
                self._q = self._out_q.copy()
            self._goal_prev = (self._q.copy(),)

    def _step_ee(self, command: np.ndarray, share: float) -> None:
        """Move the target by `share` of the command's per-step delta (bounded as in the module docstring)."""
        delta = np.delete(command, self.cfg.gripper_index) if self.cfg.gripper_index is not None else command
        delta = delta * share
        pos = self._pos + delta[:3]
        quat = quat_multiply(quat_from_rotvec(delta[3:6]), self._quat)
        if self._measured_pose is not None:  # no wind-up: stay near where the robot really is
            m_pos, m_quat = self._measured_pose
            pos = m_pos + _clip_norm(pos - m_pos, self.cfg.max_lead)
            quat = _turn_towards(m_quat, quat, self.cfg.max_lead_rotation)
        pos = np.clip(pos, self._ws_lo, self._ws_hi)
        # The last guard: whatever happened above, the emitted target never jumps.
        self._pos = self._pos + _clip_norm(pos - self._pos, self.cfg.max_translation_step)
        self._quat = _turn_towards(self._quat, quat, self.cfg.max_rotation_step)

    def _step_joints(self, command: np.ndarray) -> None:
        q = np.delete(command, self.cfg.gripper_index) if self.cfg.gripper_index is not None else command
        if self._measured_q is not None:
            q = np.clip(q, self._measured_q - self.cfg.max_joint_lead, self._measured_q + self.cfg.max_joint_lead)
        self._q = np.clip(q, self._q_lo, self._q_hi)

    def _gripper(self, command: np.ndarray, now: float) -> GripperCommand | None:
        if self.cfg.gripper_index is None:
            return None
        closed = bool(command[self.cfg.gripper_index] >= self.cfg.gripper_threshold)
        if closed == self._gripper_closed:
            return None
        self._gripper_closed = closed
        width = self.cfg.gripper_grasp_width if closed else self.cfg.gripper_open_width
        return GripperCommand(now, width, self.cfg.gripper_speed, self.cfg.gripper_force, closed)

    def _count(self, reason: str) -> None:
        key = reason.split(' [')[0]
        if key not in self.rejections:
            logger.warning('safety bridge rejected input: %s (further ones are counted, not logged)', reason)
        self.rejections[key] = self.rejections.get(key, 0) + 1
