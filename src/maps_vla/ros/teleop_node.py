"""teleop_node: a keyboard, gamepad or SpaceMouse driving the robot and the recorder (TeleopStream on a timer).

Every 1/rate_hz s of the node clock (sim time under use_sim_time) polls the device and publishes `action`: a
one-point JointTrajectory stamped with the tick time whose joint_names are `action_names`, the message the smoother
publishes, so franka_bridge_node and recorder_node take it unchanged (the bridge holds each for one action step,
so the arm moves at the commanded speed at any rate_hz >= its action_hz). `instruction` (String) is published at
every episode start and when the dynamic `instruction` parameter changes. The device's episode keys call
`recorder_node/start`, `/stop` and `/discard` (std_srvs/Trigger), and the recorder publishes `episode_events` for
bags; the node follows `episode_events` to know whether an episode is being recorded. Quit ends the node.

Keys: the keyboard (and the discard / quit keys beside a gamepad or SpaceMouse) reads the terminal when stdin is
one, so run `ros2 run maps_vla teleop_node` in its own terminal (`ros2 launch` gives a node no terminal unless
its prefix opens one, e.g. `xterm -e`). It also always reads `~/keys` (String: key names separated by spaces,
spelled as maps_vla.teleop.keyboard.decode_keys does, e.g. 'w w space enter'), for scripts and other terminals.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from maps_vla.control import msg_conversion as mc
from maps_vla.control.chunk import ActionChunk
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import MESSAGE_TYPES, RELIABLE_QOS, now_sec, run_node
from maps_vla.teleop.config_gamepad import GamepadConfig
from maps_vla.teleop.config_keyboard import KeyboardConfig
from maps_vla.teleop.config_spacemouse import SpaceMouseConfig
from maps_vla.teleop.keyboard import QueueKeySource, TerminalKeySource, key_help
from maps_vla.teleop.stream import RecorderCall, TeleopStream, TeleopStreamConfig, make_stream_devices

__all__ = ['TeleopNode', 'main', 'PARAMS']

PARAMS = {'': TeleopStreamConfig, 'keyboard': KeyboardConfig, 'gamepad': GamepadConfig,
          'spacemouse': SpaceMouseConfig}


class TeleopNode(Node):
    """Device -> TeleopStream -> action, instruction and recorder calls; single-threaded."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('teleop_node', **kwargs)
        params = NodeParams(self, PARAMS, dynamic=('instruction',), on_change=self._on_params)
        self.cfg = params['']
        self.keys = QueueKeySource()
        terminal = sys.stdin is not None and sys.stdin.isatty()
        sources = [TerminalKeySource(), self.keys] if terminal else [self.keys]
        device, event_devices = make_stream_devices(self.cfg.device, params[self.cfg.device], sources)
        self.stream = TeleopStream(self.cfg, device, event_devices=event_devices)
        self.stream.connect()
        self._action = self.create_publisher(JointTrajectory, 'action', RELIABLE_QOS)
        self._instruction_pub = self.create_publisher(String, 'instruction', RELIABLE_QOS)
        self._recorder = {call: self.create_client(Trigger, f'recorder_node/{call.value}') for call in RecorderCall}
        self._pending: set[Future] = set()
        self.create_subscription(String, 'episode_events', self._on_episode_event, RELIABLE_QOS)
        self.create_subscription(String, '~/keys', self._on_keys, RELIABLE_QOS)
        self._poll_timer = self.create_timer(1.0 / self.cfg.rate_hz, self._tick)
        keys = 'the terminal and ~/keys' if terminal else '~/keys only (stdin is not a terminal)'
        which = '' if self.cfg.device == 'keyboard' else ' (episode keys only)'
        self.get_logger().info(f'{self.cfg.device} at {self.cfg.rate_hz:g} Hz -> action {list(self.cfg.action_names)}'
                               f'; keys{which} from {keys}:\n{key_help()}')

    def _on_params(self, prefix: str, cfg: TeleopStreamConfig) -> None:
        if prefix == '':
            self.stream.set_instruction(cfg.instruction)

    def _on_keys(self, msg: String) -> None:
        self.keys.push(*mc.string_to_str(msg).split())

    def _on_episode_event(self, msg: String) -> None:
        try:
            self.stream.on_episode_event(mc.string_to_str(msg))
        except ValueError as exc:
            self.get_logger().warning(f'episode_events: {exc}', throttle_duration_sec=5.0)

    def _tick(self) -> None:
        try:
            out = self.stream.step()
        except RuntimeError as exc:  # e.g. an unplugged device: publish nothing, the bridge's watchdog holds
            self.get_logger().error(f'{self.cfg.device}: {exc}', throttle_duration_sec=5.0)
            return
        if out.instruction is not None:
            self._instruction_pub.publish(String(data=out.instruction))
        one = ActionChunk(now_sec(self), out.action[None], 1.0 / self.cfg.rate_hz, self.cfg.action_names)
        self._action.publish(mc.chunk_to_trajectory(MESSAGE_TYPES, one))
        for call in out.calls:
            self._call(call)
        if out.quit:
            self._poll_timer.cancel()
            self.get_logger().info('operator quit')
            self._shutdown_when_idle()

    def _call(self, call: RecorderCall) -> None:
        client = self._recorder[call]
        if not client.service_is_ready():
            name = self.resolve_service_name(client.srv_name)
            self.get_logger().warning(f'recorder {call.value}: {name} is not available (is recorder_node running?)')
            self.stream.on_call_failed(call)
            return
        future = client.call_async(Trigger.Request())
        self._pending.add(future)
        future.add_done_callback(functools.partial(self._on_response, call))

    def _on_response(self, call: RecorderCall, future: Future) -> None:
        self._pending.discard(future)
        error = future.exception()
        response = future.result() if error is None else None
        if response is not None and response.success:
            self.get_logger().info(f'recorder {call.value}: {response.message}')
        else:
            reason = error if error is not None else response.message if response is not None else 'cancelled'
            self.get_logger().warning(f'recorder {call.value} failed: {reason}')
            self.stream.on_call_failed(call)
        self._shutdown_when_idle()

    def _shutdown_when_idle(self) -> None:
        """After quit, end the node once the recorder has answered the last call."""
        if self.stream.done and not self._pending:
            self.context.try_shutdown()

    def destroy_node(self) -> None:
        self.stream.close()  # restores the terminal
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(TeleopNode, args)
