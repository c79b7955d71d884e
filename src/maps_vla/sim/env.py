"""`FrankaEnv`: the control loop that ties Physics, a Task and the arm controller together (gym-like API).

One `step` = one control period: the action becomes joint targets (differential IK for EE deltas), the servo
targets are ramped linearly from the previous ones over the period (smooth tracking instead of a jump every
100 ms), and physics runs `physics_hz / control_hz` steps.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from maps_vla.policy import OBS_IMAGE_PREFIX, OBS_STATE, ActionSpec
from maps_vla.sim import kinematics as _kin
from maps_vla.sim import scene as _scene
from maps_vla.sim.config_env import EnvConfig
from maps_vla.sim.controller import ArmController
from maps_vla.sim.physics import Physics
from maps_vla.sim.tasks import TASKS, Task
from maps_vla.sim.tasks.base import OBS_JOINT_STATE

__all__ = ['FrankaEnv', 'STATE_NAMES']

logger = logging.getLogger(__name__)

STATE_NAMES = ('tcp_x', 'tcp_y', 'tcp_z', 'tcp_rx', 'tcp_ry', 'tcp_rz', 'panda_finger_joint1', 'panda_finger_joint2')
_RAMP_CHUNKS = 5  # servo targets are updated this many times per control period


class FrankaEnv:
    """A headless MuJoCo Franka Panda tabletop environment.

    Args:
        cfg: the environment config (task, variant, rates, cameras, robot model).

    Attributes:
        physics: the `Physics` (privileged state; scripted experts and evaluation may read it).
        task: the `Task` instance.
        controller: the `ArmController` turning actions into servo targets.
    """

    def __init__(self, cfg: EnvConfig) -> None:
        self.cfg = cfg
        self.task: Task = TASKS.get(cfg.task)(cfg)
        spec = _scene.build_scene_spec(cfg.robot_xml, timestep=1.0 / cfg.physics_hz, image_size=cfg.image_size,
                                       view=cfg.third_person)
        self.task.build(spec)
        self.physics = Physics(spec.compile(), cfg.image_size)
        self.task.bind(self.physics)
        self.controller = ArmController(self.physics, cfg.control_hz, max_pos_step=cfg.max_pos_step,
                                        max_rot_step=cfg.max_rot_step)
        self._random: np.random.Generator | None = None
        self._steps = 0
        self._ready = False
        chunks = np.array_split(np.arange(cfg.substeps), min(_RAMP_CHUNKS, cfg.substeps))
        self._chunk_sizes = [len(c) for c in chunks]
        if cfg.action_kind == 'ee_delta':
            self.action_spec = ActionSpec(control_hz=cfg.control_hz)
        else:
            self.action_spec = ActionSpec(names=(*_scene.ARM_JOINTS, 'gripper'), kind='joint_position',
                                          gripper_index=7, control_hz=cfg.control_hz)

    @property
    def control_hz(self) -> float:
        """Control (action) rate in Hz."""
        return self.cfg.control_hz

    @property
    def instruction(self) -> str:
        """The current episode's language instruction (after `reset`)."""
        return self.task.instruction

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """LeRobot v2.1 `features` of every observation and action key: dtype, shape, names.

        Images are listed with dtype 'image' (a dataset writer that stores mp4 may declare them 'video').
        """
        feats: dict[str, dict[str, Any]] = {}
        if self.cfg.render:
            for camera in _scene.CAMERAS:
                feats[OBS_IMAGE_PREFIX + camera] = {'dtype': 'image', 'shape': (*self.cfg.image_size, 3),
                                                    'names': ('height', 'width', 'channels')}
        feats[OBS_STATE] = {'dtype': 'float32', 'shape': (len(STATE_NAMES),), 'names': STATE_NAMES}
        joint_names = (*_scene.ARM_JOINTS, *_scene.FINGER_JOINTS)
        feats[OBS_JOINT_STATE] = {'dtype': 'float32', 'shape': (len(joint_names),), 'names': joint_names}
        feats['action'] = {'dtype': 'float32', 'shape': (self.action_spec.dim,), 'names': self.action_spec.names}
        return feats

    def reset(self, seed: int | None = None, target: int | None = None) -> dict[str, Any]:
        """Start an episode.

        Args:
            seed: reseeds the episode RNG (same seed -> identical episode); None continues the RNG stream, which
                starts from `cfg.seed`.
            target: which of the scene's `task.num_targets` candidates the instruction names (the emoji card, the
                `choice` cube), None: drawn with the scene. The same seed with another target gives the same
                picture and another instruction: demos where only the words tell the target.

        Returns:
            The first observation.

        Raises:
            ValueError: `target` is not a candidate of this task and variant.
        """
        if target is not None and not 0 <= target < self.task.num_targets:
            raise ValueError(f'target {target} is not one of the {self.task.num_targets} candidates of '
                             f'{self.task.name}/{self.task.variant}')
        self.task.requested_target = target
        if seed is not None:
            self._random = np.random.default_rng(seed)
        elif self._random is None:
            self._random = np.random.default_rng(self.cfg.seed)
        random = self._random
        noise = random.uniform(-self.cfg.init_joint_noise, self.cfg.init_joint_noise, size=7)
        q0 = np.clip(np.asarray(_kin.HOME_QPOS[:7]) + noise, self.controller.ik.lower, self.controller.ik.upper)
        self.physics.reset(q0)
        self.task.initialize_episode(self.physics, random)
        self.physics.forward()
        self.controller.reset()
        self._steps = 0
        self._ready = True
        return self.task.get_observation(self.physics)

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Apply one action for one control period.

        Args:
            action: (action_spec.dim,) in the units of `action_spec` (EE deltas are clipped to
                cfg.max_pos_step / max_rot_step; the gripper entry is clipped to [0, 1], 0 = open).

        Returns:
            (obs, reward, terminated, truncated, info) with info['success'] a bool, plus the task's
            `step_info` (e.g. the emoji task's 'placed_card').

        Raises:
            RuntimeError: if called before `reset` or after the episode ended.
            ValueError: if the action has the wrong shape or non-finite entries.
        """
        if not self._ready:
            raise RuntimeError('call reset() before step() (and after an episode has ended)')
        action = np.asarray(action, dtype=float)
        if action.shape != (self.action_spec.dim,):
            raise ValueError(f'action must have shape ({self.action_spec.dim},) for {self.action_spec.kind!r}, '
                             f'got {action.shape}')
        if not np.all(np.isfinite(action)):
            raise ValueError(f'action has non-finite entries: {action}')
        q_start = self.controller.q_cmd.copy()
        if self.action_spec.kind == 'ee_delta':
            q_goal = self.controller.ee_delta(action[:6])
        else:
            q_goal = self.controller.joint_position(action[:7])
        self.physics.set_gripper(action[self.action_spec.gripper_index])
        done_steps = 0
        for size in self._chunk_sizes:
            done_steps += size
            self.physics.set_arm_target(q_start + (q_goal - q_start) * (done_steps / self.cfg.substeps))
            self.physics.step(size)
        self._steps += 1
        obs = self.task.get_observation(self.physics)
        success = self.task.is_success(self.physics)
        terminated = (success and self.cfg.terminate_on_success) or self.task.is_failure(self.physics)
        truncated = not terminated and self._steps >= self.cfg.max_steps
        if terminated or truncated:
            self._ready = False
        info = {'success': bool(success), **self.task.step_info(self.physics)}
        return obs, self.task.get_reward(self.physics), bool(terminated), bool(truncated), info

    def close(self) -> None:
        """Release the rendering context."""
        self.physics.close()

    def __enter__(self) -> FrankaEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
