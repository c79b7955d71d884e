"""Action chunks (~10 Hz, K steps of dt) -> one command per control tick (50-100 Hz).

Three stages per tick:
1. **Chunk blending** (`SmoothingMethod`, one function per method in `SMOOTHING_METHODS`), evaluated at the tick
   time on each chunk's own time axis: a chunk's action i belongs to `stamp + i * dt`, so a chunk stamped in the
   past starts at index (now - stamp) / dt and the actions whose time has passed are never used.
   * `temporal_ensemble` (ACT, arXiv 2304.13705): a = sum_i w_i a^(i) / sum_i w_i over all chunks covering the
     tick, w_i = exp(-m * i), i = 0 the oldest.
   * `crossfade` (linear, LiPo-style): a new chunk fades in over `blend_window` s from its arrival,
     r = (1 - alpha) r_old + alpha r_new; chunks faded out completely are forgotten.
   * `none`: the newest chunk alone.
2. **Interpolation** between a chunk's action steps: `step` (hold), `linear`, or `cubic` (C1 cubic Hermite with
   Catmull-Rom tangents, numpy only; scipy is not installed). The gripper dimension is never interpolated or
   rate-limited: it is thresholded to 0/1.
3. **Limits**: a per-dimension velocity/acceleration/jerk limiter at the tick rate. Each tick picks the
   acceleration closest to a braking-aware target inside [a - j dt, a + j dt], [-a_max, a_max] and the band from
   which velocity can still be ramped to +-v_max under the jerk limit, so finite differences of the output obey all
   three limits.
When no chunk covers the tick, or none arrived for `hold_after` s, the smoother holds: `HoldMode.KEEP` (absolute
actions, e.g. joint positions) decelerates to zero velocity and keeps the position; `HoldMode.ZERO` (delta
actions: a delta is a velocity) ramps the command to zero.

The limiter (`maps_vla.control.limiter.JerkLimiter`) is shared with the safety bridge. The command never holds NaN
or inf: a chunk must be finite (`ActionChunk`), one that does not fit the configuration (action dims, gripper
index, limit sizes) is rejected with ValueError and counted in `rejected_chunks`, and a tick whose blended
reference is not finite (overflow) drops every chunk and holds with state `REJECTED`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from maps_vla.control.chunk import ActionChunk
from maps_vla.control.limiter import UNLIMITED, JerkLimiter
from maps_vla.registry import Registry

__all__ = ['SmoothingMethod', 'Interpolation', 'HoldMode', 'SmootherConfig', 'SmootherState', 'SmootherOutput',
           'ChunkSmoother', 'SMOOTHING_METHODS', 'ensemble_weights', 'check_smoothing']

logger = logging.getLogger(__name__)


class SmoothingMethod(enum.Enum):
    """How overlapping chunks are combined."""

    TEMPORAL_ENSEMBLE = 'temporal_ensemble'
    CROSSFADE = 'crossfade'
    NONE = 'none'


class Interpolation(enum.Enum):
    """How a chunk is read between its action steps."""

    STEP = 'step'
    LINEAR = 'linear'
    CUBIC = 'cubic'


class HoldMode(enum.Enum):
    """What the command does when chunks stop coming."""

    KEEP = 'keep'  # absolute actions: stop moving, keep the last value
    ZERO = 'zero'  # delta actions: ramp the command to zero (no motion)


class SmootherState(enum.Enum):
    TRACKING = 'tracking'  # following the chunks
    HOLDING = 'holding'  # no usable chunk: decelerating / holding
    REJECTED = 'rejected'  # the blended reference was not finite: chunks dropped, holding


@dataclasses.dataclass(frozen=True)
class SmootherConfig:
    """Chunk blending, interpolation and limits; limits are per action dimension in action units per second."""

    method: SmoothingMethod = SmoothingMethod.CROSSFADE  # how overlapping chunks combine
    interpolation: Interpolation = Interpolation.CUBIC  # how a chunk is read between its steps
    control_hz: float = 100.0  # tick rate of the command stream
    ensemble_m: float = 0.01  # temporal_ensemble: w_i = exp(-m i), i = 0 the oldest chunk (ACT uses 0.01)
    blend_window: float = 0.2  # crossfade: seconds over which a new chunk fades in
    hold_after: float = 0.5  # s without a new chunk after which the command holds
    hold_mode: HoldMode = HoldMode.KEEP  # KEEP for absolute actions, ZERO for delta actions
    max_velocity: tuple[float, ...] = ()  # |d command/dt|: 1 value, 1 per dim or per non-gripper dim; () = none
    max_acceleration: tuple[float, ...] = ()  # |d2 command/dt2| per dim
    max_jerk: tuple[float, ...] = ()  # |d3 command/dt3| per dim
    gripper_index: int | None = None  # dimension thresholded to 0/1 instead of smoothed
    gripper_threshold: float = 0.5  # gripper command is 1 (closed) when the blended value >= this

    def __post_init__(self) -> None:
        if not 1.0 <= self.control_hz <= 2000.0:
            raise ValueError(f'SmootherConfig.control_hz must be in [1, 2000] Hz, got {self.control_hz}')
        if not math.isfinite(self.ensemble_m):
            raise ValueError(f'SmootherConfig.ensemble_m must be finite, got {self.ensemble_m}')
        for name in ('blend_window', 'hold_after'):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f'SmootherConfig.{name} must be a finite number > 0, got {value}')
        for name in ('max_velocity', 'max_acceleration', 'max_jerk'):
            values = getattr(self, name)
            if any(not (v > 0) for v in values):
                raise ValueError(f'SmootherConfig.{name} values must be > 0 (inf allowed), got {list(values)}')
        if self.gripper_index is not None and self.gripper_index < 0:
            raise ValueError(f'SmootherConfig.gripper_index must be >= 0 or None, got {self.gripper_index}')

    @property
    def tick_dt(self) -> float:
        return 1.0 / self.control_hz


class SmootherOutput(NamedTuple):
    """One tick's command."""

    stamp: float  # tick time, s
    command: np.ndarray  # float64 (A,), action units; the gripper dim is 0.0 or 1.0
    velocity: np.ndarray  # float64 (A,), command units per second
    state: SmootherState
    seam: bool  # a chunk started to influence the command at this tick


