"""firmware.fixedpoint against exact references (math.isqrt, math.atan2)."""

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from firmware.fixedpoint import atan2_mdeg, clamp, div_round, isqrt, mul_div
from firmware.limits import SMALL_INT_MAX

SETTINGS = settings(max_examples=700, derandomize=True, deadline=None)
SENSOR = st.integers(min_value=-40000, max_value=40000)


@SETTINGS
@given(st.integers(-(2**30), 2**30), st.integers(-(2**30), 2**30), st.integers(-(2**30), 2**30))
def test_clamp(x, a, b):
    lo, hi = min(a, b), max(a, b)
    assert clamp(x, lo, hi) == min(max(x, lo), hi)


@SETTINGS
@given(st.integers(min_value=0, max_value=2**30))
@example(0)
@example(1)
@example(2**30)
@example(SMALL_INT_MAX)
@example(2**30 - 2**15)
def test_isqrt_is_exact_floor(n):
    assert isqrt(n) == math.isqrt(n)


def test_isqrt_dense_small_and_squares():
    for n in range(0, 70000):
        assert isqrt(n) == math.isqrt(n)
    for r in range(0, 2**15 + 1, 7):
        for n in (r * r - 1, r * r, r * r + 1):
            if 0 <= n <= 2**30:
                assert isqrt(n) == math.isqrt(n)


def _angle_error_mdeg(got, y, x):
    ref = math.degrees(math.atan2(y, x)) * 1000.0
    err = abs(got - ref)
    return min(err, 360000.0 - err)  # -180 and +180 deg are the same angle


@SETTINGS
@given(SENSOR, SENSOR)
@example(0, 1)
@example(0, -1)
@example(1, 0)
@example(-1, 0)
@example(-1, -40000)
@example(1, -40000)
@example(40000, 40000)
@example(-40000, -40000)
@example(1, 1)
def test_atan2_within_5_mdeg(y, x):
    if x == 0 and y == 0:
        assert atan2_mdeg(0, 0) == 0
        return
    got = atan2_mdeg(y, x)
    assert -180000 < got <= 180000
    assert _angle_error_mdeg(got, y, x) <= 5.0


@SETTINGS
@given(
    st.integers(-SMALL_INT_MAX // 2, SMALL_INT_MAX // 2),
    st.integers(-SMALL_INT_MAX // 2, SMALL_INT_MAX // 2),
)
def test_atan2_large_inputs(y, x):
    """The contract is |x|, |y| <= 40000, but any small int must work."""
    if x == 0 and y == 0:
        return
    got = atan2_mdeg(y, x)
    assert -180000 < got <= 180000
    assert _angle_error_mdeg(got, y, x) <= 5.0


def test_atan2_negative_x_axis_is_plus_180():
    assert atan2_mdeg(0, -5) == 180000
    assert atan2_mdeg(0, -40000) == 180000


def test_atan2_measured_worst_error_is_tiny():
    """Dense sweep on the sensor range: record the real error (about 1 mdeg)."""
    worst = 0.0
    for y in range(-40000, 40001, 997):
        for x in range(-40000, 40001, 1009):
            if x or y:
                worst = max(worst, _angle_error_mdeg(atan2_mdeg(y, x), y, x))
    assert worst <= 1.5


@SETTINGS
@given(st.integers(-(2**29), 2**29), st.integers(min_value=1, max_value=2**20))
def test_div_round_half_away_from_zero(n, d):
    q = div_round(n, d)
    # reference with exact rationals
    from fractions import Fraction

    exact = Fraction(n, d)
    ref = math.floor(abs(exact) + Fraction(1, 2)) * (1 if n >= 0 else -1)
    assert q == ref


@SETTINGS
@given(
    st.integers(-(2**19) + 1, 2**19 - 1),
    st.integers(-(2**20) + 1, 2**20 - 1),
    st.integers(min_value=1, max_value=2**18 - 1),
)
def test_mul_div_truncates_toward_zero(a, b, c):
    exact = a * b
    if abs(exact) // c >= 2**30:
        return  # outside the documented domain (result must be a small int)
    ref = abs(exact) // c
    if exact < 0:
        ref = -ref
    assert mul_div(a, b, c) == ref
