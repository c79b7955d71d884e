"""Generates the mesh-free Franka Panda MJCF from the kinematic facts in `kinematics.py`.

The text is written to `assets/franka_panda/panda.xml` by `maps_vla.sim.scene.write_assets` (menagerie layout:
robot file, tabletop file, a scene that includes both); a test checks the committed file equals this output.

Each link body sits at the modified-DH transform of its joint (pos = (a, -sin(alpha)·d, cos(alpha)·d),
quat = RotX(alpha)) with its hinge on local z, so MuJoCo's forward kinematics is the DH model exactly. Links are
capsules and cylinders (white links, dark joint housings); each collision primitive carries a share of the link
mass (by volume) and MuJoCo derives the inertia from the primitives.
"""

from __future__ import annotations

import math

from maps_vla.sim import kinematics as _kin

__all__ = ['panda_xml']

# Link masses (kg), franka_ros `inertial.yaml` (Gaz et al. 2019 identification), as used by mujoco_menagerie.
_LINK_MASS = (0.629769, 4.970684, 0.646926, 3.228604, 3.587895, 1.225946, 1.666555, 0.735522)
_HAND_MASS = 0.73
_FINGER_MASS = 0.015
# Position-servo gains and joint armature/damping as in mujoco_menagerie's panda.xml.
_KP = (4500, 4500, 3500, 3500, 2000, 2000, 2000)
_KV = (450, 450, 350, 350, 200, 200, 200)
_ARMATURE = 0.1
_DAMPING = 1.0
_GRIPPER_KP = 800.0  # N per metre of tendon (= mean finger position) error
_GRIPPER_KV = 40.0
_GRIPPER_FORCE = 100.0  # N, tendon force limit (the real hand grasps with up to 70 N continuous)

# Per link: (joint housing radius, housing half-length, link capsule radius).
_LINK_SHAPE = ((0.06, 0.06, 0.06), (0.06, 0.06, 0.06), (0.06, 0.06, 0.06), (0.055, 0.06, 0.055),
               (0.055, 0.055, 0.05), (0.05, 0.05, 0.045), (0.045, 0.045, 0.04))
_WHITE = '0.93 0.93 0.93 1'
_DARK = '0.25 0.25 0.25 1'


def _f(x: float) -> str:
    """Deterministic, compact float text (10 significant digits; no -0)."""
    return format(round(float(x), 10) + 0.0, '.10g')


def _v(*xs: float) -> str:
    return ' '.join(_f(x) for x in xs)


def _capsule_volume(p: tuple[float, ...], q: tuple[float, ...], r: float) -> float:
    return math.pi * r * r * math.dist(p, q) + 4.0 / 3.0 * math.pi * r ** 3


def _cylinder_volume(r: float, half: float) -> float:
    return math.pi * r * r * 2.0 * half


class _Body:
    """Collects the geoms of one body and spreads its mass over the collision primitives by volume."""

    def __init__(self, mass: float) -> None:
        self.mass = mass
        self.shapes: list[tuple[str, str, float, str]] = []  # (attributes, rgba, volume, extra collision attrs)

    def capsule(self, p: tuple[float, ...], q: tuple[float, ...], r: float, rgba: str = _WHITE) -> None:
        self.shapes.append((f'type="capsule" fromto="{_v(*p, *q)}" size="{_f(r)}"', rgba, _capsule_volume(p, q, r), ''))

    def cylinder(self, pos: tuple[float, ...], r: float, half: float, axis: str = 'z', rgba: str = _DARK) -> None:
        quat = {'z': '', 'y': ' quat="0.7071067812 0.7071067812 0 0"', 'x': ' quat="0.7071067812 0 0.7071067812 0"'}
        attrs = f'type="cylinder" pos="{_v(*pos)}" size="{_v(r, half)}"{quat[axis]}'
        self.shapes.append((attrs, rgba, _cylinder_volume(r, half), ''))

    def box(self, pos: tuple[float, ...], half: tuple[float, ...], rgba: str, extra: str = '') -> None:
        self.shapes.append((f'type="box" pos="{_v(*pos)}" size="{_v(*half)}"', rgba, 8 * math.prod(half), extra))

    def geoms(self, indent: str) -> list[str]:
        total = sum(s[2] for s in self.shapes)
        lines = [f'{indent}<geom class="visual" {a} rgba="{c}"/>' for a, c, _, _ in self.shapes]
        lines += [f'{indent}<geom class="collision" {a} mass="{_f(self.mass * vol / total)}"{x}/>'
                  for a, _, vol, x in self.shapes]
        return lines


