"""maps_vla.teleop: input devices -> end-effector deltas, a session that records teleoperated sim episodes, and a
stream of actions and recorder calls for the teleop node (`TeleopStream`).

    with make_teleop('keyboard') as device, DatasetWriter.create(root, fps=10, features=env.features) as writer:
        TeleopSession(env, device, writer).run()

Devices: keyboard (terminal, also over SSH), gamepad (pygame, optional), SpaceMouse (hidapi, optional).
"""

from maps_vla.teleop.config_gamepad import GamepadConfig
from maps_vla.teleop.config_keyboard import KeyboardConfig
from maps_vla.teleop.config_session import SessionConfig
from maps_vla.teleop.config_spacemouse import SpaceMouseConfig
from maps_vla.teleop.device import DeviceNotConnectedError, TeleopCommand, TeleopDevice, TeleopEvent
from maps_vla.teleop.factory import TELEOP_DEVICES, make_teleop, make_teleop_config
from maps_vla.teleop.gamepad import GamepadDevice
from maps_vla.teleop.keyboard import KeyboardDevice, QueueKeySource, TerminalKeySource
from maps_vla.teleop.session import SessionResult, TeleopSession
from maps_vla.teleop.spacemouse import SpaceMouseDevice
from maps_vla.teleop.stream import (RecorderCall, TeleopOutput, TeleopStream, TeleopStreamConfig,
                                    make_stream_devices)
from maps_vla.teleop.viewer import LiveView

__all__ = ['TeleopDevice', 'TeleopCommand', 'TeleopEvent', 'DeviceNotConnectedError', 'KeyboardConfig',
           'KeyboardDevice', 'TerminalKeySource', 'QueueKeySource', 'GamepadConfig', 'GamepadDevice',
           'SpaceMouseConfig', 'SpaceMouseDevice', 'TELEOP_DEVICES', 'make_teleop', 'make_teleop_config',
           'SessionConfig', 'TeleopSession', 'SessionResult', 'LiveView', 'TeleopStreamConfig', 'TeleopStream',
           'TeleopOutput', 'RecorderCall', 'make_stream_devices']
