"""A per-dimension velocity/acceleration/jerk limiter at a fixed tick: the last stage of the smoother and the bridge.

Each tick the caller asks for a velocity (`velocity_towards` a position error, or `stop`); the limiter picks the
acceleration closest to a braking-aware target inside [a - j dt, a + j dt], [-a_max, a_max] and the band from which
the velocity can still be ramped to +-v_max under the jerk limit, and returns the new velocity. A caller that
integrates position += velocity * dt therefore emits a stream whose finite differences obey all three limits, from
any state the limiter itself produced (a jump of the reference, a new chunk, a resumed stream or a hold only change
the error it is given).

With `brake_at_goal` the velocity towards the goal is also never more than a stop at the goal allows: a goal that
halts without warning is not overshot (the target lags a moving goal by about its braking distance instead of
feeding its velocity forward exactly); the safety bridge uses it, the smoother (smooth references) does not. A stop
ends exactly at rest: a velocity small enough to be zeroed within the limits is zeroed.

Optional position bounds make the velocity towards a bound no larger than a jerk-limited stop before it allows (as
libfranka's position-dependent velocity limits do), so a goal that runs into a bound at speed is not overshot by the
braking distance.

The state (velocity, acceleration) never becomes non-finite: a non-finite error or reference velocity is rejected
with ValueError before anything changes, so a caller can hold instead.
"""

from __future__ import annotations

import numpy as np

__all__ = ['JerkLimiter', 'UNLIMITED', 'stopping_speed']

UNLIMITED = 1e30  # stands for "no limit": the limiter needs no inf/NaN cases, and its cubes stay finite
_BRAKE_ACC, _BRAKE_JERK = 0.7, 0.5  # fractions of the limits the braking curve is planned with
_KV_TICKS, _KP_RATIO = 0.3, 0.25  # small-signal gains: velocity loop k_v = 0.3 / dt, position loop k_p = k_v / 4


