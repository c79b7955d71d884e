"""Smoothness of a command stream sampled at a fixed tick (docs/reference/chunking_lerobot.md A7)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ['SmoothnessMetrics', 'smoothness']


@dataclasses.dataclass(frozen=True)
class SmoothnessMetrics:
    """Per-tick steps and jerk of a (T, D) stream; steps are max over dimensions of |x_t - x_(t-1)|."""

    ticks: int  # samples
    max_step: float  # largest per-tick change anywhere
    max_seam_step: float  # largest per-tick change at ticks where a new chunk took effect (NaN: no seam)
    max_other_step: float  # largest per-tick change elsewhere (NaN: fewer than 2 samples)
    jerk_rms: float  # sqrt(mean_t ||d3x/dt3||^2), units/s^3 (NaN: fewer than 4 samples)


def smoothness(values: np.ndarray, dt: float, seams: np.ndarray | None = None) -> SmoothnessMetrics:
    """Metrics of `values` (T, D) sampled every `dt` s; `seams` (T,) marks ticks where a new chunk began to count.

    Raises:
        ValueError: shapes that do not match.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f'values must be (T, D), got shape {values.shape}')
    t = values.shape[0]
    seams = np.zeros(t, dtype=bool) if seams is None else np.asarray(seams, dtype=bool)
    if seams.shape != (t,):
        raise ValueError(f'seams must have shape ({t},), got {seams.shape}')
    if t < 2:
        return SmoothnessMetrics(t, math.nan, math.nan, math.nan, math.nan)
    steps = np.abs(np.diff(values, axis=0)).max(axis=1)  # step[i] happens at tick i + 1
    at_seam = seams[1:]
    jerk = np.diff(values, n=3, axis=0) / dt ** 3 if t >= 4 else None
    return SmoothnessMetrics(
        ticks=t,
        max_step=float(steps.max()),
        max_seam_step=float(steps[at_seam].max()) if at_seam.any() else math.nan,
        max_other_step=float(steps[~at_seam].max()) if (~at_seam).any() else math.nan,
        jerk_rms=float(np.sqrt(np.mean(np.sum(jerk ** 2, axis=1)))) if jerk is not None else math.nan,
    )
