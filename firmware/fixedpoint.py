"""Integer helpers for the control tick: no floats, no allocation, small ints only.

Every function here takes and returns ints, creates no objects and keeps every
intermediate value within a 31-bit signed MicroPython small int
(|x| <= SMALL_INT_MAX = 2**30 - 1) for the input ranges stated in each
docstring. Floats appear only at import time, to build the CORDIC table.
"""

import math
from array import array

from micropython import const

# --- CORDIC arctangent table ---------------------------------------------------
# atan(2**-i) in udeg (1e-6 degree), i = 0 .. _CORDIC_STEPS - 1. Largest entry
# 45e6, sum of all ~99.9e6: the angle accumulator stays far below 2**30.
# After N steps the residual angle is below atan(2**-(N-1)); N = 18 gives
# 0.44 mdeg, well inside the 5 mdeg budget.
_CORDIC_STEPS = const(18)
_ATAN_UDEG = array("i", [int(round(math.degrees(math.atan(2.0**-i)) * 1e6)) for i in range(18)])

# Inputs are normalised so that max(|x|, |y|) lies in [2**24, 2**25). The
# CORDIC gain (1.647) and the 45-degree rotation (sqrt 2) then give at most
# 2**25 * 1.647 * 1.415 < 7.9e7 < 2**30, and 24 bits keep the truncation of
# the shifted terms far below the angle resolution.
_NORM_LOW = const(0x1000000)  # 2**24
_NORM_HIGH = const(0x2000000)  # 2**25

_DEG180_UDEG = const(180000000)
_DEG180_MDEG = const(180000)
_DEG360_MDEG = const(360000)


def clamp(x, lo, hi):
    """x limited to [lo, hi] (lo <= hi)."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def div_round(n, d):
    """n / d rounded to the nearest int, halves away from zero (d > 0).

    Bound: |n| + d // 2 must be a small int, so |n| <= SMALL_INT_MAX - d // 2.
    """
    if n >= 0:
        return (n + (d >> 1)) // d
    return -((-n + (d >> 1)) // d)


def mul_div(a, b, c):
    """a * b / c truncated toward zero, without forming the product a * b.

    For |a| < 2**19, |b| < 2**20, 0 < c < 2**18 and |a * b / c| < 2**30. The
    product itself would need up to 39 bits; it is split as
    b = b_hi * 1024 + b_lo so that every partial product stays below 2**30:
      a * b_hi < 2**29,  (remainder < c) * 1024 < 2**28,  a * b_lo < 2**29.
    """
    negative = False
    if a < 0:
        a = -a
        negative = True
    if b < 0:
        b = -b
        negative = not negative
    b_hi = b >> 10
    b_lo = b & 1023
    hi_product = a * b_hi  # < 2**19 * 2**10 = 2**29
    q_hi = hi_product // c
    r_hi = hi_product - q_hi * c  # < c < 2**18
    lo_sum = r_hi * 1024 + a * b_lo  # < 2**28 + 2**29
    q = q_hi * 1024 + lo_sum // c  # the result, < 2**30 by the caller's bound
    if negative:
        return -q
    return q


def isqrt(n):
    """Exact floor(sqrt(n)) for 0 <= n <= 2**30, by integer Newton iteration.

    The start value is one Newton step from the power of two 2**s with
    4**s <= n < 4**(s+1); it is >= sqrt(n) (AM-GM) and within 25 % of it, so
    the decreasing iteration ends after about five divisions. Largest
    intermediate: guess + n // guess <= 2**16 + 2**15.
    """
    if n <= 0:
        return 0
    # s = floor(log4(n)) by halving the search range (no int.bit_length here).
    x = n
    s = 0
    if x >= 0x10000:
        x >>= 16
        s += 8
    if x >= 0x100:
        x >>= 8
        s += 4
    if x >= 0x10:
        x >>= 4
        s += 2
    if x >= 0x4:
        s += 1
    root = 1 << s
    guess = (root + n // root) >> 1
    while True:
        better = (guess + n // guess) >> 1
        if better >= guess:
            return guess
        guess = better


def atan2_mdeg(y, x):
    """Angle of the vector (x, y) in mdeg, in (-180000, 180000], like math.atan2.

    Integer CORDIC in vectoring mode. Error <= 2 mdeg for any small-int inputs
    (<= 5 mdeg is the contract); atan2_mdeg(0, 0) is 0. Right-angle rotations
    bring the vector into the right half plane first, where CORDIC converges.
    """
    if x == 0 and y == 0:
        return 0
    # Pre-rotation by 180 degrees into the right half plane (x >= 0).
    base_udeg = 0
    if x < 0:
        x = -x
        y = -y
        if y > 0:
            base_udeg = -_DEG180_UDEG  # original y < 0: third quadrant
        else:
            base_udeg = _DEG180_UDEG  # original y >= 0: second quadrant
    # Normalise the magnitude to [2**24, 2**25) for resolution and headroom.
    mag = x
    if y > mag:
        mag = y
    elif -y > mag:
        mag = -y
    while mag >= _NORM_HIGH:
        x >>= 1
        y >>= 1  # arithmetic shift: floors negative y, harmless at 24 bits
        mag >>= 1
    while mag < _NORM_LOW:
        x <<= 1
        y <<= 1
        mag <<= 1
    # Vectoring: rotate (x, y) toward the x axis, summing the rotations.
    angle_udeg = 0
    i = 0
    while i < _CORDIC_STEPS:
        x_shift = x >> i
        y_shift = y >> i
        if y > 0:
            x += y_shift
            y -= x_shift
            angle_udeg += _ATAN_UDEG[i]
        elif y < 0:
            x -= y_shift
            y += x_shift
            angle_udeg -= _ATAN_UDEG[i]
        else:
            break
        i += 1
    total_udeg = angle_udeg + base_udeg  # |.| < 180e6 + 100e6 < 2**30
    result = div_round(total_udeg, 1000)
    if result <= -_DEG180_MDEG:
        result += _DEG360_MDEG
    elif result > _DEG180_MDEG:
        result -= _DEG360_MDEG
    return result