class JerkLimiter:
    """Velocity, acceleration and jerk limits per dimension (values >= UNLIMITED mean none).

    Args:
        vmax, amax, jmax: (n,) limits, > 0.
        tick_dt: the nominal tick (s); it sets the small-signal gains.
        lower, upper: (n,) position bounds (pass `position` to the step methods to use them); None = none.
        brake_at_goal: never approach the goal faster than a stop at it allows (no overshoot when it halts).
    """

    def __init__(self, vmax: np.ndarray, amax: np.ndarray, jmax: np.ndarray, tick_dt: float,
                 lower: np.ndarray | None = None, upper: np.ndarray | None = None, brake_at_goal: bool = False) -> None:
        self.brake_at_goal = brake_at_goal
        n = np.asarray(vmax).size
        self.lower = np.full(n, -np.inf) if lower is None else np.asarray(lower, dtype=np.float64)
        self.upper = np.full(n, np.inf) if upper is None else np.asarray(upper, dtype=np.float64)
        self.vmax, self.amax, self.jmax = (np.minimum(np.asarray(x, dtype=np.float64), UNLIMITED)
                                           for x in (vmax, amax, jmax))
        if not (self.vmax.shape == self.amax.shape == self.jmax.shape) or self.vmax.ndim != 1:
            raise ValueError(f'JerkLimiter limits need one value per dimension, got shapes {self.vmax.shape}, '
                             f'{self.amax.shape}, {self.jmax.shape}')
        if not (np.all(self.vmax > 0) and np.all(self.amax > 0) and np.all(self.jmax > 0)):
            raise ValueError('JerkLimiter limits must be > 0')
        self.free = (self.vmax >= UNLIMITED) & (self.amax >= UNLIMITED) & (self.jmax >= UNLIMITED)
        # With a jerk limit the loops run at the small-signal gains (a well-damped cascade); without one they may
        # reach their target in one tick.
        jerk_limited = self.jmax < UNLIMITED
        self.kv = np.where(jerk_limited, _KV_TICKS / tick_dt, 1.0 / tick_dt)
        self.kp = np.where(jerk_limited, _KV_TICKS * _KP_RATIO / tick_dt, 1.0 / tick_dt)
        self.reset()

    @property
    def dim(self) -> int:
        return self.vmax.size

    def reset(self) -> None:
        """At rest: zero velocity and acceleration."""
        n = self.dim
        self.v, self.a, self._vt_prev = np.zeros(n), np.zeros(n), np.zeros(n)

    def velocity_towards(self, error: np.ndarray, ref_velocity: np.ndarray, dt: float,
                         mask: np.ndarray | None = None, position: np.ndarray | None = None) -> np.ndarray:
        """The next velocity for closing `error` (reference - position) on a reference moving at `ref_velocity`.

        Args:
            error, ref_velocity: (n,) finite values.
            dt: seconds since the last tick.
            mask: (n,) bool, the dimensions to update (the others keep their state); None = all.
            position: (n,) the current position, to respect the position bounds; None = ignore them.

        Returns:
            The new velocity (n,) (a copy); position += it * dt. Free dimensions close the error in one tick.

        Raises:
            ValueError: a non-finite error or reference velocity (the state is left unchanged).
        """
        error, ref_velocity = np.asarray(error, dtype=np.float64), np.asarray(ref_velocity, dtype=np.float64)
        if not (np.all(np.isfinite(error)) and np.all(np.isfinite(ref_velocity))):
            raise ValueError(f'JerkLimiter needs finite inputs, got error {error.tolist()} and reference velocity '
                             f'{ref_velocity.tolist()}')
        dist = np.abs(error)
        v_brake = np.minimum(stopping_speed(dist, _BRAKE_ACC * self.amax, _BRAKE_JERK * self.jmax), self.kp * dist)
        v_target = _clip(ref_velocity + _clip(error / dt - ref_velocity, -v_brake, v_brake), -self.vmax, self.vmax)
        if self.brake_at_goal:  # towards the goal no faster than a stop at it allows
            stop = stopping_speed(dist, _BRAKE_ACC * self.amax, _BRAKE_JERK * self.jmax)
            v_target = np.where(error >= 0, np.minimum(v_target, stop), np.maximum(v_target, -stop))
        v_new = self._advance(self._bounded(v_target, position), dt, mask)
        if self.free.any():
            v_new[self.free] = error[self.free] / dt
        return v_new

    def stop(self, dt: float, mask: np.ndarray | None = None) -> np.ndarray:
        """The next velocity of a stop as fast as the limits allow (free dimensions stop at once)."""
        return self._advance(np.zeros(self.dim), dt, mask)

    def _bounded(self, v_target: np.ndarray, position: np.ndarray | None) -> np.ndarray:
        """v_target, no faster towards a position bound than a (reduced-limit) stop before it allows."""
        if position is None:
            return v_target
        room_up = np.maximum(self.upper - position, 0.0)
        room_down = np.maximum(position - self.lower, 0.0)
        a, j = _BRAKE_ACC * self.amax, _BRAKE_JERK * self.jmax
        return _clip(v_target, -stopping_speed(room_down, a, j), stopping_speed(room_up, a, j))

    def _advance(self, v_target: np.ndarray, dt: float, mask: np.ndarray | None) -> np.ndarray:
        v, a = self.v, self.a
        vmax, amax, jmax = self.vmax, self.amax, self.jmax
        a_ff = _clip((v_target - self._vt_prev) / dt, -amax, amax)
        ev = v_target - v
        a_brake = np.minimum(np.sqrt(2.0 * jmax * np.abs(ev)), self.kv * np.abs(ev))
        a_target = a_ff + _clip(ev / dt - a_ff, -a_brake, a_brake)
        # Hard bounds: the jerk band, the acceleration box, and the band from which the velocity can still be
        # ramped to +-vmax under the jerk limit (stable form of j (-dt + sqrt(dt^2 + 2 dv / j))).
        lo = np.maximum(-amax, a - jmax * dt)
        hi = np.minimum(amax, a + jmax * dt)
        room_up, room_down = np.maximum(vmax - v, 0.0), np.maximum(vmax + v, 0.0)
        up = 2.0 * room_up / (dt + np.sqrt(dt * dt + 2.0 * room_up / jmax))
        down = -2.0 * room_down / (dt + np.sqrt(dt * dt + 2.0 * room_down / jmax))
        hi = np.maximum(np.minimum(hi, up), lo)
        lo = np.minimum(np.maximum(lo, down), hi)
        v_new = _clip(v + _clip(a_target, lo, hi) * dt, -vmax, vmax)
        # A stop ends exactly at rest when zeroing the velocity now, and the acceleration next tick, fits the limits.
        jdt = jmax * dt
        snap = ((v_target == 0.0) & (np.abs(v) <= jdt * dt) & (np.abs(v) <= amax * dt)
                & (np.abs(v / dt + a) <= jdt))
        v_new = np.where(snap, 0.0, v_new)
        a_new = (v_new - v) / dt
        if self.free.any():
            v_new[self.free] = v_target[self.free]
            a_new[self.free] = 0.0
        m = slice(None) if mask is None else mask
        self._vt_prev[m], self.v[m], self.a[m] = v_target[m], v_new[m], a_new[m]
        return self.v.copy()


def _clip(x: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """np.clip without its dispatch overhead (this runs several times per tick on 3-8 values)."""
    return np.minimum(np.maximum(x, lo), hi)


def stopping_speed(dist: np.ndarray, amax: np.ndarray, jmax: np.ndarray) -> np.ndarray:
    """The highest speed from which a stop that starts at zero acceleration, under |a| <= amax and |j| <= jmax,
    covers at most `dist`: (dist^2 j)^(1/3) while the acceleration never saturates, else the root of
    v^2 / (2 a) + v a / (2 j) = dist."""
    ratio = amax * amax / jmax
    saturating = 0.5 * (np.sqrt(ratio * ratio + 8.0 * amax * dist) - ratio)
    return np.where(dist < amax * ratio / jmax, np.cbrt(dist * dist * jmax), saturating)
