"""Menagerie-style model checks: every scene and task variant compiles and steps under control noise with no
MuJoCo warnings; a user's mujoco_menagerie-style robot file is loaded and name-checked."""

import struct

import mujoco
import numpy as np
import pytest

from maps_vla.sim import EnvConfig, TASK_VARIANTS, make_env, scene

_CASES = [(task, variant) for task, variants in TASK_VARIANTS.items() for variant in variants]


def _step_with_noise(model, data, rng, seconds=1.0, scale=0.02):
    """Step with ctrl = keyframe + noise, as mujoco_menagerie's model_test does."""
    lo, hi = model.actuator_ctrlrange.T
    base = data.ctrl.copy()
    for _ in range(int(seconds / model.opt.timestep)):
        data.ctrl[:] = np.clip(base + scale * (hi - lo) * rng.standard_normal(model.nu), lo, hi)
        mujoco.mj_step(model, data)


def _warnings(data):
    return {mujoco.mjtWarning(i).name: w.number for i, w in enumerate(data.warning) if w.number}


def test_scene_xml_compiles_and_steps_without_warnings():
    model = mujoco.MjModel.from_xml_path(str(scene.ASSET_DIR / 'scene.xml'))
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key('home').id)
    _step_with_noise(model, data, np.random.default_rng(0))
    assert _warnings(data) == {}
    assert np.all(np.isfinite(data.qpos))


def test_model_layout_follows_menagerie():
    spec = mujoco.MjSpec.from_file(str(scene.ASSET_DIR / 'panda.xml'))
    model = spec.compile()
    groups = {model.geom_group[g] for g in range(model.ngeom)}
    assert groups == {2, 3}  # visual geoms in group 2 (no contact), collision in group 3
    visual = [g for g in range(model.ngeom) if model.geom_group[g] == 2]
    assert all(model.geom_contype[g] == 0 and model.geom_conaffinity[g] == 0 for g in visual)
    assert spec.find_default('visual') is not None and spec.find_default('collision') is not None
    assert all(model.actuator(i).name for i in range(model.nu))
    assert model.key('home') is not None
    assert (scene.ASSET_DIR / 'README.md').is_file()


@pytest.mark.parametrize('task,variant', _CASES)
def test_every_task_variant_steps_without_warnings(task, variant):
    env = make_env(EnvConfig(task=task, variant=variant, render=False))
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(15):
        action = np.concatenate([0.01 * rng.standard_normal(6), [rng.uniform()]])
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated and not truncated
    assert env.physics.warnings() == {}
    assert np.all(np.isfinite(env.physics.data.qpos))
    env.close()


def _write_cube_stl(path):
    """A binary STL cube (12 triangles), 2 cm wide."""
    v = np.array([[x, y, z] for x in (-0.01, 0.01) for y in (-0.01, 0.01) for z in (-0.01, 0.01)])
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
             (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    with open(path, 'wb') as f:
        f.write(b'\0' * 80 + struct.pack('<I', len(faces)))
        for a, b, c in faces:
            f.write(struct.pack('<3f', 0, 0, 0) + v[[a, b, c]].astype('<f4').tobytes() + b'\0\0')


def _fake_menagerie_panda(tmp_path):
    """Our panda.xml with mujoco_menagerie's names (joint1.., finger_joint1/2, body 'hand', no TCP site), its
    0..255 gripper actuator, a light, and a mesh geom under compiler meshdir='assets'."""
    text = (scene.ASSET_DIR / 'panda.xml').read_text()
    text = text.replace('panda_finger_joint', 'finger_joint').replace('panda_joint', 'joint')
    text = text.replace('"panda_hand"', '"hand"')
    lines = [line for line in text.splitlines() if '<site name="tcp"' not in line]
    gripper = next(i for i, line in enumerate(lines) if 'name="gripper"' in line)
    lines[gripper] = ('    <general name="actuator8" tendon="split" ctrlrange="0 255" forcerange="-100 100" '
                      'gainprm="0.1254901961" biastype="affine" biasprm="0 -800 -40"/>')
    text = '\n'.join(lines)
    text = text.replace('<compiler angle="radian" autolimits="true"/>',
                        '<compiler angle="radian" meshdir="assets" autolimits="true"/>\n'
                        '  <asset><mesh name="knob" file="knob.stl"/></asset>')
    text = text.replace('<body name="hand"', '<light name="top" pos="0 0 2"/><body name="hand"')
    text = text.replace('<site name="flange"', '<geom type="mesh" mesh="knob" contype="0" conaffinity="0" '
                        'group="2"/><site name="flange"')
    (tmp_path / 'assets').mkdir()
    _write_cube_stl(tmp_path / 'assets' / 'knob.stl')
    path = tmp_path / 'panda.xml'
    path.write_text(text)
    return path


def test_menagerie_style_robot_file_loads_and_runs(tmp_path):
    path = _fake_menagerie_panda(tmp_path)
    spec = scene.load_robot_spec(path)
    assert spec.site(scene.TCP_SITE).parent.name == 'hand' and not list(spec.lights)
    assert spec.mesh('knob') is not None
    env = make_env(EnvConfig(robot_xml=path, image_size=(32, 32)))
    obs = env.reset(seed=0)
    assert obs['observation.images.wrist'].shape == (32, 32, 3)
    expected = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
    assert np.max(np.abs(env.physics.arm_qpos - expected)) <= 0.021  # home + init noise
    for _ in range(10):  # close the gripper: the 0..255 actuator must be driven towards 0
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    assert env.physics.gripper_opening < 0.01
    env.close()


def test_robot_file_without_expected_names_is_rejected(tmp_path):
    path = tmp_path / 'robot.xml'
    path.write_text((scene.ASSET_DIR / 'panda.xml').read_text().replace('panda_joint3', 'elbow'))
    with pytest.raises(ValueError, match='panda_joint3'):
        scene.load_robot_spec(path)
    path.write_text((scene.ASSET_DIR / 'panda.xml').read_text().replace('name="tcp"', 'name="tool"'))
    with pytest.raises(ValueError, match="site 'tcp'"):
        scene.load_robot_spec(path)
    with pytest.raises(FileNotFoundError, match='nowhere.xml'):
        scene.load_robot_spec(tmp_path / 'nowhere.xml')
