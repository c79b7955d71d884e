"""Builds the tabletop scene around a Panda robot file: table, floor, light, both policy cameras, CPU render settings.

The robot comes from the generated `assets/franka_panda/panda.xml` or from a user's local mujoco_menagerie
`franka_emika_panda/panda.xml` (realistic meshes). Everything else is added here with MjSpec, so the same code
serves both. `write_assets()` writes the menagerie-style asset folder: `panda.xml`, `tabletop.xml` (this module's
table, made from an empty spec) and `scene.xml` that includes both; run `python -m maps_vla.sim.scene` after a
change (a test checks the committed files are current).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import mujoco
import numpy as np

from maps_vla.sim import kinematics as _kin
from maps_vla.sim import panda_model as _panda_model
from maps_vla.sim.config_env import CameraView

__all__ = [
    'ASSET_DIR', 'ARM_JOINTS', 'FINGER_JOINTS', 'TCP_SITE', 'THIRD_PERSON_CAMERA', 'WRIST_CAMERA', 'CAMERAS',
    'TABLE_HALF', 'TABLE_CENTER_X', 'look_at_xyaxes', 'load_robot_spec',
    'robot_joint_names', 'add_tabletop', 'build_scene_spec', 'asset_texts', 'write_assets',
]

logger = logging.getLogger(__name__)

ASSET_DIR = Path(__file__).resolve().parent / 'assets' / 'franka_panda'
ARM_JOINTS = tuple(f'panda_joint{i}' for i in range(1, 8))
FINGER_JOINTS = ('panda_finger_joint1', 'panda_finger_joint2')
TCP_SITE = 'tcp'
THIRD_PERSON_CAMERA = 'third_person'
WRIST_CAMERA = 'wrist'
CAMERAS = (THIRD_PERSON_CAMERA, WRIST_CAMERA)

# mujoco_menagerie's franka_emika_panda/panda.xml names its joints differently, its hand body is 'hand' and it has
# no TCP site; such a file is used with its own joint names (renaming would orphan its actuators and tendon).
_MENAGERIE_ARM_JOINTS = tuple(f'joint{i}' for i in range(1, 8))
_MENAGERIE_FINGER_JOINTS = ('finger_joint1', 'finger_joint2')
_MENAGERIE_HAND = 'hand'

# Wrist camera in the hand frame: on the +x side of the hand, looking along the fingers, tilted towards them.
_WRIST_POS = (0.07, 0.0, 0.04)
_WRIST_TILT = math.radians(20.0)
_WRIST_FOVY = 75.0
TABLE_HALF = (0.55, 0.6, 0.02)  # table box half-sizes (m); its top is the plane z = 0
TABLE_CENTER_X = 0.3


def look_at_xyaxes(eye: tuple[float, ...], target: tuple[float, ...]) -> list[float]:
    """MuJoCo camera `xyaxes` (image right, image up) for a camera at `eye` looking at `target`, z up."""
    forward = np.subtract(target, eye, dtype=float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return [*right, *np.cross(right, forward)]


def _wrist_xyaxes() -> list[float]:
    view = np.array([-math.sin(_WRIST_TILT), 0.0, math.cos(_WRIST_TILT)])  # towards the fingers
    right = np.array([0.0, 1.0, 0.0])
    return [*right, *np.cross(-view, right)]  # image up = outwards (+x): the fingers appear at the bottom


def robot_joint_names(joint_names: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (7 arm, 2 finger) joint names a robot model uses: ours (`panda_joint1..7`, `panda_finger_joint1/2`) or
    mujoco_menagerie's (`joint1..7`, `finger_joint1/2`).

    Raises:
        ValueError: if neither complete set is present; names what is missing.
    """
    for arm, fingers in ((ARM_JOINTS, FINGER_JOINTS), (_MENAGERIE_ARM_JOINTS, _MENAGERIE_FINGER_JOINTS)):
        if all(n in joint_names for n in (*arm, *fingers)):
            return arm, fingers
    missing = [n for n in (*ARM_JOINTS, *FINGER_JOINTS) if n not in joint_names]
    raise ValueError(f'robot model lacks joints {", ".join(missing)}; expected panda_joint1..7 and '
                     f"panda_finger_joint1/2 (or mujoco_menagerie's joint1..7 and finger_joint1/2)")


def load_robot_spec(path: Path | None = None) -> mujoco.MjSpec:
    """Load a Panda robot MJCF and check it has the names the env drives.

    Args:
        path: a robot-only MJCF; None for the generated `assets/franka_panda/panda.xml`. A mujoco_menagerie
            `franka_emika_panda/panda.xml` is accepted as it is: its joints `joint1..7`/`finger_joint1/2` are
            used under their own names and a `tcp` site is added 0.1034 m along its `hand` body.

    Returns:
        The spec (not compiled), without the robot file's own lights.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the arm/finger joints or the `tcp` site (or menagerie's `hand` body) are missing.
    """
    path = ASSET_DIR / 'panda.xml' if path is None else Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f'robot MJCF {str(path)!r} does not exist')
    spec = mujoco.MjSpec.from_file(str(path))
    try:
        robot_joint_names({j.name for j in spec.joints})
    except ValueError as err:
        raise ValueError(f'robot MJCF {str(path)!r}: {err}') from None
    if spec.site(TCP_SITE) is None:
        if spec.body(_MENAGERIE_HAND) is None:
            raise ValueError(f"robot MJCF {str(path)!r} has neither a site {TCP_SITE!r} nor a body "
                             f"{_MENAGERIE_HAND!r} to put it on")
        spec.body(_MENAGERIE_HAND).add_site(name=TCP_SITE, pos=[0.0, 0.0, _kin.TCP_OFFSET], size=[0.005] * 3)
    for light in list(spec.lights):
        spec.delete(light)
    return spec


