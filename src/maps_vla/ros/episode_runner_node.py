"""episode_runner_node: policy episodes with resets, operator marks, recordings and success rates (EpisodeRunner).

Runs control/episode_runner.EpisodeRunner on a worker thread; each step is a blocking call from there while the
executor spins. Reset (control/moveit_reset.ResetSequence): `<policy_node>/pause` -> `<bridge_node>/suspend` true
(no more targets) -> the scene reset service (sim) -> controller_manager `switch_controller` to MoveIt's controller
(robot) -> a MoveGroup joint goal on `move_action` (move_group on the robot; the MuJoCo bridge serves the same
action in sim) -> switch back -> `<bridge_node>/suspend` false (target re-anchored at the new pose) ->
`<policy_node>/reset`. Then `<recorder_node>/start` (when set), `<policy_node>/resume`, and the episode runs until
the operator marks it (`~/success`, `~/failure`, `~/abort` (std_srvs/Trigger) or the `episode_mark` topic: String
success / failure / abort, e.g. from a keyboard), the success topic turns true (sim), or `max_seconds` pass; then
`<policy_node>/pause` (the bridge holds), `<recorder_node>/stop`, and the next. A session first waits (up to
`startup_timeout` s) until all those services and the action exist: the policy node may load its checkpoint for
minutes. `~/reset_arm` runs the reset alone (a start pose before a manual run); `~/start` starts a session when
`io.autostart` is false. The report (report.md, summary.csv, episodes.csv as `maps-vla eval` writes them, plus
outcomes.jsonl) goes to `out_dir`.
"""

from __future__ import annotations

import threading
from typing import Any

from controller_manager_msgs.srv import SwitchController
from moveit_msgs.action import MoveGroup
from rclpy.action import ActionClient
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool, Trigger

from maps_vla.control import msg_conversion as mc
from maps_vla.control.episode_runner import EpisodeInfo, EpisodeRunner, EpisodeRunnerConfig, Mark
from maps_vla.control.moveit_reset import (JointGoal, MoveItConfig, ResetSequence, StepResult, error_name,
                                          move_group_goal)
from maps_vla.control.node_config import EpisodeIOConfig
from maps_vla.ros.clients import call_service, call_trigger, run_action
from maps_vla.ros.params import NodeParams
from maps_vla.ros.runtime import MESSAGE_TYPES, RELIABLE_QOS, now_sec, run_node

__all__ = ['EpisodeRunnerNode', 'main', 'PARAMS']

PARAMS = {'': EpisodeRunnerConfig, 'reset': MoveItConfig, 'io': EpisodeIOConfig}
_STRICT = 2  # controller_manager_msgs/srv/SwitchController STRICT


