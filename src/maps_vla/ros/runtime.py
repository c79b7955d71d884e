"""What every node shares: the main loop (Humble and Jazzy), message classes for msg_conversion, QoS, clock."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rosidl_runtime_py.utilities import get_interface

from maps_vla.control import msg_conversion as mc
from maps_vla.control.log_forward import forward_logging
from maps_vla.control.node_config import NodeConfigError

__all__ = ['run_node', 'MESSAGE_TYPES', 'SENSOR_QOS', 'RELIABLE_QOS', 'now_sec', 'stamp_or_now']

# 'pkg/msg/Name' -> rclpy class, for the builders of maps_vla.control.msg_conversion. get_interface, not get_message:
# it also returns actions and services ('moveit_msgs/action/MoveGroup'), from which message_class takes the parts
# the builders name the rosbags way ('moveit_msgs/action/MoveGroup_Goal'); get_message refuses those names.
MESSAGE_TYPES: Callable[[str], type] = functools.lru_cache(maxsize=None)(get_interface)
SENSOR_QOS = qos_profile_sensor_data  # best effort, keep last 5: cameras and franka's convenience topics
RELIABLE_QOS = QoSProfile(depth=10)  # reliable, volatile: commands, chunks, instructions (matches `ros2 topic pub`)


def run_node(node_factory: Callable[[], Node], args: list[str] | None = None, *, threads: int = 1) -> None:
    """Init rclpy, spin the node until Ctrl-C or shutdown, then destroy it and shut down.

    `with rclpy.init():` exists only from rclpy 7.4 (Kilted) on; Humble (3.3) and Jazzy (7.1) need this
    try/finally. ExternalShutdownException lives in rclpy.executors on both. After the first Ctrl-C further SIGINTs
    are ignored, so that the node's cleanup (e.g. the recorder finalizing its dataset) is not interrupted by the
    SIGINT that `ros2 launch` forwards on top of the terminal's; launch escalates to SIGTERM if cleanup hangs.
    A `NodeConfigError` while building the node (a configuration it cannot run with) is logged as one fatal line,
    without a traceback, and the process exits with status 1. maps_vla's Python `logging` (the plain classes the
    nodes run) goes to rclpy loggers named after the module, at INFO and above, for the life of the process.

    Args:
        node_factory: builds the node (after rclpy.init).
        args: command-line arguments (None: sys.argv).
        threads: >1 spins a MultiThreadedExecutor with that many threads.
    """
    rclpy.init(args=args)
    undo_logging = forward_logging(get_logger)
    node = None
    try:
        try:
            node = node_factory()
        except NodeConfigError as exc:
            get_logger(getattr(node_factory, '__name__', 'maps_vla')).fatal(str(exc))
            sys.exit(1)  # the finally below shuts rclpy down
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        undo_logging()


def now_sec(node: Node) -> float:
    """The node clock (ROS time: simulated under use_sim_time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def stamp_or_now(node: Node, msg: Any) -> float:
    """`msg.header.stamp` in seconds, or the node clock when the stamp is zero (unset)."""
    stamp = mc.stamp_of(msg)
    return stamp if stamp > 0 else now_sec(node)
