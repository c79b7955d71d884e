"""control.episode_runner: reset -> record -> run until a mark, success or timeout -> hold -> save, on a fake clock."""

from __future__ import annotations

import json
import logging

import pytest

from maps_vla.control.episode_runner import OUTCOMES_FILE, EpisodeRunner, EpisodeRunnerConfig, Mark
from maps_vla.control.moveit_reset import ResetReport, ResetStep, StepResult
from maps_vla.eval.report import Split
from maps_vla.eval.rollout import Outcome
from maps_vla.eval.wilson import wilson_interval


class Robot:
    """A fake robot session: a clock that advances on sleep, and scripted operator marks / success signals.

    script: per episode, (seconds after the start, 'success' | 'failure' | 'abort' | 'signal') or None (timeout).
    """

    def __init__(self, script, reset_ok=True):
        self.now = 100.0
        self.script = list(script)
        self.reset_ok = reset_ok
        self.log: list[str] = []
        self.runner: EpisodeRunner | None = None
        self.episode = -1
        self.started = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        event = self.script[self.episode] if 0 <= self.episode < len(self.script) else None
        if event and self.runner.running is not None and self.now - self.started >= event[0] and \
                event[1] != 'signal':
            self.runner.mark(event[1])

    def signal(self):
        event = self.script[self.episode]
        return bool(event and event[1] == 'signal' and self.now - self.started >= event[0])

    def reset(self, seed):
        self.log.append(f'reset {seed}')
        self.episode += 1
        return ResetReport([(ResetStep.MOVE, StepResult(self.reset_ok, '' if self.reset_ok else 'PLANNING_FAILED'))])

    def start(self):
        self.log.append('start')
        self.started = self.now

    def hold(self):
        self.log.append('hold')

    def record_start(self, info):
        self.log.append(f'record {info.number}')

    def record_stop(self, info):
        self.log.append(f'save {info.number}')
        return True, f'saved episode {info.number}'

    def make(self, tmp_path, ready=None, **kwargs):
        cfg = EpisodeRunnerConfig(out_dir=str(tmp_path), **{'episodes': len(self.script), 'max_seconds': 30.0,
                                                            'hold_seconds': 1.0, **kwargs})
        self.runner = EpisodeRunner(cfg, reset=self.reset, start_policy=self.start, hold=self.hold,
                                    record_start=self.record_start, record_stop=self.record_stop,
                                    success=self.signal, instruction=lambda: 'put the cube away',
                                    ready=ready, clock=self.clock, sleep=self.sleep)
        return self.runner


def test_marks_timeouts_and_the_eval_report(tmp_path):
    robot = Robot([(5.0, 'success'), (3.0, 'failure'), None, (12.0, 'signal')])
    report = robot.make(tmp_path, seed=40, variant='cube', split=Split.OOD).run()
    outcomes = [e.outcome for e in report.variants[0].episodes]
    assert outcomes == [Outcome.SUCCESS, Outcome.FAILURE, Outcome.TIMEOUT, Outcome.SUCCESS]
    assert [e.seed for e in report.variants[0].episodes] == [40, 41, 42, 43]
    assert robot.log[:6] == ['reset 40', 'record 0', 'start', 'hold', 'save 0', 'reset 41']
    row = report.aggregate(Split.OOD)
    assert (row.successes, row.episodes) == (2, 4) and (row.low, row.high) == pytest.approx(wilson_interval(2, 4))
    assert (tmp_path / 'report.md').read_text() == report.to_markdown()  # maps-vla eval's artefacts
    assert (tmp_path / 'summary.csv').is_file() and (tmp_path / 'episodes.csv').is_file()
    lines = [json.loads(line) for line in (tmp_path / OUTCOMES_FILE).read_text().splitlines()]
    assert [line['outcome'] for line in lines] == ['success', 'failure', 'timeout', 'success']
    assert lines[0]['seconds'] == pytest.approx(5.0, abs=0.06) and lines[2]['seconds'] == pytest.approx(30.0, abs=0.06)
    assert lines[0]['recording'] == 'saved episode 0' and lines[0]['instruction'] == 'put the cube away'


def test_abort_ends_the_episode_as_a_failure_and_the_session(tmp_path):
    robot = Robot([(2.0, 'success'), (1.0, 'abort'), (1.0, 'success')])
    report = robot.make(tmp_path).run()
    assert [e.outcome for e in report.variants[0].episodes] == [Outcome.SUCCESS, Outcome.FAILURE]
    assert 'reset 2' not in robot.log


def test_a_failed_reset_stops_before_recording(tmp_path):
    robot = Robot([(2.0, 'success')], reset_ok=False)
    report = robot.make(tmp_path).run()
    assert report.variants[0].episodes == [] and robot.log == ['reset 0']
    assert not (tmp_path / 'report.md').exists()


def test_marks_outside_an_episode_do_not_count(tmp_path):
    robot = Robot([(3.0, 'failure')])
    runner = robot.make(tmp_path)
    assert runner.mark(Mark.SUCCESS) == 'no episode is running'
    assert runner.run().variants[0].episodes[0].outcome is Outcome.FAILURE
    with pytest.raises(ValueError):
        runner.mark('great')


def test_the_sim_success_signal_can_be_ignored(tmp_path):
    robot = Robot([(1.0, 'signal')])
    report = robot.make(tmp_path, auto_success=False, max_seconds=4.0).run()
    assert report.variants[0].episodes[0].outcome is Outcome.TIMEOUT


@pytest.mark.parametrize('kwargs, match', [(dict(episodes=0), 'episodes'), (dict(max_seconds=0.0), 'max_seconds'),
                                           (dict(hold_seconds=-1.0), 'hold_seconds'),
                                           (dict(confidence=1.0), 'confidence')])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpisodeRunnerConfig(**kwargs)


def test_the_session_waits_for_the_nodes_it_drives(tmp_path, caplog):
    """On the Jazzy build sim.launch.py episodes:=2 stopped at once: the runner's first reset found no
    /policy_node/pause while the policy node was still loading its checkpoint (about 25 s there) (issue 17)."""
    caplog.set_level(logging.INFO, logger='maps_vla.control.episode_runner')
    robot = Robot([(2.0, 'success')])
    waits = iter([['/policy_node/pause', '/move_action'], ['/move_action'], []])
    runner = robot.make(tmp_path, ready=lambda: next(waits))
    started = robot.now
    report = runner.run()
    assert robot.log[0] == 'reset 0' and len(report.variants[0].episodes) == 1
    assert robot.now - started >= 1.0  # two polls before the first reset
    assert 'waiting up to 300 s for /policy_node/pause, /move_action' in caplog.text

    never = Robot([(2.0, 'success')])
    runner = never.make(tmp_path / 'never', ready=lambda: ['/policy_node/pause'], startup_timeout=5.0)
    assert runner.run().variants[0].episodes == [] and never.log == []
    assert 'not available after 5 s: /policy_node/pause' in caplog.text