class _Track:
    """One chunk, readable at any time on its own axis (clamped to its first/last action)."""

    def __init__(self, chunk: ActionChunk, interpolation: Interpolation, gripper: int | None, arrival: float | None):
        self.stamp, self.dt, self.end = chunk.stamp, chunk.dt, chunk.end
        self.arrival = arrival  # time of the first tick that saw it (crossfade start)
        a = chunk.actions
        self.k = chunk.horizon
        self.gripper = gripper
        self.raw = a
        self.interpolation = interpolation if self.k > 1 else Interpolation.STEP
        if self.interpolation is Interpolation.CUBIC:
            # Catmull-Rom tangents (per step), one-sided at the ends; per segment c0 + s c1 + s^2 c2 + s^3 c3.
            m = np.empty_like(a)
            m[1:-1] = 0.5 * (a[2:] - a[:-2])
            m[0], m[-1] = a[1] - a[0], a[-1] - a[-2]
            p0, p1, m0, m1 = a[:-1], a[1:], m[:-1], m[1:]
            self.coeffs = (p0, m0, 3 * (p1 - p0) - 2 * m0 - m1, 2 * (p0 - p1) + m0 + m1)
        elif self.interpolation is Interpolation.LINEAR:
            self.coeffs = (a[:-1], a[1:] - a[:-1])

    def covers(self, t: float) -> bool:
        return self.stamp <= t < self.end

    def value(self, t: float) -> np.ndarray:
        u = min(max((t - self.stamp) / self.dt, 0.0), self.k - 1.0)
        if self.interpolation is Interpolation.STEP:
            return self.raw[int(u)]
        i = min(int(u), self.k - 2)
        s = u - i
        if self.interpolation is Interpolation.LINEAR:
            out = self.coeffs[0][i] + s * self.coeffs[1][i]
        else:
            c0, c1, c2, c3 = self.coeffs
            out = c0[i] + s * (c1[i] + s * (c2[i] + s * c3[i]))
        if self.gripper is not None:  # the gripper follows the action steps, never an interpolation
            out[self.gripper] = self.raw[int(u), self.gripper]
        return out


def ensemble_weights(n: int, m: float) -> np.ndarray:
    """ACT temporal-ensemble weights for `n` chunks, oldest first: exp(-m i) / sum_j exp(-m j)."""
    w = np.exp(-m * np.arange(n))
    return w / w.sum()


# A method maps (tracks oldest first, now, cfg) to (reference or None, tracks to keep).
_Method = Callable[[list[_Track], float, SmootherConfig], tuple[np.ndarray | None, list[_Track]]]
SMOOTHING_METHODS: Registry[_Method] = Registry('smoothing method')


@SMOOTHING_METHODS.register(SmoothingMethod.TEMPORAL_ENSEMBLE.value)
def _temporal_ensemble(tracks: list[_Track], now: float, cfg: SmootherConfig):
    live = [t for t in tracks if now < t.end]
    covering = [t for t in live if t.covers(now)]
    if not covering:
        return None, live
    w = ensemble_weights(len(covering), cfg.ensemble_m)
    ref = w[0] * covering[0].value(now)
    for wi, track in zip(w[1:], covering[1:]):
        ref += wi * track.value(now)
    return ref, live


