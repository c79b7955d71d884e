"""control.node_config: the ROS nodes' wiring configs, checked without ROS."""

from __future__ import annotations

import dataclasses
import json

import pytest

from maps_vla.config import to_dict
from maps_vla.control.builtin_policies import SinePolicy, ZeroPolicy
from maps_vla.control.camera import CameraConfig
from maps_vla.control.node_config import (CHECKPOINT_ACTION_SPEC_FILE, CHECKPOINT_CONFIG_FILE, BridgeIOConfig,
                                          CameraInput, CameraSourceConfig, NodeConfigError, PolicyInterface,
                                          PolicyNodeConfig, camera_plan, make_node_policy, node_policy_interface,
                                          resolve_cameras, resolve_policy_io)
from maps_vla.control.proprio import StateConfig, StateKind
from maps_vla.model.vla.configuration_vla import VLAConfig
from maps_vla.policy import ActionSpec


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
    (PolicyNodeConfig, dict(action_kind='twist'), "action_kind must be 'ee_delta', 'joint_position' or ''"),
    (PolicyNodeConfig, dict(state_layout='joints'), 'state_layout must be one of'),
    (PolicyNodeConfig, dict(cameras=('a', 'a')), 'cameras must be 0-2 distinct'),
    (PolicyNodeConfig, dict(action_dim=-1), 'action_dim must be >= 0'),
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


# ------------------------------------------------------------------------------------------------ policy I/O
def _checkpoint(tmp_path, cameras=('third_person', 'wrist'), proprio_dim=8, spec=ActionSpec(), drop=()):
    """A checkpoint folder's config.json and action_spec.json as save_pretrained writes them (no weights)."""
    config = to_dict(VLAConfig(cameras=cameras, proprio_dim=proprio_dim))
    for key in drop:  # an older checkpoint without this key
        del config[key]
    (tmp_path / 'config.json').write_text(json.dumps({'format': 'maps_vla.vla', 'format_version': 1,
                                                      'config': config}))
    (tmp_path / 'action_spec.json').write_text(json.dumps(dataclasses.asdict(spec)))
    return str(tmp_path)


def test_the_interface_of_a_saved_tiny_checkpoint(tmp_path):
    torch = pytest.importorskip('torch')
    from maps_vla.model import checkpoint, make_policy, make_policy_config
    assert CHECKPOINT_CONFIG_FILE == checkpoint.CONFIG_FILE
    assert CHECKPOINT_ACTION_SPEC_FILE == checkpoint.ACTION_SPEC_FILE
    torch.manual_seed(0)
    cfg = make_policy_config('tiny').replace(cameras=('wrist', 'third_person'), proprio_dim=9, action_dim=8)
    spec = ActionSpec(names=(*(f'fr3_joint{i}' for i in range(1, 8)), 'gripper'), kind='joint_position',
                      gripper_index=7)
    make_policy(cfg, action_spec=spec).save_pretrained(tmp_path)
    interface = node_policy_interface(PolicyNodeConfig(checkpoint=str(tmp_path)))
    assert interface == PolicyInterface(str(tmp_path), ('wrist', 'third_person'), 9, spec)


def test_the_demo_policy_in_sim_takes_both_cameras_and_the_ee_layout(tmp_path):
    """The README's deploy command: sim.launch.py with a checkpoint and no cameras (issue 17, defect 1)."""
    cfg = PolicyNodeConfig(checkpoint=_checkpoint(tmp_path), action_kind='ee_delta', action_dim=7, gripper_index=6)
    io = resolve_policy_io(cfg, node_policy_interface(cfg))
    assert io.cameras == ('third_person', 'wrist') and io.state_kind is StateKind.EE_POSE
    assert io.action_spec == ActionSpec()
    explicit = dataclasses.replace(cfg, cameras=('wrist', 'third_person'), state_layout='ee_pose')
    assert resolve_policy_io(explicit, node_policy_interface(explicit)).cameras == ('third_person', 'wrist')


def test_state_layout_follows_the_checkpoint_state_size(tmp_path):
    cfg = PolicyNodeConfig(checkpoint=_checkpoint(tmp_path, proprio_dim=9))
    assert resolve_policy_io(cfg, node_policy_interface(cfg)).state_kind is StateKind.JOINT_POSITIONS
    no_state = PolicyNodeConfig(checkpoint=_checkpoint(tmp_path, proprio_dim=0))
    assert resolve_policy_io(no_state, node_policy_interface(no_state)).state_kind is StateKind.EE_POSE


