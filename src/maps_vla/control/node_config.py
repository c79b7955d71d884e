"""Wiring options of the ROS nodes that no plain class owns, as flat dataclasses (rclpy-free, so they are tested here).

Each node's parameters are the config of the plain class it wraps (CameraConfig, PolicyRunnerConfig, SafetyConfig,
...) plus, where the node needs more, one of these:
* `CameraSourceConfig` (camera_node): where frames come from (OpenCV devices / video files, or driver topics);
  `camera_plan` resolves it with a CameraConfig into one input and one output per camera.
* `PolicyNodeConfig` (policy_node): the checkpoint, the instruction, the request rate; `make_node_policy` loads it.
* `BridgeIOConfig` (franka_bridge_node): which gripper interface to drive and the joint-trajectory lead time.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from pathlib import Path
from typing import NamedTuple

from maps_vla.control.builtin_policies import BUILTIN_POLICIES, make_policy
from maps_vla.control.camera import CameraConfig
from maps_vla.policy import ActionSpec, BasePolicy

__all__ = ['CameraSourceConfig', 'CameraInput', 'camera_plan', 'PolicyNodeConfig', 'make_node_policy',
           'GripperInterface', 'BridgeIOConfig', 'camera_output_topic']


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
    action_kind: str = 'ee_delta'  # built-in policies only: ee_delta or joint_position (a checkpoint has its own)
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
        if self.action_kind not in ('ee_delta', 'joint_position'):
            raise ValueError(f"PolicyNodeConfig.action_kind must be 'ee_delta' or 'joint_position', got "
                             f'{self.action_kind!r}')
        if self.horizon < 1:
            raise ValueError(f'PolicyNodeConfig.horizon must be >= 1, got {self.horizon}')


def _builtin_spec(kind: str) -> ActionSpec:
    if kind == 'ee_delta':
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

    def __post_init__(self) -> None:
        for name in ('trajectory_lead', 'status_period'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'BridgeIOConfig.{name} must be a finite number > 0, got {value}')
