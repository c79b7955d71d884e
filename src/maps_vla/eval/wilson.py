"""Wilson score confidence intervals for success rates (better than the normal interval near 0 % and 100 %)."""

from __future__ import annotations

import math
import statistics

__all__ = ['wilson_interval']


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    With p = successes / n and z the two-sided normal quantile of `confidence`:
        centre = (p + z²/2n) / (1 + z²/n),  half = z / (1 + z²/n) · sqrt(p(1 − p)/n + z²/4n²).

    Args:
        successes: number of successes, 0 <= successes <= n.
        n: number of trials; n = 0 gives the uninformative (0, 1).
        confidence: coverage in (0, 1).

    Returns:
        (low, high), both in [0, 1].

    Raises:
        ValueError: counts or confidence out of range.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f'need 0 <= successes <= n, got successes={successes}, n={n}')
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    if n == 0:
        return 0.0, 1.0
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # The bounds at k = 0 and k = n are exactly 0 and 1; computed they can miss by 1e-17, which leaves the point
    # estimate outside its interval (and matplotlib refuses the negative error bar that follows).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high
