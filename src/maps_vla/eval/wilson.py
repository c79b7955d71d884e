"""Wilson score confidence intervals for success rates (better than the normal interval near 0 % and 100 %), and
Newcombe's interval for the difference of two rates built from them."""

from __future__ import annotations

import math
import statistics

__all__ = ['wilson_interval', 'difference_interval']


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


def difference_interval(successes_a: int, n_a: int, successes_b: int, n_b: int,
                        confidence: float = 0.95) -> tuple[float, float]:
    """Interval of p_a − p_b for two independent binomial samples: Newcombe's hybrid score interval (method 10 of
    Newcombe, Statistics in Medicine 1998), which combines each rate's Wilson interval (l, u):

        d = p_a − p_b
        low = d − sqrt((p_a − l_a)² + (u_b − p_b)²),   high = d + sqrt((u_a − p_a)² + (p_b − l_b)²).

    Raises:
        ValueError: counts or confidence out of range, or an empty sample.
    """
    if n_a == 0 or n_b == 0:
        raise ValueError(f'need two non-empty samples, got n_a={n_a}, n_b={n_b}')
    low_a, high_a = wilson_interval(successes_a, n_a, confidence)
    low_b, high_b = wilson_interval(successes_b, n_b, confidence)
    p_a, p_b = successes_a / n_a, successes_b / n_b
    d = p_a - p_b
    return (d - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
            d + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2))
