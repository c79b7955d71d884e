"""The Task contract (dm_control style): objects in the scene, episode randomisation, observation, reward, success."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

import mujoco
import numpy as np

from maps_vla.policy import OBS_IMAGE_PREFIX, OBS_STATE, TASK
from maps_vla.sim import scene as _scene
from maps_vla.sim.physics import Physics

if TYPE_CHECKING:
    from maps_vla.sim.config_env import EnvConfig

__all__ = ['Task', 'OBS_JOINT_STATE', 'ObjectShape', 'SHAPES', 'sample_positions', 'yaw_quat']

OBS_JOINT_STATE = 'observation.joint_state'
_FELL_BELOW = -0.05  # m; an object this far below the table top has fallen off


class ObjectShape:
    """A graspable primitive: MuJoCo geom type and size, resting half-height, grasp symmetry about z."""

    def __init__(self, name: str, geom: mujoco.mjtGeom, size: tuple[float, ...], half_height: float,
                 symmetry: float | None) -> None:
        self.name = name
        self.geom = geom
        self.size = size
        self.half_height = half_height
        self.symmetry = symmetry  # yaw period (rad) of equivalent grasps; None = any yaw


SHAPES = {
    'cube': ObjectShape('cube', mujoco.mjtGeom.mjGEOM_BOX, (0.02, 0.02, 0.02), 0.02, np.pi / 2),
    'cylinder': ObjectShape('cylinder', mujoco.mjtGeom.mjGEOM_CYLINDER, (0.02, 0.025), 0.025, None),
    'block': ObjectShape('block', mujoco.mjtGeom.mjGEOM_BOX, (0.03, 0.017, 0.02), 0.02, np.pi),
}


def yaw_quat(yaw: float) -> np.ndarray:
    """(4,) quaternion (w, x, y, z) of a rotation by `yaw` about z."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def sample_positions(random: np.random.Generator, regions: list[tuple[tuple[float, float], tuple[float, float]]],
                     min_dists: list[float], max_tries: int = 1000) -> list[np.ndarray]:
    """Rejection-sample one xy point per region so that points i, j are >= max(min_dists[i], min_dists[j]) apart.

    Args:
        random: the episode RNG.
        regions: per point ((x_lo, x_hi), (y_lo, y_hi)).
        min_dists: per point clearance radius (m).
        max_tries: attempts per point before giving up.

    Returns:
        A list of (2,) points, one per region.

    Raises:
        RuntimeError: if the regions are too crowded to place the points.
    """
    points: list[np.ndarray] = []
    for (xr, yr), dist in zip(regions, min_dists):
        for _ in range(max_tries):
            p = np.array([random.uniform(*xr), random.uniform(*yr)])
            if all(np.linalg.norm(p - q) >= max(dist, d) for q, d in zip(points, min_dists)):
                points.append(p)
                break
        else:
            raise RuntimeError(f'could not place {len(regions)} objects without overlap in {regions}')
    return points


class Task(abc.ABC):
    """One tabletop task. Subclasses set `name`, `variants` and implement the abstract methods.

    Life cycle: `build(spec)` adds the task's bodies before compiling (the structure is fixed per variant);
    `bind(physics)` caches ids; every episode `initialize_episode(physics, random)` samples poses and appearance
    (only through model fields that it resets every time, so episodes are deterministic given the RNG).

    Args:
        cfg: the env config (variant, rendering, task options).
    """

    name: ClassVar[str]
    variants: ClassVar[tuple[str, ...]]
    object_body: ClassVar[str] = 'object'  # the body the expert picks up

    def __init__(self, cfg: EnvConfig) -> None:
        if cfg.variant not in self.variants:
            raise ValueError(f'variant {cfg.variant!r} is not one of {self.name!r}: {", ".join(self.variants)}')
        self.cfg = cfg
        self.variant = cfg.variant
        self._instruction: str | None = None
        self.requested_target: int | None = None  # set by env.reset(target=...) for the next episode

    @property
    def num_targets(self) -> int:
        """How many objects the instruction can name in one scene (1: the target is the only candidate)."""
        return 1

    def draw_target(self, random: np.random.Generator) -> int:
        """The named candidate of this episode: drawn from `random` (always, so the rest of the scene is the same
        whichever is named), unless `requested_target` (checked by the env) asks for one."""
        drawn = int(random.integers(self.num_targets))
        return drawn if self.requested_target is None else self.requested_target

    @abc.abstractmethod
    def build(self, spec: mujoco.MjSpec) -> None:
        """Add the task's bodies, materials and textures to the scene spec."""

    def bind(self, physics: Physics) -> None:
        """Cache ids and default model fields after compiling (override and call super)."""

    @abc.abstractmethod
    def initialize_episode(self, physics: Physics, random: np.random.Generator) -> None:
        """Sample object poses/appearance into `physics` and the instruction; the arm is already at home."""

    @abc.abstractmethod
    def goal_position(self, physics: Physics) -> np.ndarray:
        """(3,) where the object's centre should end up (the expert's place target)."""

    @abc.abstractmethod
    def object_shape(self) -> ObjectShape:
        """Shape of the object to move in this episode."""

    @abc.abstractmethod
    def is_success(self, physics: Physics) -> bool:
        """Whether the object rests at the goal (released, nearly still)."""

    @property
    def instruction(self) -> str:
        """The language instruction of the current episode."""
        if self._instruction is None:
            raise RuntimeError('the task has no instruction before the first reset()')
        return self._instruction

    def get_reward(self, physics: Physics) -> float:
        """Sparse reward: 1.0 on success, else 0.0."""
        return float(self.is_success(physics))

    def is_failure(self, physics: Physics) -> bool:
        """Whether the episode cannot succeed any more (the object fell off the table)."""
        return bool(physics.body_pos(self.object_body)[2] < _FELL_BELOW)

    def step_info(self, physics: Physics) -> dict[str, Any]:
        """Task-specific facts added to each step's info dict (none by default)."""
        return {}

    def get_observation(self, physics: Physics) -> dict[str, Any]:
        """The observation dict (keys in `FrankaEnv.features`, plus 'task').

        Returns:
            'observation.images.<camera>': (H, W, 3) uint8 per camera (when cfg.render);
            'observation.state': (8,) float32 TCP position, TCP axis-angle (relative to tool-down), finger positions;
            'observation.joint_state': (9,) float32 arm joints then fingers; 'task': the instruction.
        """
        obs: dict[str, Any] = {}
        if self.cfg.render:
            for camera in _scene.CAMERAS:
                obs[OBS_IMAGE_PREFIX + camera] = physics.render(camera)
        obs[OBS_STATE] = np.concatenate([physics.tcp_pos, physics.tcp_rotvec, physics.finger_qpos]).astype(np.float32)
        obs[OBS_JOINT_STATE] = physics.joint_state.astype(np.float32)
        obs[TASK] = self.instruction
        return obs

    def _resting_on(self, physics: Physics, surface_z: float, inside: bool) -> bool:
        """Object released, still, and its bottom on a surface at height `surface_z`, with xy `inside` the goal."""
        shape = self.object_shape()
        pos = physics.body_pos(self.object_body)
        return (inside and abs(pos[2] - shape.half_height - surface_z) < 0.01
                and float(np.linalg.norm(physics.body_linvel(self.object_body))) < 0.05
                and not physics.touching_robot(self.object_body))
