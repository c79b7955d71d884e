"""Wiring options of the ROS nodes that no plain class owns, as flat dataclasses (rclpy-free, so they are tested here).

Each node's parameters are the config of the plain class it wraps (CameraConfig, PolicyRunnerConfig, SafetyConfig,
...) plus, where the node needs more, one of these:
* `CameraSourceConfig` (camera_node): where frames come from (OpenCV devices / video files, or driver topics);
  `camera_plan` resolves it with a CameraConfig into one input and one output per camera.
* `PolicyNodeConfig` (policy_node): the checkpoint, the instruction, the request rate; `make_node_policy` loads it.
  `node_policy_interface` reads what the policy expects (cameras, state size, action spec) from the checkpoint's
  JSON files without loading it, and `resolve_policy_io` fills the node's unset cameras / state layout from it and
  checks what was set (and the action kind the control mode needs), raising `NodeConfigError` in one line.
* `BridgeIOConfig` (franka_bridge_node): which gripper interface to drive, the joint-trajectory lead time, and
  whether the bounded target goes to the impedance controller or to MoveIt Servo as twists.
* `EpisodeIOConfig` (episode_runner_node): which services and actions reset, run, mark and record an episode; the
  same runner drives the robot (MoveIt + controller switch) and the MuJoCo bridge (scene reset + its MoveGroup).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
from pathlib import Path
from typing import NamedTuple

from maps_vla.control.builtin_policies import BUILTIN_POLICIES, make_policy
from maps_vla.control.camera import CameraConfig
from maps_vla.control.proprio import StateConfig, StateKind
from maps_vla.policy import ActionSpec, BasePolicy, action_kind_from_names

__all__ = ['CameraSourceConfig', 'CameraInput', 'camera_plan', 'PolicyNodeConfig', 'make_node_policy',
           'GripperInterface', 'BridgeIOConfig', 'EpisodeIOConfig', 'camera_output_topic', 'NodeConfigError',
           'PolicyInterface',
           'node_policy_interface', 'PolicyIO', 'resolve_cameras', 'resolve_policy_io', 'CONTROL_MODE_KINDS']

logger = logging.getLogger(__name__)

# The files of a checkpoint folder read here (names as in maps_vla.model.checkpoint, which needs torch to import).
CHECKPOINT_CONFIG_FILE = 'config.json'
CHECKPOINT_ACTION_SPEC_FILE = 'action_spec.json'
BUILTIN_CAMERAS = ('third_person',)  # cameras a built-in policy is given (it ignores them)
# control mode -> the action kind it executes (docs: control.launch.py's control_mode argument)
CONTROL_MODE_KINDS = {'cartesian_impedance': 'ee_delta', 'servo': 'ee_delta', 'joint_trajectory': 'joint_position'}


class NodeConfigError(ValueError):
    """A node configuration that cannot run (e.g. the policy and the launch disagree); nodes report it in one line."""


# ------------------------------------------------------------------------------------------------------ camera
@dataclasses.dataclass(frozen=True)
class CameraSourceConfig:
    """Where the camera node reads frames."""

    devices: tuple[str, ...] = ()  # per camera an OpenCV device index ('0') or a video file; () = driver topics
    fps: float = 30.0  # s^-1; how often a device or video file is read
    preprocess: bool = True  # publish the policy resolution (CameraConfig width/height) instead of the full frame
    loop: bool = True  # restart a video file at its end

    def __post_init__(self) -> None:
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f'CameraSourceConfig.fps must be a finite number > 0, got {self.fps}')
        if any(not d for d in self.devices):
            raise ValueError(f'CameraSourceConfig.devices must not hold empty entries, got {list(self.devices)}')


class CameraInput(NamedTuple):
    """One camera of the camera node: read `device` (int index or file path) or subscribe `topic`; publish `output`."""

    name: str
    device: int | str | None
    topic: str | None
    output: str


def camera_output_topic(name: str) -> str:
    """The topic the camera node (and the sim bridge) publishes camera `name` on."""
    return f'camera/{name}/image_raw'


def camera_plan(camera: CameraConfig, source: CameraSourceConfig) -> list[CameraInput]:
    """Resolve each camera's input and output.

    With `source.devices` each camera reads its device (a digit string is an OpenCV index); without, each camera
    subscribes to its `camera.topics` entry, which must then be given (the default topic is the output itself).

    Raises:
        ValueError: a device list of the wrong length, or driver topics missing or equal to an output topic.
    """
    plan = []
    if source.devices:
        if len(source.devices) != len(camera.names):
            raise ValueError(f'CameraSourceConfig.devices needs one entry per camera {list(camera.names)}, got '
                             f'{list(source.devices)}')
        for name, device in zip(camera.names, source.devices):
            plan.append(CameraInput(name, int(device) if device.isdigit() else device, None,
                                    camera_output_topic(name)))
        return plan
    if not camera.topics:
        raise ValueError('without CameraSourceConfig.devices the camera node re-publishes driver topics: set '
                         "CameraConfig.topics (one per camera, e.g. ['/camera/color/image_raw'])")
    for name in camera.names:
        topic = camera.topic(name)
        if topic.strip('/') == camera_output_topic(name):
            raise ValueError(f'camera {name!r}: driver topic {topic!r} is the output topic itself; remap the driver')
        plan.append(CameraInput(name, None, topic, camera_output_topic(name)))
    return plan


# ------------------------------------------------------------------------------------------------------ policy
@dataclasses.dataclass(frozen=True)
class PolicyNodeConfig:
    """What the policy node runs and how often it asks for a chunk."""

    checkpoint: str = 'zero'  # checkpoint folder, or a built-in test policy: 'zero' (no motion), 'sine'
    device: str = 'auto'  # torch device of a checkpoint: auto (cuda when available), cpu, cuda, cuda:1 ...
    instruction: str = ''  # language instruction until one arrives on the instruction topic
    policy_hz: float = 10.0  # s^-1; chunk requests (a request while one is running is dropped and counted)
    cameras: tuple[str, ...] = ()  # camera names; () = the checkpoint's (built-in policies: third_person)
    state_layout: str = ''  # observation.state: ee_pose or joint_positions; '' = the one of the checkpoint's size
    action_kind: str = ''  # ee_delta or joint_position, as the control mode executes; '' = the checkpoint's
    action_dim: int = 0  # action dimensions the smoother and bridge expect; 0 = no check
    gripper_index: int | None = None  # action dimension the smoother and bridge read as the gripper; None = no check
    horizon: int = 10  # built-in policies only: actions per chunk
    start_paused: bool = False  # wait for the resume service before the first request
    stats_period: float = 5.0  # s between runner statistics on ~/stats and in the log

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise ValueError('PolicyNodeConfig.checkpoint must name a checkpoint folder or a built-in policy')
        for name in ('policy_hz', 'stats_period'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'PolicyNodeConfig.{name} must be a finite number > 0, got {value}')
        if self.action_kind not in ('', 'ee_delta', 'joint_position'):
            raise ValueError(f"PolicyNodeConfig.action_kind must be 'ee_delta', 'joint_position' or '' (the "
                             f"checkpoint's), got {self.action_kind!r}")
        layouts = [k.value for k in StateKind]
        if self.state_layout not in ('', *layouts):
            raise ValueError(f"PolicyNodeConfig.state_layout must be one of {layouts} or '' (from the checkpoint), "
                             f'got {self.state_layout!r}')
        if len(self.cameras) > 2 or len(set(self.cameras)) != len(self.cameras) or not all(self.cameras):
            raise ValueError(f'PolicyNodeConfig.cameras must be 0-2 distinct non-empty names, got {list(self.cameras)}')
        if self.horizon < 1:
            raise ValueError(f'PolicyNodeConfig.horizon must be >= 1, got {self.horizon}')
        if self.action_dim < 0 or (self.gripper_index is not None and self.gripper_index < 0):
            raise ValueError(f'PolicyNodeConfig.action_dim must be >= 0 and gripper_index >= 0 or None, got '
                             f'{self.action_dim} and {self.gripper_index}')


def _builtin_spec(kind: str) -> ActionSpec:
    if kind in ('', 'ee_delta'):
        return ActionSpec()
    names = (*(f'fr3_joint{i}' for i in range(1, 8)), 'gripper')
    return ActionSpec(names=names, kind='joint_position', gripper_index=7)


def make_node_policy(cfg: PolicyNodeConfig) -> BasePolicy:
    """The policy `cfg` names: a built-in (with the 10 Hz ActionSpec of action_kind) or a checkpoint folder.

    Raises:
        FileNotFoundError: a path-like checkpoint that does not exist.
        ValueError: neither a built-in name nor a folder.
    """
    if cfg.checkpoint in BUILTIN_POLICIES:
        return make_policy(cfg.checkpoint, _builtin_spec(cfg.action_kind), horizon=cfg.horizon)
    path = Path(cfg.checkpoint).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f'checkpoint {cfg.checkpoint!r} is neither a folder nor a built-in policy '
                                f'({", ".join(BUILTIN_POLICIES.names())})')
    import torch  # only a checkpoint needs torch

    from maps_vla.model.factory import load_policy

    device = cfg.device if cfg.device != 'auto' else ('cuda' if torch.cuda.is_available() else 'cpu')
    return load_policy(path, device=device)


@dataclasses.dataclass(frozen=True)
class PolicyInterface:
    """What a policy reads and writes, as far as the node must match it."""

    source: str  # the checkpoint folder or built-in name (for messages)
    cameras: tuple[str, ...] | None  # views in order; None: any (a built-in policy ignores its images)
    state_dim: int | None  # proprio size; 0: the policy takes no state; None: any (built-in)
    action_spec: ActionSpec


def node_policy_interface(cfg: PolicyNodeConfig) -> PolicyInterface:
    """The interface of the policy `cfg` names, read from the checkpoint's config.json / action_spec.json
    (no torch, no weights: a mismatch fails before the model loads).

    Raises:
        NodeConfigError: a checkpoint folder that does not exist, lacks one of the two files or holds others.
    """
    if cfg.checkpoint in BUILTIN_POLICIES:
        return PolicyInterface(cfg.checkpoint, None, None, _builtin_spec(cfg.action_kind))
    path = Path(cfg.checkpoint).expanduser()
    if not path.is_dir():
        raise NodeConfigError(f'checkpoint {cfg.checkpoint!r} is neither a folder nor a built-in policy '
                                f'({", ".join(BUILTIN_POLICIES.names())})')
    files = {}
    for name in (CHECKPOINT_CONFIG_FILE, CHECKPOINT_ACTION_SPEC_FILE):
        if not (path / name).is_file():
            raise NodeConfigError(f'checkpoint {cfg.checkpoint!r} has no {name}; is it a maps_vla checkpoint '
                                    '(written by save_pretrained)?')
        files[name] = json.loads((path / name).read_text())
    config = files[CHECKPOINT_CONFIG_FILE].get('config')
    if not isinstance(config, dict):
        raise NodeConfigError(f'{str(path / CHECKPOINT_CONFIG_FILE)!r} holds no "config" section; is '
                              f'{cfg.checkpoint!r} a maps_vla checkpoint?')
    spec = files[CHECKPOINT_ACTION_SPEC_FILE]
    try:
        action_spec = ActionSpec(**{**spec, 'names': tuple(spec['names'])})
    except (KeyError, TypeError, ValueError) as exc:
        raise NodeConfigError(f'{str(path / CHECKPOINT_ACTION_SPEC_FILE)!r} is not an ActionSpec: {exc}') from exc
    # Defaults of VLAConfig for keys an older config.json may lack.
    cameras = tuple(config.get('cameras', ('third_person', 'wrist')))
    return PolicyInterface(cfg.checkpoint, cameras, int(config.get('proprio_dim', 8)), _recorded_kind(action_spec))


def _recorded_kind(spec: ActionSpec) -> ActionSpec:
    """`spec`, with kind joint_position when every non-gripper action is named after a joint.

    Checkpoints trained before train/trainer.py recorded the kind say 'ee_delta' for joint-position policies
    (names panda_joint1..7, gripper); their names tell the truth.
    """
    if spec.kind == 'ee_delta' and action_kind_from_names(spec.names, spec.gripper_index) == 'joint_position':
        logger.warning('action_spec.json says ee_delta but names joints %s: treating the policy as joint_position',
                       spec.names)
        return dataclasses.replace(spec, kind='joint_position')
    return spec


class PolicyIO(NamedTuple):
    """The node's resolved inputs and outputs."""

    cameras: tuple[str, ...]
    state_kind: StateKind
    action_spec: ActionSpec


