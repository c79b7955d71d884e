"""Runs any `BasePolicy` off the caller's thread and turns its output into time-stamped `ActionChunk`s.

The caller (a ROS timer, the replay loop or the sim loop) feeds the latest images, state and instruction and
calls `request(now)` at the policy rate. `request` never waits: it snapshots the observation, hands it to one
worker thread (one inference in flight at a time; a request while busy is dropped and counted) and returns.
Chunks come back through `callback` (called on the worker thread) and `pop_chunks()`. With `synchronous=True`
inference runs inside `request`, which makes a replay deterministic; `latency` then simulates the inference time:
the chunk is delivered `latency` s after its request and the runner stays busy until then, so the one rule
"a request while a chunk is in flight is dropped" holds for the threaded and the simulated runner alike.

A policy output that is not a (K, A) array of finite numbers is rejected and counted (`errors`, and
`non_finite` for NaN/inf), never delivered. An observation part stamped more than `max_clock_skew` s ahead of the
clock is as unusable as a stale one (a clock skew between machines, or a wrong header stamp) and is logged.
A failing policy is logged with its traceback the first time, then once every `error_log_period` s with a count.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from maps_vla.control.chunk import ActionChunk
from maps_vla.policy import ACTIONS, OBS_IMAGE_PREFIX, OBS_STATE, TASK, ActionSpec, BasePolicy, EE_DELTA_ACTION

__all__ = ['PolicyRunnerConfig', 'PolicyRunner', 'RunnerStats', 'OBS_TIMESTAMP']

logger = logging.getLogger(__name__)

# The observation time in seconds, added to every observation (LeRobot frames carry 'timestamp' too).
OBS_TIMESTAMP = 'timestamp'


@dataclasses.dataclass(frozen=True)
class PolicyRunnerConfig:
    """When an observation is fresh enough to run the policy on."""

    cameras: tuple[str, ...] = ('third_person',)  # cameras every observation needs
    max_obs_age: float = 0.5  # s; an image or state older than this at request time makes the request stale
    require_state: bool = True  # an observation needs a state vector
    require_instruction: bool = True  # an observation needs a non-empty instruction
    synchronous: bool = False  # run inference inside request() (deterministic replay) instead of a worker
    latency_window: int = 200  # how many recent latencies the p50/p95 figures cover
    max_pending: int = 16  # finished chunks kept for pop_chunks(); the oldest is dropped beyond this
    max_clock_skew: float = 0.05  # s an image or state may be stamped ahead of the request time
    latency: float = 0.0  # s, synchronous only: simulated inference time (the chunk arrives this much later)
    error_log_period: float = 10.0  # s between the counted reports of repeated inference failures

    def __post_init__(self) -> None:
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f'PolicyRunnerConfig.cameras must be distinct names, got {list(self.cameras)}')
        if not (self.max_obs_age > 0 and math.isfinite(self.max_obs_age)):
            raise ValueError(f'PolicyRunnerConfig.max_obs_age must be a finite number > 0, got {self.max_obs_age}')
        for name in ('max_clock_skew', 'latency', 'error_log_period'):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f'PolicyRunnerConfig.{name} must be a finite number >= 0, got {value}')
        if self.latency and not self.synchronous:
            raise ValueError(f'PolicyRunnerConfig.latency ({self.latency}) simulates inference time and needs '
                             'synchronous=True; a threaded runner has real latency')
        if self.latency_window < 1 or self.max_pending < 1:
            raise ValueError('PolicyRunnerConfig.latency_window and max_pending must be >= 1, got '
                             f'{self.latency_window} and {self.max_pending}')


@dataclasses.dataclass
class RunnerStats:
    """Counters of a PolicyRunner; latencies in seconds (NaN before the first chunk)."""

    requested: int = 0  # request() calls
    submitted: int = 0  # observations handed to the policy
    completed: int = 0  # chunks delivered
    dropped_busy: int = 0  # requests while an inference was in flight
    dropped_paused: int = 0  # requests while paused, and chunks finished after pause()
    stale: int = 0  # requests whose observation was incomplete or too old
    stale_reasons: dict[str, int] = dataclasses.field(default_factory=dict)  # reason -> count
    errors: int = 0  # policy exceptions and malformed outputs (non-finite ones included)
    non_finite: int = 0  # outputs holding NaN or inf (rejected, never delivered)
    inference_p50: float = math.nan  # policy.infer wall time
    inference_p95: float = math.nan
    latency_p50: float = math.nan  # request() to delivery
    latency_p95: float = math.nan


class PolicyRunner:
    """Holds the latest observation parts and runs the policy on snapshots of them.

    Args:
        policy: any BasePolicy; only the worker thread (or request() when synchronous) calls it.
        cfg: freshness and threading options.
        action_spec: gives the chunk step dt = 1 / control_hz and the action names.
        callback: called with each ActionChunk, on the worker thread (keep it short and thread-safe).
        clock: wall clock for latency figures.
    """

    def __init__(self, policy: BasePolicy, cfg: PolicyRunnerConfig | None = None,
                 action_spec: ActionSpec = EE_DELTA_ACTION, callback: Callable[[ActionChunk], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not isinstance(policy, BasePolicy):
            raise TypeError(f'policy must be a BasePolicy, got {type(policy).__name__}')
        self.policy = policy
        self.cfg = cfg or PolicyRunnerConfig()
        self.action_spec = action_spec
        self._callback = callback
        self._clock = clock
        self._lock = threading.Lock()
        self._images: dict[str, tuple[np.ndarray, float]] = {}
        self._state: tuple[np.ndarray, float] | None = None
        self._instruction = ''
        self._paused = False
        self._busy = False
        self._epoch = 0  # bumped by pause(): chunks from older epochs are discarded
        self._stats = RunnerStats()
        self._infer_s: collections.deque[float] = collections.deque(maxlen=self.cfg.latency_window)
        self._latency_s: collections.deque[float] = collections.deque(maxlen=self.cfg.latency_window)
        self._chunks: collections.deque[ActionChunk] = collections.deque(maxlen=self.cfg.max_pending)
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._in_flight: list[tuple[float, ActionChunk]] = []  # synchronous + latency: (arrival time, chunk)
        self._failures_unreported = 0  # inference failures since the last log line
        self._last_failure_log: float | None = None
        self._skew_logged: set[str] = set()  # parts whose clock skew was logged as a warning
        self._worker: threading.Thread | None = None
        if not self.cfg.synchronous:
            self._worker = threading.Thread(target=self._work, name='policy-runner', daemon=True)
            self._worker.start()

    # ----------------------------------------------------------------------------------------------- inputs
    def on_image(self, camera: str, image: np.ndarray, stamp: float) -> None:
        """Keep `image` (uint8 (H, W, 3) RGB, already preprocessed; not copied) as camera's latest frame."""
        if camera not in self.cfg.cameras:
            raise ValueError(f'Unknown camera {camera!r}; the runner expects {list(self.cfg.cameras)}')
        with self._lock:
            self._images[camera] = (image, float(stamp))

    def on_state(self, state: np.ndarray, stamp: float) -> None:
        """Keep `state` (float (state_dim,), e.g. joint positions) as the latest proprio state."""
        with self._lock:
            self._state = (np.asarray(state, dtype=np.float32).copy(), float(stamp))

    def set_instruction(self, text: str) -> None:
        """Set the language instruction used from the next request on."""
        with self._lock:
            self._instruction = str(text)

    @property
    def instruction(self) -> str:
        return self._instruction

    def pause(self) -> None:
        """Stop requesting; a chunk still being computed is discarded when it finishes."""
        with self._lock:
            self._paused = True
            self._epoch += 1
            if self._in_flight:  # a simulated inference in flight is discarded like a threaded one
                self._in_flight.clear()
                self._busy = False
                self._stats.dropped_paused += 1

    def resume(self) -> None:
        """Accept requests again."""
        with self._lock:
            self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def busy(self) -> bool:
        """True while an inference is in flight."""
        return self._busy

    # --------------------------------------------------------------------------------------------- requests
    def request(self, now: float) -> bool:
        """Snapshot the observation at time `now` (s) and start an inference on it; never waits for one.

        Returns:
            True when an inference was started (or, when synchronous, ran), False when the request was dropped
            (paused, busy, or stale; see stats()).
        """
        self._release(now)
        with self._lock:
            self._stats.requested += 1
            if self._paused:
                self._stats.dropped_paused += 1
                return False
            if self._busy:
                self._stats.dropped_busy += 1
                return False
            reason = self._staleness(now)
            if reason is not None:
                self._stats.stale += 1
                self._stats.stale_reasons[reason] = self._stats.stale_reasons.get(reason, 0) + 1
                logger.debug('observation at %.3f is stale: %s', now, reason)
                return False
            obs, obs_time = self._snapshot()
            self._busy = True
            self._stats.submitted += 1
            job = (obs, obs_time, self._epoch, self._clock())
        if self.cfg.synchronous:
            self._run(job, now)
        else:
            self._jobs.put(job)
        return True

    def _release(self, now: float | None) -> None:
        """Synchronous + latency: deliver the chunk whose simulated inference has finished by `now`."""
        with self._lock:
            if now is None or not self._in_flight or self._in_flight[0][0] > now + 1e-12:
                return
            _, chunk = self._in_flight.pop()
            self._busy = False
            self._stats.completed += 1
            self._chunks.append(chunk)
        if self._callback is not None:
            self._callback(chunk)

    def _staleness(self, now: float) -> str | None:
        """Why the current parts cannot form an observation at `now`, or None when they can."""
        limit = self.cfg.max_obs_age
        for camera in self.cfg.cameras:
            if camera not in self._images:
                return f'no image from {camera}'
            if now - self._images[camera][1] > limit:
                return f'image {camera} older than {limit:g}s'
            if (reason := self._ahead(f'image {camera}', self._images[camera][1], now)) is not None:
                return reason
        if self.cfg.require_state:
            if self._state is None:
                return 'no state'
            if now - self._state[1] > limit:
                return f'state older than {limit:g}s'
            if (reason := self._ahead('state', self._state[1], now)) is not None:
                return reason
        if self.cfg.require_instruction and not self._instruction:
            return 'no instruction'
        return None

    def _ahead(self, part: str, stamp: float, now: float) -> str | None:
        """The reason when `part` is stamped more than max_clock_skew s after `now`, else None."""
        skew = stamp - now
        if skew <= self.cfg.max_clock_skew:
            return None
        log = logger.debug if part in self._skew_logged else logger.warning
        self._skew_logged.add(part)
        log('%s is stamped %.3f s ahead of the clock (stamp %.3f, now %.3f): clock skew beyond max_clock_skew '
            '%gs; the observation is invalid until the clocks agree (check time sync / use_sim_time)',
            part, skew, stamp, now, self.cfg.max_clock_skew)
        return f'{part} stamped ahead of the clock by more than {self.cfg.max_clock_skew:g}s'

    def _snapshot(self) -> tuple[dict[str, Any], float]:
        obs: dict[str, Any] = {OBS_IMAGE_PREFIX + c: self._images[c][0] for c in self.cfg.cameras}
        stamps = [self._images[c][1] for c in self.cfg.cameras]
        if self._state is not None:
            obs[OBS_STATE] = self._state[0]
            stamps.append(self._state[1])
        obs[TASK] = self._instruction
        # The oldest part bounds what the policy saw, so it is the time the chunk's index 0 belongs to.
        obs_time = min(stamps)
        obs[OBS_TIMESTAMP] = obs_time
        return obs, obs_time

    # ----------------------------------------------------------------------------------------------- worker
    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if callable(job):
                job()
                continue
            self._run(job)

    def _run(self, job: tuple[dict[str, Any], float, int, float], now: float | None = None) -> None:
        """Infer on one job; `now` is the request time when synchronous (for the simulated latency)."""
        obs, obs_time, epoch, t_request = job
        chunk = None
        non_finite = False
        try:
            t0 = self._clock()
            out = self.policy.infer(obs)
            t1 = self._clock()
            actions = np.asarray(out[ACTIONS], dtype=np.float64)
            if actions.ndim != 2 or actions.shape[1] != self.action_spec.dim:
                raise ValueError(f'policy returned actions of shape {actions.shape}; expected (K, '
                                 f'{self.action_spec.dim}) for {self.action_spec.names}')
            if not np.all(np.isfinite(actions)):
                non_finite = True
                raise ValueError(f'policy returned {int(np.sum(~np.isfinite(actions)))} non-finite action value(s) '
                                 f'in a chunk of shape {actions.shape}; the chunk is rejected')
            chunk = ActionChunk(stamp=obs_time, actions=actions, dt=1.0 / self.action_spec.control_hz,
                                names=self.action_spec.names)
        except Exception as exc:  # a failing policy must not kill the worker; the control loop holds instead
            self._log_failure(exc)
        with self._lock:
            if chunk is None:
                self._busy = False
                self._stats.errors += 1
                self._stats.non_finite += non_finite
                return
            if epoch != self._epoch:
                self._busy = False
                self._stats.dropped_paused += 1
                return
            self._infer_s.append(t1 - t0)
            if self.cfg.latency and now is not None:  # simulated inference time: deliver later, stay busy
                self._latency_s.append(self.cfg.latency)
                self._in_flight.append((now + self.cfg.latency, chunk))
                return
            self._busy = False
            self._latency_s.append(self._clock() - t_request)
            self._stats.completed += 1
            self._chunks.append(chunk)
        if self._callback is not None:
            self._callback(chunk)

    def _log_failure(self, exc: Exception) -> None:
        """The first failure with its traceback; later ones as one counted line every error_log_period s."""
        now = self._clock()
        if self._last_failure_log is None:
            logger.error('policy inference failed (repeats are counted and reported every %gs)',
                         self.cfg.error_log_period, exc_info=exc)
            self._last_failure_log = now
            return
        self._failures_unreported += 1
        if now - self._last_failure_log >= self.cfg.error_log_period:
            logger.error('policy inference failed %d more time(s) in the last %.1fs; the latest: %s: %s',
                         self._failures_unreported, now - self._last_failure_log, type(exc).__name__, exc)
            self._failures_unreported = 0
            self._last_failure_log = now

    # ---------------------------------------------------------------------------------------------- outputs
    def pop_chunks(self, now: float | None = None) -> list[ActionChunk]:
        """All chunks finished since the last call, oldest first; `now` (s) delivers a simulated one due by then."""
        self._release(now)
        with self._lock:
            chunks = list(self._chunks)
            self._chunks.clear()
        return chunks

    def stats(self) -> RunnerStats:
        """A copy of the counters with current latency percentiles."""
        with self._lock:
            out = dataclasses.replace(self._stats, stale_reasons=dict(self._stats.stale_reasons))
            if self._infer_s:
                out.inference_p50, out.inference_p95 = (float(v) for v in np.percentile(self._infer_s, [50, 95]))
                out.latency_p50, out.latency_p95 = (float(v) for v in np.percentile(self._latency_s, [50, 95]))
        return out

    def reset(self) -> None:
        """Reset the policy (between episodes) on the thread that runs it, after any inference in flight."""
        if self._worker is None:
            self.policy.reset()
            return
        done = threading.Event()

        def job() -> None:
            try:
                self.policy.reset()
            finally:
                done.set()

        self._jobs.put(job)
        done.wait()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker thread (waits up to `timeout` s for an inference in flight)."""
        if self._worker is not None and self._worker.is_alive():
            self._jobs.put(None)
            self._worker.join(timeout)
            if self._worker.is_alive():
                logger.warning('policy worker still busy after %.1fs; leaving it as a daemon thread', timeout)

    def __enter__(self) -> PolicyRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
