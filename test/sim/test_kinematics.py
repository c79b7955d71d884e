"""The generated Panda MJCF has the real arm's kinematics (modified DH) and the asset files are current."""

import mujoco
import numpy as np
import pytest

from maps_vla.sim import kinematics as K
from maps_vla.sim import scene


@pytest.fixture(scope='module')
def robot():
    model = scene.load_robot_spec().compile()
    return model, mujoco.MjData(model)


def test_fk_matches_dh_at_random_configurations(robot):
    model, data = robot
    rng = np.random.default_rng(0)
    qadr = [model.joint(n).qposadr[0] for n in scene.ARM_JOINTS]
    for _ in range(200):
        q = rng.uniform(K.JOINT_LOWER, K.JOINT_UPPER)
        data.qpos[qadr] = q
        mujoco.mj_kinematics(model, data)
        for site, frame in (('flange', 'flange'), (scene.TCP_SITE, 'tcp')):
            expected = K.forward_kinematics(q, frame)
            np.testing.assert_allclose(data.site(site).xpos, expected[:3, 3], atol=1e-6)
            np.testing.assert_allclose(data.site(site).xmat.reshape(3, 3), expected[:3, :3], atol=1e-6)


def test_dh_values_known_pose():
    # At q = 0 the Panda's flange is straight above the base: x = 0.088, z = 0.333 + 0.316 + 0.384 - 0.107.
    pose = K.forward_kinematics(np.zeros(7), 'flange')
    np.testing.assert_allclose(pose[:3, 3], [0.088, 0.0, 0.333 + 0.316 + 0.384 - 0.107], atol=1e-12)
    # The ready pose points the tool straight down.
    np.testing.assert_allclose(K.forward_kinematics(np.array(K.HOME_QPOS[:7]))[:3, :3], K.TOOL_DOWN, atol=1e-9)


def test_joint_limits_and_keyframe(robot):
    model, _ = robot
    ranges = np.array([model.joint(n).range for n in scene.ARM_JOINTS])
    np.testing.assert_allclose(ranges[:, 0], K.JOINT_LOWER)
    np.testing.assert_allclose(ranges[:, 1], K.JOINT_UPPER)
    np.testing.assert_allclose(model.key('home').qpos, K.HOME_QPOS)
    assert [model.actuator(i).name for i in range(model.nu)] == [f'actuator{i}' for i in range(1, 8)] + ['gripper']
    assert 16.5 < model.body_subtreemass[0] < 18.5  # Panda + hand is ~17.5 kg


@pytest.mark.parametrize('angle', [0.0, 1e-8, 0.3, 2.0, np.pi - 1e-6, np.pi])
def test_rotvec_round_trip(angle):
    rng = np.random.default_rng(1)
    for _ in range(20):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        rot = K.rotvec_to_matrix(angle * axis)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        back = K.matrix_to_rotvec(rot)
        np.testing.assert_allclose(K.rotvec_to_matrix(back), rot, atol=1e-7)


def test_forward_kinematics_rejects_bad_input():
    with pytest.raises(ValueError, match='shape'):
        K.forward_kinematics(np.zeros(6))
    with pytest.raises(ValueError, match='frame'):
        K.forward_kinematics(np.zeros(7), 'elbow')


def test_committed_assets_are_generated_output():
    for name, text in scene.asset_texts().items():
        assert (scene.ASSET_DIR / name).read_text() == text, f'{name} is stale: run python -m maps_vla.sim.scene'
    assert scene.asset_texts() == scene.asset_texts()  # deterministic


def test_scene_xml_matches_runtime_scene():
    from_file = mujoco.MjModel.from_xml_path(str(scene.ASSET_DIR / 'scene.xml'))
    runtime = scene.build_scene_spec().compile()
    for name in ('table', 'floor'):
        np.testing.assert_allclose(from_file.geom(name).size, runtime.geom(name).size)
        np.testing.assert_allclose(from_file.geom(name).pos, runtime.geom(name).pos)
    np.testing.assert_allclose(from_file.camera(scene.THIRD_PERSON_CAMERA).pos,
                               runtime.camera(scene.THIRD_PERSON_CAMERA).pos)
    assert from_file.nq == runtime.nq and from_file.nu == runtime.nu