def _modes(kind: str) -> str:
    return ' or '.join(f'control_mode:={m}' for m, k in CONTROL_MODE_KINDS.items() if k == kind)


def resolve_cameras(cfg: PolicyNodeConfig, interface: PolicyInterface) -> tuple[str, ...]:
    """The node's cameras: `cfg.cameras` when set (they must be the policy's), else the policy's.

    Raises:
        NodeConfigError: set cameras that are not the ones the checkpoint was trained with.
    """
    if interface.cameras is None:
        return tuple(cfg.cameras or BUILTIN_CAMERAS)
    if cfg.cameras and set(cfg.cameras) != set(interface.cameras):
        raise NodeConfigError(f'policy {interface.source!r} reads cameras {list(interface.cameras)}, but cameras '
                              f"{list(cfg.cameras)} were set; leave cameras empty to use the checkpoint's")
    return tuple(interface.cameras)


def resolve_policy_io(cfg: PolicyNodeConfig, interface: PolicyInterface,
                      state: StateConfig | None = None) -> PolicyIO:
    """The cameras, state layout and action spec the policy node runs with.

    Unset node options (`cameras` (), `state_layout` '', `action_kind` '') take the policy's; set ones must agree
    with it. The state layout is recorded in a checkpoint only as its size, so '' picks the layout of `state`'s
    joints and fingers that has that size.

    Args:
        cfg: the node options.
        interface: from `node_policy_interface`.
        state: the node's state joints and fingers (its `kind` is ignored).

    Raises:
        NodeConfigError: a mismatch the node cannot resolve, in one line that says what to change.
    """
    state = state or StateConfig()
    where = f'policy {interface.source!r}'
    cameras = resolve_cameras(cfg, interface)
    # state layout
    dims = {k: dataclasses.replace(state, kind=k).dim for k in StateKind}
    if cfg.state_layout:
        kind = StateKind(cfg.state_layout)
        if interface.state_dim and dims[kind] != interface.state_dim:
            names = ', '.join(dataclasses.replace(state, kind=kind).names)
            raise NodeConfigError(f'{where} takes a {interface.state_dim}-D state, but state_layout '
                                  f'{kind.value} gives {dims[kind]} ({names}); '
                                  f"set state_layout to '' or fix state.joints / state.finger_joints")
    elif not interface.state_dim:  # built-in, or a policy without proprio: the layout does not matter
        kind = StateKind.EE_POSE
    else:
        fits = [k for k in StateKind if dims[k] == interface.state_dim]
        if len(fits) != 1:
            sizes = ', '.join(f'{k.value} {d}' for k, d in dims.items())
            what = 'both layouts have it' if fits else 'no layout has it'
            raise NodeConfigError(f'{where} takes a {interface.state_dim}-D state and {what} ({sizes}); set '
                                  'state_layout and state.joints / state.finger_joints to the training data\'s')
        kind = fits[0]
    # actions
    spec = interface.action_spec
    if cfg.action_kind and spec.kind != cfg.action_kind:
        raise NodeConfigError(f'{where} outputs {spec.kind} actions, but the control mode executes '
                              f'{cfg.action_kind} actions; launch it with {_modes(spec.kind)}')
    if cfg.action_dim and spec.dim != cfg.action_dim:
        raise NodeConfigError(f'{where} outputs {spec.dim}-D actions {list(spec.names)}, but the smoother and '
                              f'bridge expect {cfg.action_dim}-D {cfg.action_kind or spec.kind} actions')
    if cfg.gripper_index is not None and spec.gripper_index != cfg.gripper_index:
        raise NodeConfigError(f'{where} has its gripper command at index {spec.gripper_index}, but the smoother '
                              f'and bridge read it at {cfg.gripper_index}')
    return PolicyIO(tuple(cameras), kind, spec)


