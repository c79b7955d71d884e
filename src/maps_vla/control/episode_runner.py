"""Policy episodes on the robot (or the MuJoCo bridge) with success rates, as a plain class with injected steps.

`EpisodeRunner.run()` repeats: reset (MoveIt or the sim, see control/moveit_reset.ResetSequence) -> start recording
-> run the policy for up to `max_seconds` or until the operator marks success / failure (`mark`, called from a
keyboard or service callback on another thread; in sim the task's own success signal may end it too) -> hold
(policy paused, the bridge holds the target) for `hold_seconds` -> stop recording -> append the outcome to
`outcomes.jsonl` -> next. The result is the `EvalReport` of `maps-vla eval` (Wilson intervals, report.md,
summary.csv, episodes.csv), so robot and sim success rates read alike; the recordings of failures and operator
interventions are the next fine-tune's data.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from maps_vla.eval.report import EvalReport, Split, VariantResult
from maps_vla.eval.rollout import EpisodeResult, Outcome

__all__ = ['EpisodeRunnerConfig', 'Mark', 'EpisodeInfo', 'EpisodeRunner', 'OUTCOMES_FILE']

logger = logging.getLogger(__name__)

OUTCOMES_FILE = 'outcomes.jsonl'


@dataclasses.dataclass(frozen=True)
class EpisodeRunnerConfig:
    """How many episodes, how long each may run, and where the report goes."""

    episodes: int = 10  # episodes to run (the operator may abort earlier)
    max_seconds: float = 60.0  # s an episode may run before it counts as a timeout
    hold_seconds: float = 1.0  # s the arm holds after the end before the recording stops
    poll_period: float = 0.05  # s between checks of the operator's mark and the success signal
    seed: int = 0  # seed of the first episode (sim scenes); episode i uses seed + i
    variant: str = 'robot'  # row name in the report (e.g. the task or the scene)
    split: Split = Split.ID  # id or ood
    confidence: float = 0.95  # Wilson interval coverage
    control_hz: float = 10.0  # policy action rate, for the step counts of the report
    out_dir: str = 'outputs/episodes'  # report.md, summary.csv, episodes.csv, outcomes.jsonl
    auto_success: bool = True  # end an episode when the success signal (sim task) turns true
    startup_timeout: float = 300.0  # s the session waits for the nodes it drives (a policy may load for minutes)

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f'EpisodeRunnerConfig.episodes must be >= 1, got {self.episodes}')
        for name in ('max_seconds', 'poll_period', 'control_hz', 'startup_timeout'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'EpisodeRunnerConfig.{name} must be a finite number > 0, got {value}')
        if not (self.hold_seconds >= 0 and math.isfinite(self.hold_seconds)):
            raise ValueError(f'EpisodeRunnerConfig.hold_seconds must be a finite number >= 0, got {self.hold_seconds}')
        if not 0 < self.confidence < 1:
            raise ValueError(f'EpisodeRunnerConfig.confidence must be in (0, 1), got {self.confidence}')
        if not self.variant or not self.out_dir:
            raise ValueError('EpisodeRunnerConfig.variant and out_dir must not be empty')


class Mark(enum.Enum):
    """What the operator says about the running episode."""

    SUCCESS = 'success'
    FAILURE = 'failure'
    ABORT = 'abort'  # end this episode as a failure and stop the session


class EpisodeInfo(NamedTuple):
    """The episode being run: its number in the session, seed and instruction."""

    number: int
    seed: int
    instruction: str


StepOutcome = Any  # a callable's return: None / True = ok, False = failed, or (ok, message)


def _ok(out: StepOutcome) -> tuple[bool, str]:
    if out is None or out is True:
        return True, ''
    if out is False:
        return False, 'returned false'
    if hasattr(out, 'ok'):  # ResetReport / StepResult
        message = out.message() if callable(getattr(out, 'message', None)) else getattr(out, 'message', '')
        return bool(out.ok), str(message)
    return bool(out[0]), str(out[1])


class EpisodeRunner:
    """Runs and scores policy episodes; see the module docstring.

    Args:
        cfg: counts, limits, report options.
        reset: (seed) -> None/bool/(ok, message)/ResetReport; puts the scene and arm at the start, policy paused.
        start_policy: resumes the policy (after the recording started).
        hold: pauses the policy so that the bridge holds the target.
        record_start / record_stop: (EpisodeInfo) -> ...; record_stop returns a message (e.g. the saved episode).
        success: the task's success signal (sim), or None (the operator marks).
        instruction: the current instruction, for the report.
        ready: () -> the names of the services / actions not available yet; the session waits (up to
            cfg.startup_timeout s) until it returns none, so that it does not start before the policy node, which may
            load its checkpoint for minutes. None: start at once.
        clock, sleep: time source (monotonic s) and wait; injected so tests do not wait.
    """

    def __init__(self, cfg: EpisodeRunnerConfig, *, reset: Callable[[int], StepOutcome],
                 start_policy: Callable[[], StepOutcome], hold: Callable[[], StepOutcome],
                 record_start: Callable[[EpisodeInfo], StepOutcome] | None = None,
                 record_stop: Callable[[EpisodeInfo], StepOutcome] | None = None,
                 success: Callable[[], bool] | None = None, instruction: Callable[[], str] = lambda: '',
                 ready: Callable[[], list[str]] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self._reset, self._start, self._hold = reset, start_policy, hold
        self._record_start, self._record_stop = record_start, record_stop
        self._success, self._instruction, self._ready = success, instruction, ready
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._mark: Mark | None = None
        self._aborted = False
        self.results: list[EpisodeResult] = []
        self.running: EpisodeInfo | None = None

    # ------------------------------------------------------------------------------------------------ operator
    def mark(self, mark: Mark | str) -> str:
        """The operator's verdict on the running episode (thread-safe); returns a one-line reply.

        Raises:
            ValueError: an unknown mark name.
        """
        mark = Mark(mark)
        with self._lock:
            if mark is Mark.ABORT:
                self._aborted = True
            if self.running is None and mark is not Mark.ABORT:
                return 'no episode is running'
            self._mark = mark
        return f'episode {self.running.number if self.running else "-"}: {mark.value}'

    def _take_mark(self) -> Mark | None:
        with self._lock:
            mark, self._mark = self._mark, None
            return mark

    # ------------------------------------------------------------------------------------------------ session
    def run(self) -> EvalReport:
        """Run the session; returns the report (also saved under cfg.out_dir with outcomes.jsonl)."""
        out = Path(self.cfg.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        missing = self._wait_ready()
        if missing:
            logger.error('not available after %g s: %s; the session did not start (are those nodes running?)',
                         self.cfg.startup_timeout, ', '.join(missing))
            return self.report()
        for number in range(self.cfg.episodes):
            if self._aborted:
                break
            seed = self.cfg.seed + number
            ok, message = _ok(self._call(self._reset, seed))
            if not ok:
                logger.error('episode %d: reset failed (%s); stopping the session', number, message)
                break
            result = self._episode(EpisodeInfo(number, seed, self._instruction()), out)
            if result is None:
                break
        report = self.report()
        if self.results:
            report.save(out)
        return report

    def _wait_ready(self) -> list[str]:
        """[] once ready() lists nothing (at once without `ready`), else what was still missing at the timeout."""
        if self._ready is None:
            return []
        deadline = self._clock() + self.cfg.startup_timeout
        missing, told = list(self._ready()), False
        while missing and not self._aborted and self._clock() < deadline:
            if not told:
                logger.info('waiting up to %g s for %s', self.cfg.startup_timeout, ', '.join(missing))
                told = True
            self._sleep(max(self.cfg.poll_period, 0.5))
            missing = list(self._ready())
        return missing

    def report(self) -> EvalReport:
        """The episodes so far as `maps-vla eval`'s report."""
        variant = VariantResult(self.cfg.variant, self.cfg.split, list(self.results))
        return EvalReport([variant], fps=self.cfg.control_hz, confidence=self.cfg.confidence,
                          title=f'Episodes: {self.cfg.variant}')

    def _call(self, fn: Callable[..., StepOutcome] | None, *args: Any) -> StepOutcome:
        if fn is None:
            return None
        try:
            return fn(*args)
        except Exception as exc:  # a failed step ends the session with a message, never a traceback loop
            logger.exception('episode step failed')
            return False, f'{type(exc).__name__}: {exc}'

    def _episode(self, info: EpisodeInfo, out: Path) -> EpisodeResult | None:
        self._take_mark()  # a mark given between episodes does not count for this one
        ok, message = _ok(self._call(self._record_start, info))
        if not ok:
            logger.error('episode %d: recording did not start (%s); stopping the session', info.number, message)
            return None
        with self._lock:
            self.running = info
        ok, message = _ok(self._call(self._start))
        start = self._clock()
        outcome = Outcome.FAILURE if not ok else None
        if not ok:
            logger.error('episode %d: the policy did not start (%s)', info.number, message)
        while outcome is None:
            mark = self._take_mark()
            if mark is not None:
                outcome = Outcome.SUCCESS if mark is Mark.SUCCESS else Outcome.FAILURE
            elif self.cfg.auto_success and self._success is not None and self._success():
                outcome = Outcome.SUCCESS
            elif self._clock() - start >= self.cfg.max_seconds:
                outcome = Outcome.TIMEOUT
            else:
                self._sleep(self.cfg.poll_period)
        duration = self._clock() - start
        with self._lock:
            self.running = None
        self._call(self._hold)
        if self.cfg.hold_seconds:
            self._sleep(self.cfg.hold_seconds)
        _, saved = _ok(self._call(self._record_stop, info))
        result = EpisodeResult(seed=info.seed, outcome=outcome, steps=int(round(duration * self.cfg.control_hz)),
                               reward=float(outcome is Outcome.SUCCESS), inferences=0, infer_seconds=0.0,
                               instruction=info.instruction)
        self.results.append(result)
        line = {'episode': info.number, 'seed': info.seed, 'outcome': outcome.value, 'seconds': round(duration, 3),
                'instruction': info.instruction, 'recording': saved, 'aborted': self._aborted}
        with open(out / OUTCOMES_FILE, 'a') as f:
            f.write(json.dumps(line) + '\n')
        successes = sum(r.success for r in self.results)
        logger.info('episode %d: %s after %.1f s (%d/%d successes)', info.number, outcome.value, duration,
                    successes, len(self.results))
        return result
