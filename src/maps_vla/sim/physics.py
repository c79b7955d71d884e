"""`Physics`: a compiled Panda tabletop model + data with named, read-only accessors and offscreen rendering.

dm_control style: tasks and the env read the simulation only through these properties (and `model`/`data` for
task-specific ids), so the robot model behind them (generated or menagerie) does not leak into task code.
"""

from __future__ import annotations

import mujoco
import numpy as np

from maps_vla.sim import kinematics as _kin
from maps_vla.sim import scene as _scene

__all__ = ['Physics']


class Physics:
    """A compiled MuJoCo model of the Panda tabletop and its state.

    Args:
        model: compiled from `scene.build_scene_spec` (+ task objects).
        image_size: (height, width) of rendered camera images.

    Raises:
        ValueError: if an arm or finger joint has no position-servo actuator.
    """

    def __init__(self, model: mujoco.MjModel, image_size: tuple[int, int] = (224, 224)) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self._renderer: mujoco.Renderer | None = None
        arm_names, finger_names = _scene.robot_joint_names({model.joint(i).name for i in range(model.njnt)})
        arm = [model.joint(n) for n in arm_names]
        fingers = [model.joint(n) for n in finger_names]
        self.arm_qpos_adr = np.array([j.qposadr[0] for j in arm])
        self.arm_dof_adr = np.array([j.dofadr[0] for j in arm])
        self.finger_qpos_adr = np.array([j.qposadr[0] for j in fingers])
        self.arm_range = np.array([j.range for j in arm])
        self.tcp_site_id = model.site(_scene.TCP_SITE).id
        self.arm_actuators = np.array([self._position_actuator(j.id, j.name) for j in arm])
        self.gripper_actuator = self._gripper_actuator([j.id for j in fingers])
        self.gripper_ctrl_range = model.actuator_ctrlrange[self.gripper_actuator].copy()
        robot_root = model.body_rootid[model.jnt_bodyid[arm[0].id]]
        self._robot_bodies = np.flatnonzero(model.body_rootid == robot_root)

    def _position_actuator(self, joint_id: int, joint_name: str) -> int:
        m = self.model
        for a in range(m.nu):
            if m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT and m.actuator_trnid[a, 0] == joint_id:
                if m.actuator_gainprm[a, 0] <= 0 or not np.isclose(m.actuator_biasprm[a, 1], -m.actuator_gainprm[a, 0]):
                    raise ValueError(f'actuator {m.actuator(a).name!r} on {joint_name!r} is not a position servo '
                                     f'(needs gainprm[0] = -biasprm[1] > 0)')
                return a
        raise ValueError(f'no actuator drives joint {joint_name!r}; the env needs a position actuator per arm joint')

    def _gripper_actuator(self, finger_joint_ids: list[int]) -> int:
        m = self.model
        for a in range(m.nu):
            trn, target = m.actuator_trntype[a], m.actuator_trnid[a, 0]
            if trn == mujoco.mjtTrn.mjTRN_JOINT and target in finger_joint_ids:
                return a
            if trn == mujoco.mjtTrn.mjTRN_TENDON:
                adr, num = m.tendon_adr[target], m.tendon_num[target]
                if set(m.wrap_objid[adr:adr + num]) & set(finger_joint_ids):
                    return a
        raise ValueError('no actuator drives the finger joints (expected one on a finger joint or a finger tendon)')

    # --- state -------------------------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulation time in seconds."""
        return float(self.data.time)

    @property
    def arm_qpos(self) -> np.ndarray:
        """(7,) arm joint angles (rad)."""
        return self.data.qpos[self.arm_qpos_adr].copy()

    @property
    def arm_qvel(self) -> np.ndarray:
        """(7,) arm joint velocities (rad/s)."""
        return self.data.qvel[self.arm_dof_adr].copy()

    @property
    def finger_qpos(self) -> np.ndarray:
        """(2,) finger positions (m), 0 = closed, 0.04 = open."""
        return self.data.qpos[self.finger_qpos_adr].copy()

    @property
    def joint_state(self) -> np.ndarray:
        """(9,) arm joint angles then finger positions."""
        return np.concatenate([self.arm_qpos, self.finger_qpos])

    @property
    def gripper_opening(self) -> float:
        """Distance between the fingers (m), 0 .. 0.08."""
        return float(self.finger_qpos.sum())

    @property
    def tcp_pos(self) -> np.ndarray:
        """(3,) TCP position in the base (world) frame (m)."""
        return self.data.site_xpos[self.tcp_site_id].copy()

    @property
    def tcp_rot(self) -> np.ndarray:
        """(3, 3) TCP orientation in the base frame."""
        return self.data.site_xmat[self.tcp_site_id].reshape(3, 3).copy()

    @property
    def tcp_rotvec(self) -> np.ndarray:
        """(3,) axis-angle of the TCP orientation relative to `kinematics.TOOL_DOWN` (0 at the home pose)."""
        return _kin.matrix_to_rotvec(_kin.TOOL_DOWN.T @ self.tcp_rot)

    def body_pos(self, name: str) -> np.ndarray:
        """(3,) world position of body `name`."""
        return self.data.body(name).xpos.copy()

    def body_rot(self, name: str) -> np.ndarray:
        """(3, 3) world orientation of body `name`."""
        return self.data.body(name).xmat.reshape(3, 3).copy()

    def body_linvel(self, name: str) -> np.ndarray:
        """(3,) world linear velocity of body `name` (m/s)."""
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_BODY, self.model.body(name).id, vel, 0)
        return vel[3:]

    def in_contact(self, body_a: str, body_b: str) -> bool:
        """Whether any geom of body `body_a` touches any geom of body `body_b`."""
        a, b = self.model.body(body_a).id, self.model.body(body_b).id
        contact = self.data.contact  # arrays sized to the active contacts
        b1, b2 = self.model.geom_bodyid[contact.geom1], self.model.geom_bodyid[contact.geom2]
        return bool(np.any(((b1 == a) & (b2 == b)) | ((b1 == b) & (b2 == a))))

    def touching_robot(self, body: str) -> bool:
        """Whether body `body` touches any part of the robot (e.g. a held or just-released object)."""
        b = self.model.body(body).id
        contact = self.data.contact
        b1, b2 = self.model.geom_bodyid[contact.geom1], self.model.geom_bodyid[contact.geom2]
        robot = self._robot_bodies
        return bool(np.any(((b1 == b) & np.isin(b2, robot)) | ((b2 == b) & np.isin(b1, robot))))

    def set_free_body_pose(self, body: str, pos: np.ndarray, quat: np.ndarray) -> None:
        """Place a body with a free joint at `pos` (3,) with orientation `quat` (4,, w x y z), at rest."""
        joint = self.model.joint(self.model.body(body).jntadr[0])
        if joint.type[0] != mujoco.mjtJoint.mjJNT_FREE:
            raise ValueError(f'body {body!r} has no free joint')
        adr, dof = joint.qposadr[0], joint.dofadr[0]
        self.data.qpos[adr:adr + 3] = pos
        self.data.qpos[adr + 3:adr + 7] = quat
        self.data.qvel[dof:dof + 6] = 0.0

    def warnings(self) -> dict[str, int]:
        """MuJoCo warnings raised since the last reset: name -> count (empty when clean)."""
        return {mujoco.mjtWarning(i).name: int(w.number) for i, w in enumerate(self.data.warning) if w.number}

    # --- control -----------------------------------------------------------------------------------------------
    def set_arm_target(self, q: np.ndarray) -> None:
        """Position-servo targets (7,) for the arm joints (rad)."""
        self.data.ctrl[self.arm_actuators] = q

    def set_gripper(self, closed: float) -> None:
        """Gripper command in [0, 1]: 0 = open, 1 = closed (linear in the actuator's ctrl range, high = open)."""
        lo, hi = self.gripper_ctrl_range
        self.data.ctrl[self.gripper_actuator] = hi - float(np.clip(closed, 0.0, 1.0)) * (hi - lo)

    def step(self, nstep: int = 1) -> None:
        """Advance the physics by `nstep` steps."""
        mujoco.mj_step(self.model, self.data, nstep)

    def reset(self, arm_qpos: np.ndarray, finger_qpos: float = _kin.FINGER_RANGE[1]) -> None:
        """Zero the state, put the arm at `arm_qpos` with its servos holding it, fingers open."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self.arm_qpos_adr] = arm_qpos
        self.data.qpos[self.finger_qpos_adr] = finger_qpos
        self.set_arm_target(arm_qpos)
        self.set_gripper(0.0)
        mujoco.mj_forward(self.model, self.data)

    def forward(self) -> None:
        """Recompute derived quantities (positions, contacts) after editing qpos or model fields."""
        mujoco.mj_forward(self.model, self.data)

    # --- rendering ---------------------------------------------------------------------------------------------
    def render(self, camera: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB image from the named camera."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, *self.image_size)
        self._renderer.update_scene(self.data, camera)
        return self._renderer.render()

    def close(self) -> None:
        """Free the offscreen rendering context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