def _link_geoms(i: int) -> _Body:
    """Geoms of link i (0..7) in its own frame; link i+1's origin is where the link's capsule ends."""
    body = _Body(_LINK_MASS[i])
    if i == 0:
        body.cylinder((0, 0, 0.07), 0.075, 0.07, rgba=_WHITE)
        body.box((-0.07, 0, 0.05), (0.045, 0.06, 0.05), _DARK)
        return body
    r_house, half_house, r_link = _LINK_SHAPE[i - 1]
    body.cylinder((0, 0, 0), r_house, half_house)
    if i == 1:  # the vertical column down to the base
        body.capsule((0, 0, -0.19), (0, 0, -0.06), r_link)
    elif i == 7:  # wrist to flange
        body.capsule((0, 0, 0), (0, 0, _kin.FLANGE_D - 0.03), r_link)
    else:
        a, d, alpha = _kin.DH_A[i], _kin.DH_D[i], _kin.DH_ALPHA[i]
        corner = (a, 0.0, 0.0)
        end = (a, -math.sin(alpha) * d, math.cos(alpha) * d)
        if abs(a) > 1e-9:
            body.capsule((0, 0, 0), corner, r_link)
        if abs(d) > 1e-9:
            shorten = 0.7  # stop short of the next housing
            body.capsule(corner, tuple(c + shorten * (e - c) for c, e in zip(corner, end)), r_link)
    return body


def _hand_geoms() -> _Body:
    body = _Body(_HAND_MASS)
    body.cylinder((0, 0, 0.006), 0.042, 0.006)
    body.box((0, 0, 0.036), (0.023, 0.1, 0.03), _WHITE)
    return body


def _finger_geoms() -> _Body:
    # Finger frame = hand frame shifted to FINGER_OFFSET; it slides along +y; its inner face is at y = 0.001.
    body = _Body(_FINGER_MASS)
    body.box((0, 0.01, 0.027), (0.01, 0.009, 0.027), _DARK, extra=' condim="4" friction="1.5 0.01 0.0001"')
    return body