@SMOOTHING_METHODS.register(SmoothingMethod.CROSSFADE.value)
def _crossfade(tracks: list[_Track], now: float, cfg: SmootherConfig):
    if not tracks[-1].covers(now):
        return None, []
    start = 0
    for i in range(len(tracks) - 1, 0, -1):  # the newest chunk that has fully faded in hides all older ones
        if now - tracks[i].arrival >= cfg.blend_window:
            start = i
            break
    tracks = tracks[start:]
    ref = tracks[0].value(now)
    for track in tracks[1:]:
        alpha = (now - track.arrival) / cfg.blend_window
        ref = (1.0 - alpha) * ref + alpha * track.value(now)
    return ref, tracks


@SMOOTHING_METHODS.register(SmoothingMethod.NONE.value)
def _newest(tracks: list[_Track], now: float, cfg: SmootherConfig):
    newest = tracks[-1]
    return (newest.value(now), [newest]) if newest.covers(now) else (None, [])


def check_smoothing(value: str | None, name: str) -> None:
    """ValueError naming the option `name` unless `value` is None (chunks run open-loop) or a smoothing method."""
    if value is not None and value not in SMOOTHING_METHODS:
        raise ValueError(f'{name} must be None or one of {SMOOTHING_METHODS.names()}, got {value!r}')


class _ConstantTrack(_Track):
    """The last command, as the base a crossfade starts from after a hold."""

    def __init__(self, value: np.ndarray, now: float):
        self._value = value.copy()
        self.stamp, self.end, self.arrival = now, math.inf, now

    def value(self, t: float) -> np.ndarray:
        return self._value.copy()


