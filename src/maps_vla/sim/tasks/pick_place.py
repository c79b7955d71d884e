"""Pick-and-place: put the object on the plate. Held-out variants change colour, shape, clutter, light or camera.

Variants (`PickPlace.variants`):
    train:           a cube in one of `TRAIN_COLORS`.
    ood_color:       a cube in one of `HELDOUT_COLORS` (unseen colour words in the instruction too).
    ood_shape:       a cylinder or an elongated block (unseen shapes) in a training colour.
    ood_distractors: the training cube plus 3 distractor objects (cube/cylinder/block, other training colours).
    choice:          two cubes in different training colours, both in the object region: only the instruction's
                     colour word tells which to pick (in the other variants the target is the one object, or the
                     one in the object region, so a policy can succeed without reading the words). Lifting the
                     other cube ends the episode.
    ood_lighting:    the training scene under a random key-light colour, direction and ambient level.
    ood_camera:      the training scene with the third-person camera moved up to ~10 cm and re-aimed.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from maps_vla.sim import scene as _scene
from maps_vla.sim.physics import Physics
from maps_vla.sim.tasks.base import SHAPES, ObjectShape, Task, sample_positions, yaw_quat

if TYPE_CHECKING:
    from maps_vla.sim.config_env import EnvConfig

__all__ = ['PickPlace', 'SceneObject', 'TRAIN_COLORS', 'HELDOUT_COLORS', 'OBJECT_REGION', 'COMPACT_OBJECT_REGION',
           'COMPACT_PLATE_XY', 'COMPACT_YAW']

TRAIN_COLORS = {'red': (0.85, 0.1, 0.1), 'green': (0.1, 0.65, 0.2), 'blue': (0.1, 0.3, 0.9),
                'yellow': (0.95, 0.8, 0.1)}
HELDOUT_COLORS = {'purple': (0.55, 0.2, 0.75), 'orange': (1.0, 0.5, 0.0), 'cyan': (0.0, 0.8, 0.85),
                  'pink': (1.0, 0.5, 0.72)}
_ALL_COLORS = {**TRAIN_COLORS, **HELDOUT_COLORS}
_PLATE_RADIUS = 0.075
_PLATE_HALF_HEIGHT = 0.006
_OBJECT_MASS = 0.05  # kg
OBJECT_REGION = ((0.38, 0.62), (-0.22, 0.22))  # x, y ranges (m) of every object's centre
_NUM_DISTRACTORS = 3
_LIFTED = 0.03  # m above its resting height: an object this high has been picked up
# 'compact' layout: the object in a 12 x 12 cm square in front of the robot, the plate fixed beside it
COMPACT_OBJECT_REGION = ((0.44, 0.56), (-0.13, -0.01))
COMPACT_PLATE_XY = (0.5, 0.15)
COMPACT_YAW = np.pi / 6
_HIDDEN_GROUP = 5  # geom group that is never rendered: inactive shape alternatives live there


@dataclasses.dataclass(frozen=True)
class SceneObject:
    """An object on the table: its colour word, shape name and base-frame xy (m)."""

    color: str
    shape: str
    xy: tuple[float, float]


class PickPlace(Task):
    """Put the named object on the plate."""

    name = 'pick_place'
    variants = ('train', 'ood_color', 'ood_shape', 'ood_distractors', 'ood_lighting', 'ood_camera', 'choice')

    def __init__(self, cfg: EnvConfig) -> None:
        super().__init__(cfg)
        self._shapes = ('cylinder', 'block') if self.variant == 'ood_shape' else ('cube',)
        self._colors = HELDOUT_COLORS if self.variant == 'ood_color' else TRAIN_COLORS
        self._n_distractors = {'ood_distractors': _NUM_DISTRACTORS, 'choice': 1}.get(self.variant, 0)
        # the other cube of 'choice' shares the target's region, so where an object stands says nothing
        self._distractor_shapes = ('cube',) if self.variant == 'choice' else tuple(SHAPES)
        self._shape = SHAPES[self._shapes[0]]
        self._labels: list[tuple[str, str, str]] = []  # (body, colour, shape) of each object this episode

    @property
    def num_targets(self) -> int:
        return 2 if self.variant == 'choice' else 1

    # --- scene -------------------------------------------------------------------------------------------------
    def _add_object(self, spec: mujoco.MjSpec, name: str, shapes: tuple[str, ...]) -> None:
        body = spec.worldbody.add_body(name=name, pos=[0.5, 0.0, 0.1])
        body.add_freejoint()
        # Explicit inertia (a 4 cm cube's) so switching the active shape geom does not change the dynamics.
        body.explicitinertial = True
        body.mass = _OBJECT_MASS
        body.ipos = [0.0, 0.0, 0.0]
        body.iquat = [1.0, 0.0, 0.0, 0.0]
        body.inertia = [_OBJECT_MASS * 0.04 ** 2 / 6] * 3
        for shape in shapes:
            s = SHAPES[shape]
            body.add_geom(name=f'{name}_{shape}', type=s.geom, size=list(s.size) + [0.0] * (3 - len(s.size)),
                          rgba=[0.5, 0.5, 0.5, 1.0], friction=[1.0, 0.005, 0.0001])

    def build(self, spec: mujoco.MjSpec) -> None:
        plate = spec.worldbody.add_body(name='plate', pos=[0.5, 0.2, _PLATE_HALF_HEIGHT])
        plate.add_geom(name='plate', type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[_PLATE_RADIUS, _PLATE_HALF_HEIGHT, 0],
                       rgba=[0.92, 0.92, 0.95, 1.0])
        plate.add_geom(name='plate_rim', type=mujoco.mjtGeom.mjGEOM_CYLINDER, contype=0, conaffinity=0,
                       size=[_PLATE_RADIUS + 0.006, _PLATE_HALF_HEIGHT * 0.9, 0], rgba=[0.35, 0.45, 0.75, 1.0])
        self._add_object(spec, self.object_body, self._shapes)
        for i in range(self._n_distractors):
            self._add_object(spec, f'distractor_{i}', self._distractor_shapes)

    def bind(self, physics: Physics) -> None:
        m = physics.model
        self._plate_body = m.body('plate').id
        self._light = m.light('key').id
        self._camera = m.camera(_scene.THIRD_PERSON_CAMERA).id
        self._defaults = {
            'light_diffuse': m.light_diffuse[self._light].copy(), 'light_dir': m.light_dir[self._light].copy(),
            'ambient': m.vis.headlight.ambient.copy(), 'headlight': m.vis.headlight.diffuse.copy(),
            'cam_pos': m.cam_pos[self._camera].copy(), 'cam_quat': m.cam_quat[self._camera].copy(),
        }

    def _show(self, physics: Physics, body: str, shape: str, rgb: tuple[float, float, float]) -> None:
        """Make `shape` the one visible, colliding geom of `body`, coloured `rgb`."""
        m = physics.model
        b = m.body(body)
        for g in range(b.geomadr[0], b.geomadr[0] + b.geomnum[0]):
            active = m.geom(g).name == f'{body}_{shape}'
            m.geom_contype[g] = m.geom_conaffinity[g] = int(active)
            m.geom_group[g] = 0 if active else _HIDDEN_GROUP
            m.geom_rgba[g] = (*rgb, 1.0)

    # --- episode -----------------------------------------------------------------------------------------------
    def initialize_episode(self, physics: Physics, random: np.random.Generator) -> None:
        m = physics.model
        self._shape = SHAPES[self._shapes[random.integers(len(self._shapes))]]
        color = list(self._colors)[random.integers(len(self._colors))]
        compact = self.cfg.layout == 'compact'
        clearance = [0.06, _PLATE_RADIUS + 0.06] + [0.06] * self._n_distractors
        object_region = COMPACT_OBJECT_REGION if compact else OBJECT_REGION
        distractor_region = object_region if self.variant == 'choice' else OBJECT_REGION
        if compact:  # the plate's region is a point: the sampler keeps the others clear of it all the same
            plate_region = tuple((c, c) for c in COMPACT_PLATE_XY)
            regions = [object_region, plate_region] + [distractor_region] * self._n_distractors
        else:
            regions = [OBJECT_REGION] * (2 + self._n_distractors)
        obj_xy, plate_xy, *others = sample_positions(random, regions, clearance)
        named = self.draw_target(random) if self.variant == 'choice' else 0
        m.body_pos[self._plate_body] = [*plate_xy, _PLATE_HALF_HEIGHT]
        max_yaw = COMPACT_YAW if compact else np.pi / 2
        # (colour, shape, xy, yaw) of the named object's slot, then of each distractor, in a fixed drawing order
        slots = [(color, self._shape, obj_xy, random.uniform(-max_yaw, max_yaw))]
        other_colors = [c for c in TRAIN_COLORS if c != color]
        for xy in others:
            shape = SHAPES[self._distractor_shapes[random.integers(len(self._distractor_shapes))]]
            other = other_colors[random.integers(len(other_colors))]
            slots.append((other, shape, xy, random.uniform(-np.pi, np.pi)))
        # 'choice' names slot `named`: the picture is the same whichever cube the instruction names
        slots.insert(0, slots.pop(named))
        bodies = [self.object_body, *(f'distractor_{i}' for i in range(len(others)))]
        self._labels = []
        for body, (name, shape, xy, yaw) in zip(bodies, slots):
            self._show(physics, body, shape.name, _ALL_COLORS[name])
            physics.set_free_body_pose(body, [*xy, shape.half_height], yaw_quat(yaw))
            self._labels.append((body, name, shape.name))
        color, self._shape = slots[0][0], slots[0][1]
        self._sample_lighting(physics, random)
        self._sample_camera(physics, random)
        self._instruction = f'put the {color} {self._shape.name} on the plate'

    def _sample_lighting(self, physics: Physics, random: np.random.Generator) -> None:
        m, d = physics.model, self._defaults
        m.light_diffuse[self._light] = d['light_diffuse']
        m.light_dir[self._light] = d['light_dir']
        m.vis.headlight.ambient = d['ambient']
        m.vis.headlight.diffuse = d['headlight']
        if self.variant != 'ood_lighting':
            return
        tint = random.uniform(0.55, 1.0, size=3)
        m.light_diffuse[self._light] = random.uniform(0.3, 1.1) * tint
        direction = np.array([random.uniform(-0.8, 0.8), random.uniform(-0.8, 0.8), -1.0])
        m.light_dir[self._light] = direction / np.linalg.norm(direction)
        m.vis.headlight.ambient = [random.uniform(0.1, 0.6)] * 3
        m.vis.headlight.diffuse = [random.uniform(0.1, 0.6)] * 3

    def _sample_camera(self, physics: Physics, random: np.random.Generator) -> None:
        m, d = physics.model, self._defaults
        m.cam_pos[self._camera] = d['cam_pos']
        m.cam_quat[self._camera] = d['cam_quat']
        if self.variant != 'ood_camera':
            return
        eye = d['cam_pos'] + random.uniform(-0.1, 0.1, size=3)
        target = np.array(self.cfg.third_person.target) + random.uniform(-0.05, 0.05, size=3)
        xyaxes = np.array(_scene.look_at_xyaxes(tuple(eye), tuple(target)))
        x, y = xyaxes[:3], xyaxes[3:]
        mat = np.column_stack([x, y, np.cross(x, y)])
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, mat.ravel())
        m.cam_pos[self._camera] = eye
        m.cam_quat[self._camera] = quat

    def objects(self, physics: Physics) -> list[SceneObject]:
        """The objects of this episode, the one to pick first, then the distractors, where they are now."""
        return [SceneObject(color, shape, tuple(float(v) for v in physics.body_pos(body)[:2]))
                for body, color, shape in self._labels]

    def lifted_object(self, physics: Physics) -> int:
        """Index into `objects()` of an object held above the table (0: the named one), -1 when none is."""
        for i, (body, _, shape) in enumerate(self._labels):
            if physics.body_pos(body)[2] > SHAPES[shape].half_height + _LIFTED:
                return i
        return -1

    # --- judging -----------------------------------------------------------------------------------------------
    def object_shape(self) -> ObjectShape:
        return self._shape

    def goal_position(self, physics: Physics) -> np.ndarray:
        plate = physics.model.body_pos[self._plate_body]
        return np.array([plate[0], plate[1], 2 * _PLATE_HALF_HEIGHT + self._shape.half_height])

    def is_failure(self, physics: Physics) -> bool:
        """The object fell off the table, or another object was picked up (the choice is made)."""
        return super().is_failure(physics) or self.lifted_object(physics) > 0

    def step_info(self, physics: Physics) -> dict[str, Any]:
        """Which object is held, and the gripper's xy distance (m) to the named object and to the nearest other one
        (-1 without one): an episode that times out beside the named cube failed to grasp, not to choose."""
        tcp = physics.tcp_pos[:2]
        distances = [round(float(np.linalg.norm(physics.body_pos(body)[:2] - tcp)), 4) for body, _, _ in self._labels]
        return {'lifted_object': self.lifted_object(physics), 'target_distance': distances[0],
                'other_distance': min(distances[1:], default=-1.0)}

    def is_success(self, physics: Physics) -> bool:
        offset = physics.body_pos(self.object_body)[:2] - physics.model.body_pos[self._plate_body][:2]
        inside = float(np.linalg.norm(offset)) < _PLATE_RADIUS - 0.01
        return self._resting_on(physics, 2 * _PLATE_HALF_HEIGHT, inside)