def panda_xml() -> str:
    """The robot-only MJCF: joints panda_joint1..7, panda_finger_joint1/2, sites `flange` and `tcp`."""
    lines = [
        '<mujoco model="panda">',
        '  <!-- Generated by maps_vla.sim.panda_model from Franka\'s modified-DH parameters; do not edit. -->',
        '  <compiler angle="radian" autolimits="true"/>',
        '  <option integrator="implicitfast"/>',
        '  <default>',
        '    <default class="panda">',
        f'      <joint axis="0 0 1" armature="{_f(_ARMATURE)}" damping="{_f(_DAMPING)}"/>',
        '      <default class="finger">',
        f'        <joint type="slide" axis="0 1 0" range="{_v(*_kin.FINGER_RANGE)}"/>',
        '      </default>',
        '      <default class="visual">',
        '        <geom contype="0" conaffinity="0" group="2" density="0"/>',
        '      </default>',
        '      <default class="collision">',
        '        <!-- contype 2 / conaffinity 1: the arm touches the world and objects, never itself -->',
        '        <geom group="3" contype="2" conaffinity="1"/>',
        '      </default>',
        '    </default>',
        '  </default>',
        '  <worldbody>',
        '    <!-- gravcomp: the links\' gravity is compensated, as by the real arm\'s controller -->',
        '    <body name="panda_link0" childclass="panda" gravcomp="1">',
    ]
    lines += _link_geoms(0).geoms('      ')
    indent = '      '
    for i in range(7):
        a, d, alpha = _kin.DH_A[i], _kin.DH_D[i], _kin.DH_ALPHA[i]
        pos = _v(a, -math.sin(alpha) * d, math.cos(alpha) * d)
        quat = _v(math.cos(alpha / 2), math.sin(alpha / 2), 0, 0)
        lines.append(f'{indent}<body name="panda_link{i + 1}" pos="{pos}" quat="{quat}" gravcomp="1">')
        indent += '  '
        lo, hi = _kin.JOINT_LOWER[i], _kin.JOINT_UPPER[i]
        lines.append(f'{indent}<joint name="panda_joint{i + 1}" range="{_v(lo, hi)}"/>')
        lines += _link_geoms(i + 1).geoms(indent)
    hy = _kin.HAND_YAW
    lines.append(f'{indent}<site name="flange" pos="{_v(0, 0, _kin.FLANGE_D)}" size="0.005"/>')
    lines.append(f'{indent}<body name="panda_hand" pos="{_v(0, 0, _kin.FLANGE_D)}" '
                 f'quat="{_v(math.cos(hy / 2), 0, 0, math.sin(hy / 2))}" gravcomp="1">')
    hand_indent = indent + '  '
    lines += _hand_geoms().geoms(hand_indent)
    lines.append(f'{hand_indent}<site name="tcp" pos="{_v(0, 0, _kin.TCP_OFFSET)}" size="0.005" rgba="1 0 0 0"/>')
    for side, joint, quat in (('left', 1, ''), ('right', 2, ' quat="0 0 0 1"')):
        lines.append(f'{hand_indent}<body name="panda_{side}finger" pos="{_v(0, 0, _kin.FINGER_OFFSET)}"{quat} '
                     'gravcomp="1">')
        lines.append(f'{hand_indent}  <joint name="panda_finger_joint{joint}" class="finger"/>')
        lines += _finger_geoms().geoms(hand_indent + '  ')
        lines.append(f'{hand_indent}</body>')
    lines.append(f'{indent}</body>')
    for i in range(7, 0, -1):
        indent = indent[:-2]
        lines.append(f'{indent}</body>')
    lines += [
        '    </body>',
        '  </worldbody>',
        '  <tendon>',
        '    <!-- tendon length = mean finger position = half the opening width -->',
        '    <fixed name="split">',
        '      <joint joint="panda_finger_joint1" coef="0.5"/>',
        '      <joint joint="panda_finger_joint2" coef="0.5"/>',
        '    </fixed>',
        '  </tendon>',
        '  <equality>',
        '    <joint joint1="panda_finger_joint1" joint2="panda_finger_joint2" solimp="0.95 0.99 0.001" '
        'solref="0.005 1"/>',
        '  </equality>',
        '  <actuator>',
    ]
    for i in range(7):
        lo, hi = _kin.JOINT_LOWER[i], _kin.JOINT_UPPER[i]
        effort = _kin.JOINT_EFFORT[i]
        lines.append(f'    <position class="panda" name="actuator{i + 1}" joint="panda_joint{i + 1}" kp="{_KP[i]}" '
                     f'kv="{_KV[i]}" ctrlrange="{_v(lo, hi)}" forcerange="{_v(-effort, effort)}"/>')
    lines.append(f'    <position class="panda" name="gripper" tendon="split" kp="{_f(_GRIPPER_KP)}" '
                 f'kv="{_f(_GRIPPER_KV)}" ctrlrange="{_v(*_kin.FINGER_RANGE)}" '
                 f'forcerange="{_v(-_GRIPPER_FORCE, _GRIPPER_FORCE)}"/>')
    home = _kin.HOME_QPOS
    lines += [
        '  </actuator>',
        '  <keyframe>',
        f'    <key name="home" qpos="{_v(*home)}" ctrl="{_v(*home[:7], _kin.FINGER_RANGE[1])}"/>',
        '  </keyframe>',
        '</mujoco>',
        '',
    ]
    return '\n'.join(lines)
