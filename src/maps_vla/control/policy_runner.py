"""Runs any `BasePolicy` off the caller's thread and turns its output into time-stamped `ActionChunk`s.

The caller (a ROS timer, the replay loop or the sim loop) feeds the latest images, state and instruction and
calls `request(now)` at the policy rate. `request` never waits: it snapshots the observation, hands it to one
worker thread (one inference in flight at a time; a request while busy is dropped and counted) and returns.
Chunks come back through `callback` (called on the worker thread) and `pop_chunks()`. With `synchronous=True`
inference runs inside `request`, which makes a replay deterministic.
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

    def __post_init__(self) -> None:
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f'PolicyRunnerConfig.cameras must be distinct names, got {list(self.cameras)}')
        if not (self.max_obs_age > 0 and math.isfinite(self.max_obs_age)):
            raise ValueError(f'PolicyRunnerConfig.max_obs_age must be a finite number > 0, got {self.max_obs_age}')
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
    errors: int = 0  # policy exceptions and malformed outputs
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
            self._run(job)
        else:
            self._jobs.put(job)
        return True

    def _staleness(self, now: float) -> str | None:
        """Why the current parts cannot form an observation at `now`, or None when they can."""
        limit = self.cfg.max_obs_age
        for camera in self.cfg.cameras:
            if camera not in self._images:
                return f'no image from {camera}'
            if now - self._images[camera][1] > limit:
                return f'image {camera} older than {limit:g}s'
        if self.cfg.require_state:
            if self._state is None:
                return 'no state'
            if now - self._state[1] > limit:
                return f'state older than {limit:g}s'
        if self.cfg.require_instruction and not self._instruction:
            return 'no instruction'
        return None

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

    def _run(self, job: tuple[dict[str, Any], float, int, float]) -> None:
        obs, obs_time, epoch, t_request = job
        chunk = None
        try:
            t0 = self._clock()
            out = self.policy.infer(obs)
            t1 = self._clock()
            actions = np.asarray(out[ACTIONS], dtype=np.float64)
            if actions.ndim != 2 or actions.shape[1] != self.action_spec.dim:
                raise ValueError(f'policy returned actions of shape {actions.shape}; expected (K, '
                                 f'{self.action_spec.dim}) for {self.action_spec.names}')
            chunk = ActionChunk(stamp=obs_time, actions=actions, dt=1.0 / self.action_spec.control_hz,
                                names=self.action_spec.names)
        except Exception:  # a failing policy must not kill the worker; the control loop holds instead
            logger.exception('policy inference failed')
        with self._lock:
            self._busy = False
            if chunk is None:
                self._stats.errors += 1
                return
            if epoch != self._epoch:
                self._stats.dropped_paused += 1
                return
            self._infer_s.append(t1 - t0)
            self._latency_s.append(self._clock() - t_request)
            self._stats.completed += 1
            self._chunks.append(chunk)
        if self._callback is not None:
            self._callback(chunk)

    # ---------------------------------------------------------------------------------------------- outputs
    def pop_chunks(self) -> list[ActionChunk]:
        """All chunks finished since the last call, oldest first."""
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