def add_tabletop(spec: mujoco.MjSpec, view: CameraView = CameraView()) -> None:
    """Add the table (top at z = 0, robot base at the origin), floor, key light and the third-person camera."""
    # Plain materials: on llvmpipe a textured table cost ~1 ms of a 1.7 ms 224x224 frame.
    spec.add_material(name='table', rgba=[0.54, 0.42, 0.31, 1.0], specular=0.1, shininess=0.1)
    spec.add_material(name='floor', rgba=[0.3, 0.32, 0.35, 1.0], specular=0.0)
    world = spec.worldbody
    world.add_light(name='key', type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL, pos=[0.6, -0.5, 1.8],
                    dir=[-0.2, 0.25, -1.0], castshadow=False, diffuse=[0.7, 0.7, 0.7], specular=[0.1, 0.1, 0.1])
    # A box rather than a plane (which MuJoCo draws as a grid of quads); it rendered as fast or slightly faster.
    world.add_geom(name='floor', type=mujoco.mjtGeom.mjGEOM_BOX, pos=[0.0, 0.0, -0.76], size=[3.0, 3.0, 0.01],
                   material='floor', contype=0, conaffinity=0)
    world.add_geom(name='table', type=mujoco.mjtGeom.mjGEOM_BOX, pos=[TABLE_CENTER_X, 0.0, -TABLE_HALF[2]],
                   size=list(TABLE_HALF), material='table')
    world.add_camera(name=THIRD_PERSON_CAMERA, pos=list(view.eye), fovy=view.fovy,
                     xyaxes=look_at_xyaxes(view.eye, view.target))
    spec.visual.headlight.ambient = [0.4, 0.4, 0.4]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    spec.visual.headlight.specular = [0.0, 0.0, 0.0]
    # llvmpipe renders 10-20x faster without the shadow map and multisampling (docs/reference/sim_env.md §1).
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    # Fixed model extent: camera clipping planes scale with it, and the big floor box would push znear (1 % of the
    # extent) past the wrist camera's view of the fingers.
    spec.stat.extent = 1.5
    spec.stat.center = [0.3, 0.0, 0.2]
    spec.visual.quality.numslices = 16  # capsule/cylinder tessellation (default 28 x 16): ~0.7 ms less per frame
    spec.visual.quality.numstacks = 8


def build_scene_spec(robot_xml: Path | None = None, *, timestep: float = 0.002,
                     image_size: tuple[int, int] = (224, 224), view: CameraView = CameraView()) -> mujoco.MjSpec:
    """The robot + tabletop + wrist camera spec that tasks add their objects to.

    Args:
        robot_xml: see `load_robot_spec`.
        timestep: physics step in seconds.
        image_size: (height, width) of the largest image that will be rendered offscreen.
        view: the third-person camera's pose and field of view.

    Returns:
        An uncompiled MjSpec.
    """
    spec = load_robot_spec(robot_xml)
    spec.modelname = 'panda_tabletop'
    add_tabletop(spec, view)
    hand = spec.site(TCP_SITE).parent
    hand.add_camera(name=WRIST_CAMERA, pos=list(_WRIST_POS), xyaxes=_wrist_xyaxes(), fovy=_WRIST_FOVY)
    spec.option.timestep = timestep
    # Grasping: elliptic friction cones with a high impratio stop the slow creep of a held object that soft
    # pyramidal contacts allow (a cube slid ~3 cm down the fingers in 10 s without this).
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    # Like the real arm's controller, compensate the links' gravity, so the position servos hold their targets
    # without sag (otherwise the TCP droops by millimetres, depending on the pose). panda.xml sets it already;
    # a menagerie robot file does not.
    for body in _robot_bodies(spec):
        body.gravcomp = 1.0
    spec.visual.global_.offheight = max(int(image_size[0]), 1)
    spec.visual.global_.offwidth = max(int(image_size[1]), 1)
    return spec


def _robot_bodies(spec: mujoco.MjSpec) -> list:
    root = spec.joint(robot_joint_names({j.name for j in spec.joints})[0][0]).parent
    while root.parent.name != spec.worldbody.name:
        root = root.parent
    return [root, *root.find_all(mujoco.mjtObj.mjOBJ_BODY)]


def _tabletop_xml() -> str:
    spec = mujoco.MjSpec()
    spec.modelname = 'tabletop'
    add_tabletop(spec)
    return spec.to_xml()


def _scene_xml() -> str:
    return '\n'.join([
        '<mujoco model="panda tabletop scene">',
        '  <!-- Generated by maps_vla.sim.scene.write_assets; the env builds the same scene with MjSpec. -->',
        '  <include file="panda.xml"/>',
        '  <include file="tabletop.xml"/>',
        '  <option timestep="0.002" cone="elliptic" impratio="10"/>',
        '</mujoco>',
        '',
    ])


def asset_texts() -> dict[str, str]:
    """File name -> text of every generated file in the asset folder."""
    return {'panda.xml': _panda_model.panda_xml(), 'tabletop.xml': _tabletop_xml(), 'scene.xml': _scene_xml()}


def write_assets(directory: Path = ASSET_DIR) -> list[Path]:
    """Write panda.xml, tabletop.xml and scene.xml into `directory`; returns the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in asset_texts().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
        logger.info('wrote %s', path)
    return written


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO)
    write_assets()
