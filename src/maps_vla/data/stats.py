"""Feature statistics as LeRobot keeps them: min, max, mean, std, count and quantiles q01..q99.

Numeric features get one value per dimension, shape (d,). Cameras get one value per channel of the image scaled to
[0, 1], shape (3, 1, 1), computed exactly from a 256-bin histogram per channel (uint8 pixels have 256 values), so
no frame subsampling is needed. Quantiles use numpy's default 'linear' method. Stats of several episodes are
pooled exactly for min/max/mean/std/count; their quantiles are count-weighted means of the episodes' quantiles
(LeRobot's approximation) unless recomputed from the data (`numeric_stats` over all frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ['QUANTILES', 'numeric_stats', 'image_histogram', 'histogram_stats', 'aggregate_stats',
           'stats_to_json', 'stats_from_json']

QUANTILES: dict[str, float] = {'q01': 0.01, 'q10': 0.10, 'q50': 0.50, 'q90': 0.90, 'q99': 0.99}

Stats = dict[str, np.ndarray]  # stat name -> array


def numeric_stats(values: np.ndarray) -> Stats:
    """Stats over the first axis.

    Args:
        values: (N, d) array, N >= 1.

    Returns:
        {'min', 'max', 'mean', 'std', q...}: float64 (d,) ('min'/'max' keep the dtype); 'count': int64 (1,).
    """
    values = np.asarray(values)
    if values.ndim != 2 or len(values) == 0:
        raise ValueError(f'numeric_stats needs a non-empty (N, d) array, got shape {values.shape}')
    as_float = values.astype(np.float64)
    out = {'min': values.min(axis=0), 'max': values.max(axis=0), 'mean': as_float.mean(axis=0),
           'std': as_float.std(axis=0), 'count': np.array([len(values)], dtype=np.int64)}
    quantiles = np.quantile(as_float, list(QUANTILES.values()), axis=0)
    out.update(zip(QUANTILES, quantiles))
    return out


def image_histogram(image: np.ndarray) -> np.ndarray:
    """Per-channel pixel counts of one uint8 (H, W, C) image: int64 (C, 256)."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f'image_histogram needs uint8 (H, W, C), got {image.dtype} {image.shape}')
    return np.stack([np.bincount(image[..., c].ravel(), minlength=256) for c in range(image.shape[2])])


def _histogram_quantile(cumulative: np.ndarray, q: float) -> float:
    """numpy 'linear' quantile of the sorted values that `cumulative` (a histogram's cumsum) describes."""
    position = q * (cumulative[-1] - 1)
    lo_rank, frac = int(np.floor(position)), position - np.floor(position)
    lo = np.searchsorted(cumulative, lo_rank, side='right')
    hi = np.searchsorted(cumulative, min(lo_rank + 1, cumulative[-1] - 1), side='right')
    return float(lo + frac * (hi - lo))


def histogram_stats(histogram: np.ndarray, frames: int) -> Stats:
    """Stats of pixel values scaled to [0, 1] from per-channel histograms.

    Args:
        histogram: int (C, 256) pixel counts, e.g. the summed `image_histogram`s of an episode's frames.
        frames: how many frames the histogram counts (LeRobot's 'count' for images).

    Returns:
        float64 (C, 1, 1) per stat; 'count': int64 (1,) = `frames`.
    """
    histogram = np.asarray(histogram, dtype=np.int64)
    levels = np.arange(histogram.shape[1], dtype=np.float64)
    n = histogram.sum(axis=1)
    if (n == 0).any():
        raise ValueError('histogram_stats needs at least one pixel per channel')
    mean = histogram @ levels / n
    var = histogram @ levels**2 / n - mean**2
    nonzero = histogram > 0
    out = {'min': np.array([np.flatnonzero(row)[0] for row in nonzero], dtype=np.float64),
           'max': np.array([np.flatnonzero(row)[-1] for row in nonzero], dtype=np.float64),
           'mean': mean, 'std': np.sqrt(np.maximum(var, 0.0))}
    cumulative = np.cumsum(histogram, axis=1)
    for name, q in QUANTILES.items():
        out[name] = np.array([_histogram_quantile(c, q) for c in cumulative])
    scaled = {k: (v / 255.0).reshape(-1, 1, 1) for k, v in out.items()}
    scaled['count'] = np.array([frames], dtype=np.int64)
    return scaled


def aggregate_stats(per_episode: Sequence[dict[str, Stats]]) -> dict[str, Stats]:
    """Pool per-episode stats of the same features (see the module docstring for what is exact)."""
    if not per_episode:
        return {}
    out: dict[str, Stats] = {}
    for key in per_episode[0]:
        parts = [ep[key] for ep in per_episode]
        counts = np.array([p['count'][0] for p in parts], dtype=np.float64)
        weights = (counts / counts.sum()).reshape((-1,) + (1,) * np.ndim(parts[0]['mean']))
        means = np.stack([p['mean'] for p in parts])
        mean = (weights * means).sum(axis=0)
        var = (weights * (np.stack([p['std'] for p in parts]) ** 2 + (means - mean) ** 2)).sum(axis=0)
        agg = {'min': np.min([p['min'] for p in parts], axis=0), 'max': np.max([p['max'] for p in parts], axis=0),
               'mean': mean, 'std': np.sqrt(var), 'count': np.array([int(counts.sum())], dtype=np.int64)}
        for name in QUANTILES:
            if all(name in p for p in parts):  # LeRobot's stats may have none
                agg[name] = (weights * np.stack([p[name] for p in parts])).sum(axis=0)
        out[key] = agg
    return out


def stats_to_json(stats: dict[str, Stats]) -> dict[str, dict[str, Any]]:
    """Nested lists, as in LeRobot's stats.json / episodes_stats.jsonl."""
    return {key: {name: np.asarray(v).tolist() for name, v in feature.items()} for key, feature in stats.items()}


def stats_from_json(data: dict[str, dict[str, Any]]) -> dict[str, Stats]:
    """Inverse of `stats_to_json` (arrays of float64, 'count' int64)."""
    return {key: {name: np.asarray(v, dtype=np.int64 if name == 'count' else np.float64) for name, v in ft.items()}
            for key, ft in data.items()}