class EpisodeRunnerNode(Node):
    """Services and actions -> ResetSequence + EpisodeRunner on a worker thread."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('episode_runner_node', **kwargs)
        params = NodeParams(self, PARAMS)
        self.cfg, self.reset_cfg, self.io = params[''], params['reset'], params['io']
        group = ReentrantCallbackGroup()  # calls from the worker thread wait on futures these callbacks complete
        trigger = {name: self.create_client(Trigger, f'{self.io.policy_node}/{name}', callback_group=group)
                   for name in ('pause', 'resume', 'reset')}
        self._policy = trigger
        self._scene = self.create_client(Trigger, self.io.scene_reset, callback_group=group) \
            if self.io.scene_reset else None
        self._recorder = {name: self.create_client(Trigger, f'{self.io.recorder_node}/{name}', callback_group=group)
                          for name in ('start', 'stop')} if self.io.recorder_node else {}
        self._switch_client = self.create_client(
            SwitchController, f'{self.io.controller_manager}/switch_controller', callback_group=group) \
            if self.reset_cfg.moveit_controller else None
        self._move_client = ActionClient(self, MoveGroup, self.io.move_action, callback_group=group)
        self._bridge = self.create_client(SetBool, f'{self.io.bridge_node}/suspend', callback_group=group) \
            if self.io.bridge_node else None
        self._success = False
        self._instruction = ''
        if self.io.success_topic:
            self.create_subscription(Bool, self.io.success_topic, self._on_success, RELIABLE_QOS, callback_group=group)
        self.create_subscription(String, 'instruction', self._on_instruction, RELIABLE_QOS, callback_group=group)
        self.create_subscription(String, 'episode_mark', self._on_mark, RELIABLE_QOS, callback_group=group)
        for mark in Mark:
            self.create_service(Trigger, f'~/{mark.value}', self._mark_service(mark), callback_group=group)
        self.create_service(Trigger, '~/start', self._start, callback_group=group)
        self.create_service(Trigger, '~/reset_arm', self._reset_arm, callback_group=group)
        self.sequence = ResetSequence(
            self.reset_cfg, pause=lambda: self._trigger('pause'), resume=lambda: self._trigger('resume'),
            reset_policy=lambda: self._trigger('reset'), move=self._move,
            switch=self._switch if self._switch_client is not None else None,
            scene=self._reset_scene if self._scene is not None else None,
            bridge=self._suspend_bridge if self._bridge is not None else None)
        self.runner = EpisodeRunner(
            self.cfg, reset=lambda seed: self.sequence.run(seed=seed, resume=False),
            start_policy=lambda: self._trigger('resume'), hold=lambda: self._trigger('pause'),
            record_start=self._record('start') if self._recorder else None,
            record_stop=self._record('stop') if self._recorder else None,
            success=(lambda: self._success) if self.io.success_topic else None,
            instruction=lambda: self._instruction, ready=self._missing)
        self._thread: threading.Thread | None = None
        if self.io.autostart:
            self._launch()
        scene = f' + {self.io.scene_reset}' if self._scene is not None else ''
        self.get_logger().info(f'{self.cfg.episodes} episodes of up to {self.cfg.max_seconds:g} s; reset via '
                               f'{self.io.move_action}{scene}; mark '
                               f'with ~/success, ~/failure, ~/abort or episode_mark; report in {self.cfg.out_dir}')

    # ---------------------------------------------------------------------------------------------- steps
    def _missing(self) -> list[str]:
        """The services and the action a session calls that are not available yet (the policy node may still load)."""
        clients = [*self._policy.values(), *self._recorder.values(),
                   *(c for c in (self._scene, self._bridge, self._switch_client) if c is not None)]
        missing = [c.srv_name for c in clients if not c.service_is_ready()]
        if not self._move_client.server_is_ready():
            missing.append(self.io.move_action)
        return missing

    def _trigger(self, name: str) -> tuple[bool, str]:
        return call_trigger(self._policy[name], Trigger.Request(), self.io.service_timeout)

    def _reset_scene(self, seed: int | None) -> tuple[bool, str]:
        ok, message = call_trigger(self._scene, Trigger.Request(), self.io.service_timeout)
        if ok:
            self._success, self._instruction = False, message or self._instruction
        return ok, message

    def _suspend_bridge(self, suspend: bool) -> tuple[bool, str]:
        return call_trigger(self._bridge, SetBool.Request(data=suspend), self.io.service_timeout)

    def _switch(self, activate: str, deactivate: str) -> tuple[bool, str]:
        request = SwitchController.Request(activate_controllers=[activate], deactivate_controllers=[deactivate],
                                           strictness=_STRICT)
        request.timeout = mc.sec_to_duration(MESSAGE_TYPES, self.io.service_timeout)
        response, why = call_service(self._switch_client, request, self.io.service_timeout + 1.0)
        return (False, why) if response is None else (bool(response.ok), f'{activate} active')

    def _move(self, goal: JointGoal) -> StepResult:
        msg = move_group_goal(MESSAGE_TYPES, self.reset_cfg, goal, now_sec(self))
        result, why = run_action(self._move_client, msg, self.io.move_timeout, 'MoveGroup')
        if result is None:
            return StepResult(False, why)
        code = int(result.error_code.val)
        return StepResult(code == 1, error_name(code))

    def _record(self, name: str):
        def call(info: EpisodeInfo) -> tuple[bool, str]:
            return call_trigger(self._recorder[name], Trigger.Request(), self.io.service_timeout)
        return call

    # ----------------------------------------------------------------------------------------------- inputs
    def _on_success(self, msg: Bool) -> None:
        self._success = bool(msg.data)

    def _on_instruction(self, msg: String) -> None:
        self._instruction = mc.string_to_str(msg)

    def _on_mark(self, msg: String) -> None:
        try:
            self.get_logger().info(self.runner.mark(mc.string_to_str(msg).strip().lower()))
        except ValueError:
            self.get_logger().warning(f'episode_mark {msg.data!r}: use success, failure or abort')

    def _mark_service(self, mark: Mark):
        def serve(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            response.message = self.runner.mark(mark)
            response.success = not response.message.startswith('no episode')
            return response
        return serve

    def _start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = self._launch()
        response.message = 'session started' if response.success else 'a session is running'
        return response

    def _reset_arm(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._thread is not None and self._thread.is_alive():
            response.success, response.message = False, 'a session is running'
            return response
        report = self.sequence.run(resume=False)  # blocks this service thread only (reentrant group)
        response.success, response.message = report.ok, report.message() + ' (policy paused)'
        return response

    def _launch(self) -> bool:
        if self._thread is not None and self._thread.is_alive():
            return False
        self._thread = threading.Thread(target=self._session, name='episode-runner', daemon=True)
        self._thread.start()
        return True

    def _session(self) -> None:
        report = self.runner.run()
        self.get_logger().info('session done:\n' + report.to_markdown())

    def destroy_node(self) -> None:
        self.runner.mark(Mark.ABORT)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(EpisodeRunnerNode, args, threads=4)