def test_an_old_checkpoint_without_cameras_gets_the_config_defaults(tmp_path):
    cfg = PolicyNodeConfig(checkpoint=_checkpoint(tmp_path, drop=('cameras', 'proprio_dim')))
    interface = node_policy_interface(cfg)
    assert interface.cameras == VLAConfig().cameras and interface.state_dim == VLAConfig().proprio_dim


@pytest.mark.parametrize('node, checkpoint, match', [
    (dict(cameras=('third_person',)), {}, r"reads cameras \['third_person', 'wrist'\], but cameras \['third_person'\]"),
    (dict(state_layout='joint_positions'), {}, 'takes a 8-D state, but state_layout joint_positions gives 9'),
    ({}, dict(proprio_dim=12), r'takes a 12-D state and no layout has it \(ee_pose 8, joint_positions 9\)'),
    # an ee_delta checkpoint under control_mode:=joint_trajectory and the reverse (issue 17, defect 2)
    (dict(action_kind='joint_position', action_dim=8, gripper_index=7), {},
     'outputs ee_delta actions, but the control mode executes joint_position actions; launch it with '
     'control_mode:=cartesian_impedance or control_mode:=servo'),
    (dict(action_kind='ee_delta', action_dim=7, gripper_index=6),
     dict(spec=ActionSpec(names=tuple('abcdefgh'), kind='joint_position', gripper_index=7)),
     'outputs joint_position actions, but the control mode executes ee_delta actions; launch it with '
     'control_mode:=joint_trajectory'),
    (dict(action_dim=7), dict(spec=ActionSpec(names=tuple('abcdefgh'), gripper_index=7)), 'outputs 8-D actions'),
    (dict(gripper_index=6), dict(spec=ActionSpec(gripper_index=None)), 'gripper command at index None'),
])
def test_mismatches_fail_in_one_line(tmp_path, node, checkpoint, match):
    cfg = PolicyNodeConfig(checkpoint=_checkpoint(tmp_path, **checkpoint), **node)
    with pytest.raises(NodeConfigError, match=match) as info:
        resolve_policy_io(cfg, node_policy_interface(cfg))
    assert '\n' not in str(info.value)


def test_a_joint_policy_recorded_as_ee_delta_is_read_as_joint_position(tmp_path):
    """The trainer writes kind ee_delta whatever the actions are; joint-named actions mean joint positions."""
    names = (*(f'panda_joint{i}' for i in range(1, 8)), 'gripper')
    cfg = PolicyNodeConfig(checkpoint=_checkpoint(tmp_path, spec=ActionSpec(names=names, gripper_index=7)),
                           action_kind='joint_position', action_dim=8, gripper_index=7)
    assert resolve_policy_io(cfg, node_policy_interface(cfg)).action_spec.kind == 'joint_position'


def test_ambiguous_state_size_asks_for_the_layout(tmp_path):
    cfg = PolicyNodeConfig(checkpoint=_checkpoint(tmp_path, proprio_dim=8))
    six_joints = StateConfig(joints=tuple(f'j{i}' for i in range(6)))  # both layouts are 8-D
    with pytest.raises(NodeConfigError, match='both layouts have it'):
        resolve_policy_io(cfg, node_policy_interface(cfg), six_joints)
    explicit = dataclasses.replace(cfg, state_layout='joint_positions')
    assert resolve_policy_io(explicit, node_policy_interface(explicit), six_joints).state_kind is \
        StateKind.JOINT_POSITIONS


def test_builtin_policies_take_the_node_options(tmp_path):
    cfg = PolicyNodeConfig(checkpoint='sine', action_kind='joint_position', action_dim=8, gripper_index=7)
    io = resolve_policy_io(cfg, node_policy_interface(cfg))
    assert io.cameras == ('third_person',) and io.action_spec.kind == 'joint_position'
    assert resolve_cameras(PolicyNodeConfig(cameras=('a', 'b')), node_policy_interface(PolicyNodeConfig())) == \
        ('a', 'b')


@pytest.mark.parametrize('files, match', [((), 'neither a folder'), (('config.json',), 'has no action_spec.json')])
def test_missing_checkpoint_files_are_config_errors(tmp_path, files, match):
    path = tmp_path / 'ckpt'
    if files:
        path.mkdir()
        for name in files:
            (path / name).write_text('{}')
    with pytest.raises(NodeConfigError, match=match):
        node_policy_interface(PolicyNodeConfig(checkpoint=str(path)))
