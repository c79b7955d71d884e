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
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from maps_vla.control.chunk import ActionChunk
from maps_vla.registry import Registry

__all__ = ['SmoothingMethod', 'Interpolation', 'HoldMode', 'SmootherConfig', 'SmootherState', 'SmootherOutput',
           'ChunkSmoother', 'SMOOTHING_METHODS', 'ensemble_weights']

_UNLIMITED = 1e30  # stands for "no limit": the limiter needs no inf/NaN cases, and its cubes stay finite
_BRAKE_ACC, _BRAKE_JERK = 0.7, 0.5  # fractions of the limits the braking curve is planned with
_KV_TICKS, _KP_RATIO = 0.3, 0.25  # small-signal gains: velocity loop k_v = 0.3 / dt, position loop k_p = k_v / 4


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
        self.reset()

    def reset(self, initial: np.ndarray | None = None) -> None:
        """Forget all chunks; the command starts at `initial` (A,) at rest, else at the first reference."""
        self._tracks: list[_Track] = []
        self._pending: list[_Track] = []
        self._last_arrival: float | None = None
        self._last_tick: float | None = None
        self._ref_prev: np.ndarray | None = None
        self._dim: int | None = None
        self._y = None if initial is None else np.asarray(initial, dtype=np.float64).copy()
        self._v = self._a = None
        if self._y is not None:
            self._setup(self._y.size)

    def _setup(self, dim: int) -> None:
        self._dim = dim
        self._vmax, self._amax, self._jmax = (self._limit(name, dim) for name in
                                              ('max_velocity', 'max_acceleration', 'max_jerk'))
        self._free = (self._vmax >= _UNLIMITED) & (self._amax >= _UNLIMITED) & (self._jmax >= _UNLIMITED)
        g = self.cfg.gripper_index
        if g is not None and g >= dim:
            raise ValueError(f'SmootherConfig.gripper_index {g} is outside the {dim} action dims')
        self._cont = np.ones(dim, dtype=bool)
        if g is not None:
            self._cont[g] = False
        # With a jerk limit the loops run at the small-signal gains (a well-damped cascade); without one they
        # may reach their target in one tick.
        jerk_limited = self._jmax < _UNLIMITED
        dt = self.cfg.tick_dt
        self._kv = np.where(jerk_limited, _KV_TICKS / dt, 1.0 / dt)
        self._kp = np.where(jerk_limited, _KV_TICKS * _KP_RATIO / dt, 1.0 / dt)
        if self._y is not None:
            self._v, self._a = np.zeros(dim), np.zeros(dim)
            self._r_dot, self._vt_prev = np.zeros(dim), np.zeros(dim)

    def _limit(self, name: str, dim: int) -> np.ndarray:
        """Per-dim limit: one value for all, one per dim, or one per non-gripper dim."""
        values = np.asarray(getattr(self.cfg, name), dtype=np.float64)
        out = np.full(dim, _UNLIMITED)
        g = self.cfg.gripper_index
        if values.size in (1, dim):
            out[:] = values
        elif g is not None and values.size == dim - 1:
            out[np.arange(dim) != g] = values
        elif values.size:
            raise ValueError(f'SmootherConfig.{name} has {values.size} values for {dim} action dims (give 1, {dim}'
                             f'{"" if g is None else f" or {dim - 1} without the gripper"})')
        return np.minimum(out, _UNLIMITED)

    @property
    def state(self) -> SmootherState | None:
        """None before the first command."""
        return self._state if self._y is not None and self._last_tick is not None else None

    def on_chunk(self, chunk: ActionChunk) -> None:
        """Take a new chunk; it starts to count at the next tick (its crossfade starts there).

        Raises:
            ValueError: a chunk whose action dimension differs from the earlier ones.
        """
        if self._dim is None:
            self._setup(chunk.dim)
        elif chunk.dim != self._dim:
            raise ValueError(f'chunk has {chunk.dim} action dims, the smoother runs with {self._dim}')
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
            ref, self._tracks = self._method(self._tracks, now, self.cfg)
        if ref is None:
            self._tracks = []
        if self._y is None:
            if ref is None:  # the only chunks seen have already expired
                self._last_tick = None
                return None
            self._y = ref.copy()
            if self.cfg.hold_mode is HoldMode.ZERO:
                self._y[self._cont] = 0.0
            self._setup(self._dim)
        self._state = SmootherState.TRACKING if ref is not None else SmootherState.HOLDING
        self._step(ref, dt, seam or len(self._tracks) != n_tracks)
        return self._output(now, seam)

    def _output(self, now: float, seam: bool) -> SmootherOutput:
        return SmootherOutput(now, self._y.copy(), self._v.copy(), self._state, seam)

    def _step(self, ref: np.ndarray | None, dt: float, tracks_changed: bool) -> None:
        y, v, a, c = self._y, self._v, self._a, self._cont
        vmax, amax, jmax = self._vmax, self._amax, self._jmax
        if ref is None:
            self._ref_prev = None
            if self.cfg.hold_mode is HoldMode.KEEP:
                v_target = np.zeros_like(v)
            else:
                v_target = self._position_law(np.zeros_like(y), np.zeros_like(y), dt)
        else:
            # The reference's own velocity, fed forward; a jump from a changed set of chunks is not a velocity.
            if self._ref_prev is not None and not tracks_changed:
                self._r_dot = (ref - self._ref_prev) / dt
            self._ref_prev = ref
            v_target = self._position_law(ref, self._r_dot, dt)
            g = self.cfg.gripper_index
            if g is not None:
                y[g] = 1.0 if ref[g] >= self.cfg.gripper_threshold else 0.0
        a_ff = np.clip((v_target - self._vt_prev) / dt, -amax, amax)
        self._vt_prev = v_target
        ev = v_target - v
        a_brake = np.minimum(np.sqrt(2.0 * jmax * np.abs(ev)), self._kv * np.abs(ev))
        a_target = a_ff + np.clip(ev / dt - a_ff, -a_brake, a_brake)
        # Hard bounds: the jerk band, the acceleration box, and the band from which the velocity can still be
        # ramped to +-vmax under the jerk limit (stable form of j (-dt + sqrt(dt^2 + 2 dv / j))).
        lo = np.maximum(-amax, a - jmax * dt)
        hi = np.minimum(amax, a + jmax * dt)
        room_up, room_down = np.maximum(vmax - v, 0.0), np.maximum(vmax + v, 0.0)
        up = 2.0 * room_up / (dt + np.sqrt(dt * dt + 2.0 * room_up / jmax))
        down = -2.0 * room_down / (dt + np.sqrt(dt * dt + 2.0 * room_down / jmax))
        hi = np.maximum(np.minimum(hi, up), lo)
        lo = np.minimum(np.maximum(lo, down), hi)
        v_new = np.clip(v + np.clip(a_target, lo, hi) * dt, -vmax, vmax)
        a_new = (v_new - v) / dt
        y_new = y + v_new * dt
        free = self._free
        if ref is not None and free.any():  # dims without any limit follow the reference exactly
            v_new[free] = (ref[free] - y[free]) / dt
            a_new[free] = 0.0
            y_new[free] = ref[free]
        y[c], v[c], a[c] = y_new[c], v_new[c], a_new[c]

    def _position_law(self, ref: np.ndarray, r_dot: np.ndarray, dt: float) -> np.ndarray:
        """The velocity to aim for: reach `ref` in one tick when close, else approach it (relative to its own
        velocity) no faster than a jerk-limited stop allows, planned with reduced limits so the inner loop can
        follow (`_BRAKE_ACC`, `_BRAKE_JERK`), and no faster than the small-signal gain `_kp` near the target."""
        e = ref - self._y
        dist = np.abs(e)
        v_brake = np.minimum(_stopping_speed(dist, _BRAKE_ACC * self._amax, _BRAKE_JERK * self._jmax),
                             self._kp * dist)
        return np.clip(r_dot + np.clip(e / dt - r_dot, -v_brake, v_brake), -self._vmax, self._vmax)


def _stopping_speed(dist: np.ndarray, amax: np.ndarray, jmax: np.ndarray) -> np.ndarray:
    """The highest speed from which a stop that starts at zero acceleration, under |a| <= amax and |j| <= jmax,
    covers at most `dist`: (dist^2 j)^(1/3) while the acceleration never saturates, else the root of
    v^2 / (2 a) + v a / (2 j) = dist."""
    ratio = amax * amax / jmax
    saturating = 0.5 * (np.sqrt(ratio * ratio + 8.0 * amax * dist) - ratio)
    return np.where(dist < amax * ratio / jmax, np.cbrt(dist * dist * jmax), saturating)
