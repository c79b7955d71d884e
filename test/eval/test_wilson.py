"""Wilson intervals against hand-computed values (z = 1.959964 for 95 %); the difference interval against the
published ones."""

import pytest

from maps_vla.eval import difference_interval, wilson_interval


@pytest.mark.parametrize('k, n, low, high', [
    (0, 10, 0.0, 0.27754),    # z²/(n + z²) = 3.8415 / 13.8415
    (10, 10, 0.72246, 1.0),
    (5, 10, 0.23659, 0.76341),
    (8, 10, 0.49016, 0.94334),
    (1, 1, 0.20654, 1.0),
    (45, 50, 0.78638, 0.95653),
])
def test_matches_hand_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize('n', range(1, 60))
def test_all_or_nothing_bounds_are_exact(n):
    # 0/10 used to give low = 2.8e-17 > rate, so the success plot's error bar went negative and raised.
    assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0


def test_other_confidence():
    # 90 %: z = 1.644854, 3 of 20: centre 0.191706, half-width 0.130123 (worked by hand).
    assert wilson_interval(3, 20, 0.90) == pytest.approx((0.061583, 0.321829), abs=5e-6)


def test_no_trials_and_bad_values():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match='successes=11, n=10'):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match='confidence'):
        wilson_interval(1, 2, confidence=1.0)


@pytest.mark.parametrize('a, n_a, b, n_b, low, high', [
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (6, 7, 2, 7, 0.0582, 0.8062),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
])
def test_difference_matches_newcombes_table(a, n_a, b, n_b, low, high):
    assert difference_interval(a, n_a, b, n_b) == pytest.approx((low, high), abs=5e-5)
    # swapping the samples mirrors the interval
    assert difference_interval(b, n_b, a, n_a) == pytest.approx((-high, -low), abs=5e-5)


def test_difference_needs_two_samples():
    with pytest.raises(ValueError, match='n_b=0'):
        difference_interval(1, 2, 0, 0)
