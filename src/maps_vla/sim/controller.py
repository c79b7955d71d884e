"""Arm control for the sim: end-effector deltas through damped-least-squares differential IK, or joint targets.

The controller integrates on the *commanded* joint vector `q_cmd`, not on the measured one: the position servos
sag a little under gravity, and re-planning from the measured pose would let that sag accumulate (sim_env.md §3
measured 6-35 mm drift that way, < 0.3 mm this way). The IK runs on a scratch `MjData`, so it never disturbs the
simulation state.
"""

from __future__ import annotations

import mujoco
import numpy as np

from maps_vla.sim import kinematics as _kin
from maps_vla.sim.physics import Physics

__all__ = ['DifferentialIK', 'ArmController']


class DifferentialIK:
    """Damped least squares IK for the TCP site, with joint-limit clamping and a null-space pull to a rest pose.

    One `solve` runs a few Gauss-Newton iterations: dq = Jᵀ (J Jᵀ + λ² I)⁻¹ e, with
    e = (position error, rotation error as a world-frame rotation vector). Joints at a limit that the step would
    push further are frozen and the step is re-solved without them; the result is clipped into the limits less
    `limit_margin`.

    Args:
        physics: supplies the model, joint addresses, the TCP site and the joint ranges.
        damping: λ of the damped least squares (metres/radians).
        iterations: Gauss-Newton iterations per solve.
        nullspace_gain: fraction of (rest - q) applied in the null space once per solve.
        rest: (7,) rest pose for the null-space term; default Franka's ready pose.
        limit_margin: distance (rad) kept from each joint limit.
    """

    def __init__(self, physics: Physics, *, damping: float = 1e-2, iterations: int = 4, nullspace_gain: float = 0.05,
                 rest: np.ndarray | None = None, limit_margin: float = 0.01) -> None:
        self._model = physics.model
        self._data = mujoco.MjData(physics.model)
        self._qadr = physics.arm_qpos_adr
        self._dadr = physics.arm_dof_adr
        self._site = physics.tcp_site_id
        self.lower = physics.arm_range[:, 0] + limit_margin
        self.upper = physics.arm_range[:, 1] - limit_margin
        self.damping = damping
        self.iterations = iterations
        self.nullspace_gain = nullspace_gain
        self.rest = np.asarray(_kin.HOME_QPOS[:7] if rest is None else rest, dtype=float)
        self._jacp = np.zeros((3, physics.model.nv))
        self._jacr = np.zeros((3, physics.model.nv))

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TCP (position (3,), rotation (3, 3)) in the base frame for arm joints `q` (7,)."""
        self._data.qpos[self._qadr] = q
        mujoco.mj_kinematics(self._model, self._data)
        return self._data.site_xpos[self._site].copy(), self._data.site_xmat[self._site].reshape(3, 3).copy()

    def _jacobian(self) -> np.ndarray:
        mujoco.mj_comPos(self._model, self._data)
        mujoco.mj_jacSite(self._model, self._data, self._jacp, self._jacr, self._site)
        return np.vstack([self._jacp[:, self._dadr], self._jacr[:, self._dadr]])

    def solve(self, q: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray) -> np.ndarray:
        """Joint angles (7,) near `q` that put the TCP at `target_pos` (3,) with orientation `target_rot` (3, 3)."""
        q = np.clip(np.asarray(q, dtype=float), self.lower, self.upper)
        eye6 = (self.damping ** 2) * np.eye(6)
        for it in range(self.iterations):
            pos, rot = self.forward(q)
            err = np.concatenate([target_pos - pos, _kin.matrix_to_rotvec(target_rot @ rot.T)])
            pull = self.nullspace_gain * (self.rest - q) if it == 0 else np.zeros(7)
            if it > 0 and np.linalg.norm(err[:3]) < 1e-6 and np.linalg.norm(err[3:]) < 1e-5:
                break
            jac = self._jacobian()
            free = np.ones(7)
            for _ in range(3):  # active set: freeze joints that the step pushes through a limit
                jf = jac * free
                gain = jf.T @ np.linalg.inv(jf @ jf.T + eye6)
                dq = gain @ err + (np.eye(7) - gain @ jf) @ (pull * free)
                blocked = ((q <= self.lower + 1e-9) & (dq < 0)) | ((q >= self.upper - 1e-9) & (dq > 0))
                if not np.any(blocked & (free > 0)):
                    break
                free[blocked] = 0.0
            q = np.clip(q + dq * free, self.lower, self.upper)
        return q


class ArmController:
    """Turns actions into arm joint targets `q_cmd` (7,) and a gripper command, one control step at a time.

    Args:
        physics: the simulation to control.
        control_hz: control rate; joint steps are limited to the Panda velocity limits over one period.
        max_pos_step: EE delta translation clip per step (m, per axis).
        max_rot_step: EE delta rotation clip per step (rad, per axis).
        max_tracking_error: q_cmd is kept within this distance (rad) of the measured joints, so a blocked arm
            does not wind up its targets.
    """

    def __init__(self, physics: Physics, control_hz: float, *, max_pos_step: float = 0.05, max_rot_step: float = 0.25,
                 max_tracking_error: float = 0.2) -> None:
        self.physics = physics
        self.ik = DifferentialIK(physics)
        self.max_joint_step = np.asarray(_kin.JOINT_VELOCITY) / control_hz
        self.max_pos_step = max_pos_step
        self.max_rot_step = max_rot_step
        self.max_tracking_error = max_tracking_error
        self.q_cmd = physics.arm_qpos

    def reset(self) -> None:
        """Command the current measured arm pose."""
        self.q_cmd = self.physics.arm_qpos

    def commanded_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP (position (3,), rotation (3, 3)) of the commanded joints."""
        return self.ik.forward(self.q_cmd)

    def _limit(self, q_target: np.ndarray) -> np.ndarray:
        step = q_target - self.q_cmd
        scale = np.max(np.abs(step) / self.max_joint_step)
        if scale > 1.0:  # uniform scaling keeps the direction of the joint step
            step = step / scale
        q_meas = self.physics.arm_qpos
        q = np.clip(self.q_cmd + step, q_meas - self.max_tracking_error, q_meas + self.max_tracking_error)
        return np.clip(q, self.ik.lower, self.ik.upper)

    def ee_delta(self, delta: np.ndarray) -> np.ndarray:
        """Apply [dx, dy, dz, droll, dpitch, dyaw] (base frame; rotation as a rotation vector) to the commanded pose.

        Returns:
            The new q_cmd (7,).
        """
        delta = np.asarray(delta, dtype=float)
        dpos = np.clip(delta[:3], -self.max_pos_step, self.max_pos_step)
        drot = np.clip(delta[3:6], -self.max_rot_step, self.max_rot_step)
        pos, rot = self.commanded_pose()
        target_rot = _kin.rotvec_to_matrix(drot) @ rot
        self.q_cmd = self._limit(self.ik.solve(self.q_cmd, pos + dpos, target_rot))
        return self.q_cmd

    def joint_position(self, q: np.ndarray) -> np.ndarray:
        """Move towards absolute joint targets (7,) within the velocity limits; returns the new q_cmd (7,)."""
        self.q_cmd = self._limit(np.clip(np.asarray(q, dtype=float), self.ik.lower, self.ik.upper))
        return self.q_cmd
