"""Position loop: planned angle and rate in, signed actuator duty out.

duty = feed-forward(planned rate, angle) + PI on the angle error, with the
commanded rate clamped to a window the caller sets every tick. The window is
how the head-down interlock reaches the output: when head-down motion is not
permitted the window's top is 0 and no duty that extends the actuator can
come out of here, whatever the plan or the integrator say.

Feed-forward: the actuator's stroke speed for a table rate is dL/dtheta times
the rate, and stroke speed per unit duty is the actuator's no-load speed. The
lever geometry makes dL/dtheta vary several-fold over the range, so it is
tabulated once at start-up (floats allowed there) into an int array; per tick
it is one interpolated lookup.
"""

import math
from array import array

from micropython import const

from firmware.drivers.hbridge import DUTY_FULL

_GAIN_Q = const(1024)  # gain table fixed point: duty per mdps, times 1024
_TABLE_START_MDEG = const(-70000)
_TABLE_STEP_MDEG = const(2000)
_TABLE_LEN = const(84)  # -70 .. +96 deg
_KP_X1000 = const(2000)  # 2 /s: 1 deg of error asks for 2 deg/s
_KI_DIV = const(2000)  # integral gain 0.5 /s^2: integ [mdeg*ms] / 2000 = mdps
_INTEG_MAX = const(1000000)  # mdeg*ms: caps the integral's share at 500 mdps


def stroke_per_angle_m(table, angle_deg):
    """dL/dtheta in metres per radian for the table's actuator geometry."""
    phi = math.radians(angle_deg + table.phi_offset_deg)
    r = table.lever_m
    b = table.base_m
    length = math.sqrt(r * r + b * b - 2.0 * r * b * math.cos(phi))
    return r * b * math.sin(phi) / length


class PositionLoop:
    def __init__(self, table):
        gains = array("i", bytes(4 * _TABLE_LEN))
        for i in range(_TABLE_LEN):
            angle_deg = (_TABLE_START_MDEG + i * _TABLE_STEP_MDEG) / 1000.0
            dl_dtheta = abs(stroke_per_angle_m(table, angle_deg))
            # duty per mdps = dL/dtheta * (rad per mdeg) / no-load speed * DUTY_FULL
            per_mdps = dl_dtheta * (math.pi / 180000.0) / table.noload_speed_mps * DUTY_FULL
            gains[i] = int(per_mdps * _GAIN_Q + 0.5)
        self._gains = gains
        self.rate_cmd_mdps = 0
        self.duty = 0
        self._integ = 0

    def gain_q(self, angle_mdeg):
        """Interpolated feed-forward gain (duty per mdps, Q10) at an angle."""
        offset = angle_mdeg - _TABLE_START_MDEG
        if offset < 0:
            offset = 0
        i = offset // _TABLE_STEP_MDEG
        if i >= _TABLE_LEN - 1:
            return self._gains[_TABLE_LEN - 1]
        frac = offset - i * _TABLE_STEP_MDEG  # 0 .. 1999
        g0 = self._gains[i]
        return g0 + (self._gains[i + 1] - g0) * frac // _TABLE_STEP_MDEG

    def max_gain_q(self):
        """The largest duty-per-rate anywhere: the slowest point of the range."""
        best = 0
        for i in range(_TABLE_LEN):
            if self._gains[i] > best:
                best = self._gains[i]
        return best

    def min_gain_q(self):
        """The smallest duty-per-rate anywhere: the fastest point of the range."""
        best = self._gains[0]
        for i in range(_TABLE_LEN):
            if self._gains[i] < best:
                best = self._gains[i]
        return best

    def reset(self):
        self._integ = 0
        self.rate_cmd_mdps = 0
        self.duty = 0

    def update(self, ref_mdeg, ref_rate_mdps, angle_mdeg, dt_ms, rate_min_mdps, rate_max_mdps):
        """One tick. Bounds: errors <= 2e5 mdeg, so every product < 2**30."""
        err = ref_mdeg - angle_mdeg
        rate = ref_rate_mdps + err * _KP_X1000 // 1000 + self._integ // _KI_DIV
        if rate > rate_max_mdps:
            rate = rate_max_mdps
            if err > 0:
                err = 0  # anti-windup: do not integrate into the clamp
        elif rate < rate_min_mdps:
            rate = rate_min_mdps
            if err < 0:
                err = 0
        integ = self._integ + err * dt_ms
        if integ > _INTEG_MAX:
            integ = _INTEG_MAX
        elif integ < -_INTEG_MAX:
            integ = -_INTEG_MAX
        self._integ = integ
        self.rate_cmd_mdps = rate
        duty = rate * self.gain_q(angle_mdeg) // _GAIN_Q  # 6000 * ~1e5 < 2**30
        if duty > DUTY_FULL:
            duty = DUTY_FULL
        elif duty < -DUTY_FULL:
            duty = -DUTY_FULL
        # The window also bounds the sign of the output, not only the rate.
        if rate_max_mdps <= 0 and duty > 0:
            duty = 0
        if rate_min_mdps >= 0 and duty < 0:
            duty = 0
        self.duty = duty
        return duty
