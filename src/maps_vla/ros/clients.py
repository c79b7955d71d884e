"""Blocking service and action calls for code that runs on its own thread (never in an executor callback).

The episode runner and the reset sequence are plain, blocking code (control/episode_runner, control/moveit_reset);
their node runs them on a worker thread while the node's MultiThreadedExecutor spins, so these helpers may wait on
futures. Each returns (ok, message), the step result those classes take.
"""

from __future__ import annotations

import time
from typing import Any

from rclpy.action import ActionClient
from rclpy.client import Client
from rclpy.task import Future

__all__ = ['wait_future', 'call_service', 'call_trigger', 'run_action']


def wait_future(future: Future, timeout: float, poll: float = 0.005) -> bool:
    """Wait (this thread) until `future` is done or `timeout` s passed; True when done.

    Polls instead of add_done_callback: rclpy runs a callback added to a finished future only through an executor.
    """
    deadline = time.monotonic() + timeout
    while not future.done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def call_service(client: Client, request: Any, timeout: float) -> tuple[Any | None, str]:
    """(response, '') or (None, why) for one call of `client`."""
    if not client.wait_for_service(timeout_sec=min(timeout, 5.0)):
        return None, f'service {client.srv_name} is not available'
    future = client.call_async(request)
    if not wait_future(future, timeout):
        return None, f'service {client.srv_name} did not answer within {timeout:g} s'
    return future.result(), ''


def call_trigger(client: Client, request: Any, timeout: float = 10.0) -> tuple[bool, str]:
    """A std_srvs/Trigger (or SetBool) call as (success, message)."""
    response, why = call_service(client, request, timeout)
    if response is None:
        return False, why
    return bool(response.success), str(response.message)


def run_action(client: ActionClient, goal: Any, timeout: float, name: str = 'action') -> tuple[Any | None, str]:
    """Send `goal`, wait for its result; (result, '') or (None, why). A goal still running at timeout is canceled."""
    if not client.wait_for_server(timeout_sec=min(timeout, 5.0)):
        return None, f'{name} server is not available'
    sent = client.send_goal_async(goal)
    if not wait_future(sent, 10.0):
        return None, 'the goal was not acknowledged'
    handle = sent.result()
    if not handle.accepted:
        return None, 'the goal was rejected'
    result = handle.get_result_async()
    if not wait_future(result, timeout):
        handle.cancel_goal_async()
        return None, f'no result within {timeout:g} s (goal canceled)'
    return result.result().result, ''
