"""smoother_node: action chunks in, one smoothed command per control tick out (ChunkSmoother on a timer).

Subscribes `action_chunk` (JointTrajectory, header.stamp = observation time) and publishes `action`, a one-point
JointTrajectory stamped with the tick time whose joint_names are the action names, at `control_hz`. Publishes the
smoother state ('tracking' / 'holding' / 'rejected') on `~/state` when it changes, and logs it: a hold because the
chunks stopped is a warning that says for how long. A chunk that does not fit (action dims, gripper index) is
rejected and counted, a tick never raises, and nothing non-finite is published.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.node import Node
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from maps_vla.control import msg_conversion as mc
from maps_vla.control.chunk import ActionChunk
from maps_vla.control.smoothing import ChunkSmoother, SmootherConfig
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import MESSAGE_TYPES, RELIABLE_QOS, now_sec, run_node

__all__ = ['SmootherNode', 'main', 'PARAMS']

PARAMS = {'': SmootherConfig}


class SmootherNode(Node):
    """Chunks -> ChunkSmoother -> action, single-threaded (the smoother is not thread-safe)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('smoother_node', **kwargs)
        self.cfg = NodeParams(self, PARAMS)['']
        self.smoother = ChunkSmoother(self.cfg)
        self._names: tuple[str, ...] = ()
        self._state: str | None = None
        self._last_chunk: float | None = None
        self._action = self.create_publisher(JointTrajectory, 'action', RELIABLE_QOS)
        self._state_pub = self.create_publisher(String, '~/state', RELIABLE_QOS)
        self.create_subscription(JointTrajectory, 'action_chunk', self._on_chunk, RELIABLE_QOS)
        self.create_timer(self.cfg.tick_dt, self._tick)

    def _on_chunk(self, msg: JointTrajectory) -> None:
        try:
            chunk = mc.trajectory_to_chunk(msg)
            self.smoother.on_chunk(chunk)
        except ValueError as exc:
            self.get_logger().warning(f'action_chunk rejected ({self.smoother.rejected_chunks} so far): {exc}',
                                      throttle_duration_sec=5.0)
            return
        self._names = chunk.names
        self._last_chunk = now_sec(self)

    def _tick(self) -> None:
        now = now_sec(self)
        try:
            out = self.smoother.tick(now)
        except Exception as exc:  # never let one bad tick kill the command stream; the bridge's watchdog holds
            self.get_logger().error(f'smoother tick failed: {type(exc).__name__}: {exc}', throttle_duration_sec=5.0)
            return
        if out is None or not np.all(np.isfinite(out.command)):
            return
        one = ActionChunk(out.stamp, out.command[None], self.cfg.tick_dt, self._names)
        self._action.publish(mc.chunk_to_trajectory(MESSAGE_TYPES, one))
        if out.state.value != self._state:
            self._log_state(out.state.value, now)
            self._state = out.state.value
            self._state_pub.publish(String(data=self._state))

    def _log_state(self, state: str, now: float) -> None:
        if state == 'tracking':
            self.get_logger().info('tracking action chunks')
        elif state == 'rejected':
            self.get_logger().warning(f'non-finite reference: chunks dropped ({self.smoother.rejected_ticks} so far), '
                                      'holding')
        elif self._last_chunk is not None and now - self._last_chunk > self.cfg.hold_after:
            self.get_logger().warning(f'no action chunk for {now - self._last_chunk:.2f}s: holding (is the policy '
                                      'node running?)')
        else:
            self.get_logger().info('no chunk covers the tick: holding')


def main(args: list[str] | None = None) -> None:
    run_node(SmootherNode, args)
