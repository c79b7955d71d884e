"""control.node_config: the ROS nodes' wiring configs, checked without ROS."""

from __future__ import annotations

import pytest

from maps_vla.control.builtin_policies import SinePolicy, ZeroPolicy
from maps_vla.control.camera import CameraConfig
from maps_vla.control.node_config import (BridgeIOConfig, CameraInput, CameraSourceConfig, PolicyNodeConfig,
                                          camera_plan, make_node_policy)


def test_camera_plan_devices_and_topics():
    cams = CameraConfig(names=('front', 'wrist'))
    assert camera_plan(cams, CameraSourceConfig(devices=('0', 'clip.mp4'))) == [
        CameraInput('front', 0, None, 'camera/front/image_raw'),
        CameraInput('wrist', 'clip.mp4', None, 'camera/wrist/image_raw')]
    driver = CameraConfig(names=('front',), topics=('/rs/color/image_raw',), compressed=True)
    assert camera_plan(driver, CameraSourceConfig()) == [
        CameraInput('front', None, '/rs/color/image_raw/compressed', 'camera/front/image_raw')]


@pytest.mark.parametrize('camera, source, match', [
    (CameraConfig(names=('a', 'b')), CameraSourceConfig(devices=('0',)), 'one entry per camera'),
    (CameraConfig(), CameraSourceConfig(), 'set CameraConfig.topics'),
    (CameraConfig(topics=('/camera/third_person/image_raw',)), CameraSourceConfig(), 'is the output topic itself'),
])
def test_camera_plan_errors(camera, source, match):
    with pytest.raises(ValueError, match=match):
        camera_plan(camera, source)


@pytest.mark.parametrize('cls, kwargs, match', [
    (CameraSourceConfig, dict(fps=0.0), 'fps must be'),
    (CameraSourceConfig, dict(devices=('0', '')), 'empty entries'),
    (PolicyNodeConfig, dict(checkpoint=''), 'checkpoint must name'),
    (PolicyNodeConfig, dict(policy_hz=float('inf')), 'policy_hz must be'),
    (PolicyNodeConfig, dict(action_kind='twist'), "action_kind must be 'ee_delta' or 'joint_position'"),
    (PolicyNodeConfig, dict(horizon=0), 'horizon must be >= 1'),
    (BridgeIOConfig, dict(trajectory_lead=0.0), 'trajectory_lead must be'),
])
def test_config_validation(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_make_node_policy_builtins_and_missing_checkpoint(tmp_path):
    zero = make_node_policy(PolicyNodeConfig(checkpoint='zero', horizon=4))
    assert isinstance(zero, ZeroPolicy) and zero.horizon == 4 and zero.action_spec.kind == 'ee_delta'
    sine = make_node_policy(PolicyNodeConfig(checkpoint='sine', action_kind='joint_position'))
    assert isinstance(sine, SinePolicy) and sine.action_spec.gripper_index == 7
    assert sine.action_spec.names[:7] == tuple(f'fr3_joint{i}' for i in range(1, 8))
    with pytest.raises(FileNotFoundError, match="neither a folder nor a built-in policy"):
        make_node_policy(PolicyNodeConfig(checkpoint=str(tmp_path / 'missing')))