# ------------------------------------------------------------------------------------------------------ bridge
class GripperInterface(enum.Enum):
    """How the franka bridge drives the gripper."""

    FRANKA = 'franka'  # franka_msgs Move (open) / Grasp (close) actions on franka_gripper/{move,grasp}
    GRIPPER_COMMAND = 'gripper_command'  # control_msgs GripperCommand on franka_gripper/gripper_action
    NONE = 'none'  # no gripper commands


@dataclasses.dataclass(frozen=True)
class BridgeIOConfig:
    """What the franka bridge talks to, beyond the safety limits."""

    gripper: GripperInterface = GripperInterface.FRANKA  # gripper action interface
    trajectory_lead: float = 0.05  # s; time_from_start of the one-point joint trajectory sent each tick
    status_period: float = 1.0  # s between safety status messages while the status does not change
    servo: bool = False  # ee_delta: stream TwistStamped toward the bounded target to MoveIt Servo (servo_twist)

    def __post_init__(self) -> None:
        for name in ('trajectory_lead', 'status_period'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'BridgeIOConfig.{name} must be a finite number > 0, got {value}')


# ------------------------------------------------------------------------------------------------------ episodes
@dataclasses.dataclass(frozen=True)
class EpisodeIOConfig:
    """What the episode runner node calls; '' switches a part off."""

    policy_node: str = '/policy_node'  # its ~/pause, ~/resume, ~/reset (std_srvs/Trigger)
    bridge_node: str = '/franka_bridge_node'  # its ~/suspend (std_srvs/SetBool) around a reset; '' = none
    move_action: str = '/move_action'  # MoveGroup action: move_group's, or the MuJoCo bridge's
    scene_reset: str = ''  # std_srvs/Trigger resetting the scene; '' = none (robot); sim: /mujoco_bridge_node/reset
    controller_manager: str = '/controller_manager'  # its switch_controller (used when reset.moveit_controller is set)
    recorder_node: str = ''  # its ~/start, ~/stop (std_srvs/Trigger); '' = no dataset recording
    success_topic: str = ''  # std_msgs/Bool success signal ('' = none, the operator marks; sim: /sim/success)
    move_timeout: float = 60.0  # s a reset motion may take
    service_timeout: float = 10.0  # s a service may take to answer
    autostart: bool = True  # start the session at once (false: on ~/start)

    def __post_init__(self) -> None:
        for name in ('move_timeout', 'service_timeout'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'EpisodeIOConfig.{name} must be a finite number > 0, got {value}')
        if not self.policy_node or not self.move_action:
            raise ValueError('EpisodeIOConfig.policy_node and move_action must name the policy node and the MoveGroup '
                             'action')