class ChunkSmoother:
    """Turns action chunks into a command per tick; see the module docstring.

    Args:
        cfg: method, interpolation, tick rate and limits.
    """

    def __init__(self, cfg: SmootherConfig | None = None) -> None:
        self.cfg = cfg or SmootherConfig()
        self._method = SMOOTHING_METHODS.get(self.cfg.method.value)
        self.rejected_chunks = 0  # chunks refused by on_chunk (kept across resets)
        self.rejected_ticks = 0  # ticks whose reference was not finite
        self.reset()

    def reset(self, initial: np.ndarray | None = None) -> None:
        """Forget all chunks; the command starts at `initial` (A,) at rest, else at the first reference."""
        self._tracks: list[_Track] = []
        self._pending: list[_Track] = []
        self._last_arrival: float | None = None
        self._last_tick: float | None = None
        self._ref_prev: np.ndarray | None = None
        self._dim: int | None = None
        self._state = SmootherState.HOLDING
        y = None if initial is None else np.asarray(initial, dtype=np.float64).reshape(-1).copy()
        if y is not None and not np.all(np.isfinite(y)):
            raise ValueError(f'ChunkSmoother.reset: initial command must be finite, got {y.tolist()}')
        self._y = None
        if y is not None:
            self._setup(y.size)
            self._y = y
            self._rest()

    def _setup(self, dim: int) -> None:
        """Size the smoother for `dim` action dims; ValueError (changing nothing) when the config does not fit."""
        g = self.cfg.gripper_index
        if g is not None and g >= dim:
            raise ValueError(f'SmootherConfig.gripper_index {g} is outside the {dim} action dims')
        limits = [self._limit(name, dim) for name in ('max_velocity', 'max_acceleration', 'max_jerk')]
        self._limiter = JerkLimiter(*limits, self.cfg.tick_dt)
        self._cont = np.ones(dim, dtype=bool)
        if g is not None:
            self._cont[g] = False
        self._dim = dim

    def _rest(self) -> None:
        """Zero velocity and acceleration at the current command."""
        self._limiter.reset()
        self._r_dot = np.zeros(self._dim)
        self._ref_prev = None

    def _limit(self, name: str, dim: int) -> np.ndarray:
        """Per-dim limit: one value for all, one per dim, or one per non-gripper dim."""
        values = np.asarray(getattr(self.cfg, name), dtype=np.float64)
        out = np.full(dim, UNLIMITED)
        g = self.cfg.gripper_index
        if values.size in (1, dim):
            out[:] = values
        elif g is not None and values.size == dim - 1:
            out[np.arange(dim) != g] = values
        elif values.size:
            raise ValueError(f'SmootherConfig.{name} has {values.size} values for {dim} action dims (give 1, {dim}'
                             f'{"" if g is None else f" or {dim - 1} without the gripper"})')
        return np.minimum(out, UNLIMITED)

    @property
    def state(self) -> SmootherState | None:
        """None before the first command."""
        return self._state if self._y is not None and self._last_tick is not None else None

    def on_chunk(self, chunk: ActionChunk) -> None:
        """Take a new chunk; it starts to count at the next tick (its crossfade starts there).

        Raises:
            ValueError: a chunk that does not fit: action dims other than the earlier chunks', or a gripper index or
                limit list that does not fit its dims (the chunk is dropped and counted in `rejected_chunks`).
        """
        try:
            if not isinstance(chunk, ActionChunk):
                raise ValueError(f'expected an ActionChunk, got {type(chunk).__name__}')
            if self._dim is None:
                self._setup(chunk.dim)
            elif chunk.dim != self._dim:
                raise ValueError(f'chunk has {chunk.dim} action dims, the smoother runs with {self._dim}')
        except ValueError:
            self.rejected_chunks += 1
            raise
        with np.errstate(over='ignore', invalid='ignore'):  # an overflow is caught (non-finite reference) at tick
            self._pending.append(_Track(chunk, self.cfg.interpolation, self.cfg.gripper_index, None))

    def tick(self, now: float) -> SmootherOutput | None:
        """The command at time `now` (s); None until the first chunk has been seen."""
        if self._dim is None:
            return None
        seam = bool(self._pending)
        if self._pending:
            if self.cfg.method is SmoothingMethod.CROSSFADE and self._y is not None and (
                    not self._tracks or not self._tracks[-1].covers(now)):
                self._tracks = [_ConstantTrack(self._y, now)]  # fade in from the held command
            for track in self._pending:
                track.arrival = now
            self._tracks.extend(self._pending)
            self._pending.clear()
            self._last_arrival = now
        if self._last_tick is not None and now <= self._last_tick:
            return self._output(now, seam)
        dt = self.cfg.tick_dt if self._last_tick is None else min(now - self._last_tick, 2 * self.cfg.tick_dt)
        self._last_tick = now
        ref = None
        n_tracks = len(self._tracks)
        if self._tracks and now - self._last_arrival <= self.cfg.hold_after:
            with np.errstate(over='ignore', invalid='ignore'):  # a non-finite reference is rejected below
                ref, self._tracks = self._method(self._tracks, now, self.cfg)
        if ref is None:
            self._tracks = []
        if self._y is None:
            if ref is None:  # the only chunks seen have already expired
                self._last_tick = None
                return None
            if not np.all(np.isfinite(ref)):
                self._reject(ref, now)
                self._last_tick = None
                return None
            self._y = ref.copy()
            if self.cfg.hold_mode is HoldMode.ZERO:
                self._y[self._cont] = 0.0
            self._rest()
        if ref is not None and not np.all(np.isfinite(ref)):
            self._reject(ref, now)
            ref = None
            self._state = SmootherState.REJECTED
        else:
            self._state = SmootherState.TRACKING if ref is not None else SmootherState.HOLDING
        self._step(ref, dt, seam or len(self._tracks) != n_tracks)
        return self._output(now, seam)

    def _reject(self, ref: np.ndarray, now: float) -> None:
        """Drop every chunk after a non-finite reference (e.g. an overflow of huge actions); the command holds."""
        if self.rejected_ticks == 0:
            logger.warning('smoother reference at %.3f s is not finite (%s): all chunks dropped, holding (further '
                           'ones are counted in rejected_ticks)', now, ref.tolist())
        self.rejected_ticks += 1
        self._tracks = []
        self._ref_prev = None

    @property
    def velocity(self) -> np.ndarray | None:
        """The command's velocity (A,), None before the first command."""
        return None if self._y is None else self._limiter.v.copy()

    def _output(self, now: float, seam: bool) -> SmootherOutput:
        return SmootherOutput(now, self._y.copy(), self._limiter.v.copy(), self._state, seam)

    def _step(self, ref: np.ndarray | None, dt: float, tracks_changed: bool) -> None:
        y, c, limiter = self._y, self._cont, self._limiter
        if ref is None:
            self._ref_prev = None
            if self.cfg.hold_mode is HoldMode.KEEP:
                v_new = limiter.stop(dt, c)
            else:
                v_new = limiter.velocity_towards(-y, np.zeros_like(y), dt, c)
        else:
            # The reference's own velocity, fed forward; a jump from a changed set of chunks is not a velocity.
            if self._ref_prev is not None and not tracks_changed:
                self._r_dot = (ref - self._ref_prev) / dt
            self._ref_prev = ref
            v_new = limiter.velocity_towards(ref - y, self._r_dot, dt, c)
            g = self.cfg.gripper_index
            if g is not None:
                y[g] = 1.0 if ref[g] >= self.cfg.gripper_threshold else 0.0
        y_new = y + v_new * dt
        if ref is not None and limiter.free.any():  # dims without any limit follow the reference exactly
            y_new[limiter.free] = ref[limiter.free]
        y[c] = y_new[c]
