"""Actuator position potentiometer -> table angle: the IMU's independent check.

The pot turns with the actuator's screw, so its reading is the stroke, and
the stroke gives the angle through the linkage (law of cosines, the same
geometry as the position loop's feed-forward). The curve is tabulated at
start-up (floats) and interpolated in the tick with integers only.
"""

import math
from array import array

from micropython import const

_POINTS = const(65)  # 64 segments over the pot's range
_SEG_SHIFT = const(10)  # 65536 / 64 counts per segment
_FRAC_DROP = const(4)  # keep 6 bits of the in-segment fraction: no big ints


class PotAngle:
    """`read_mdeg()` (its ADC) or `angle_mdeg(read_u16)`; built from a Table
    with pot calibration and the pot's ADC."""

    def __init__(self, table, adc):
        self._adc = adc
        r = table.lever_m
        b = table.base_m
        offset = table.phi_offset_deg
        phi0 = math.radians(table.pot_retracted_mdeg / 1000 + offset)
        length0 = math.sqrt(r * r + b * b - 2 * r * b * math.cos(phi0))
        self._mdeg = array("i", bytes(4 * _POINTS))
        for i in range(_POINTS):
            length = length0 + table.pot_stroke_m * i / (_POINTS - 1)
            c = (r * r + b * b - length * length) / (2 * r * b)
            c = max(-1.0, min(1.0, c))  # beyond the linkage's reach: its end
            self._mdeg[i] = int(round((math.degrees(math.acos(c)) - offset) * 1000))

    def read_mdeg(self):
        """The angle the pot's ADC reads now. No allocation."""
        return self.angle_mdeg(self._adc.read_u16())

    def angle_mdeg(self, counts):
        """The angle for a read_u16 value (0..65535). No allocation."""
        i = counts >> _SEG_SHIFT
        if i >= _POINTS - 1:
            return self._mdeg[_POINTS - 1]
        a = self._mdeg[i]
        frac = (counts & 0x3FF) >> _FRAC_DROP  # 0..63
        # segment span <= 30000 mdeg: 30000 * 63 fits a small int
        return a + (self._mdeg[i + 1] - a) * frac // 64
