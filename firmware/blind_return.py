"""The way home when the IMU is lost: open loop, slow, dead-reckoned, timed.

Without the angle sensor the only trustworthy signals are the commanded duty
and the home end-of-stroke switch. The return:
- slews the duty gently (no jolt when it turns a descending table around);
- dead-reckons the angle from the last good estimate, the commanded duty and
  the actuator geometry, and creeps the last few degrees so that stopping on
  the switch is gentle. A loaded actuator runs slower than the reckoning
  assumes, so the reckoning reaches home early: it errs toward creeping;
- drives at a duty that gives at most BLIND_RATE at the fastest point of the
  stroke, so nowhere does it exceed that rate;
- ends on the home switch, or gives up after a timeout computed from the
  slowest point of the stroke (then the motor is stopped and the fault stays).
"""

from micropython import const

_BLIND_RATE_MDPS = const(2000)  # at the fastest point of the stroke
_CREEP_DIVISOR = const(4)  # a quarter speed for the last degrees
_CREEP_ZONE_MDEG = const(8000)  # reckoned distance from home where creeping starts
_SLEW_PER_MS = const(6)  # duty units per ms: 2000 duty in about 330 ms
_TIMEOUT_MARGIN = const(3)  # x the travel time at the slowest point


class BlindReturn:
    def __init__(self, loop, home_mdeg, travel_max_mdeg):
        self._loop = loop
        self._home_mdeg = home_mdeg
        min_g = loop.min_gain_q()
        max_g = loop.max_gain_q()
        self._duty_full = _BLIND_RATE_MDPS * min_g // 1024
        slowest_mdps = max(1, _BLIND_RATE_MDPS * min_g // max_g)
        self.timeout_ms = _TIMEOUT_MARGIN * (travel_max_mdeg // slowest_mdps) * 1000
        self.angle_mdeg = home_mdeg  # dead-reckoned
        self.duty = 0
        self.elapsed_ms = 0
        self._rem = 0

    def start(self, last_angle_mdeg, duty_now):
        self.angle_mdeg = last_angle_mdeg
        self.duty = duty_now
        self.elapsed_ms = 0
        self._rem = 0

    def update(self, dt_ms):
        """One tick: the duty to command (negative = toward home)."""
        self.elapsed_ms += dt_ms
        goal = -self._duty_full
        if self.angle_mdeg - self._home_mdeg < _CREEP_ZONE_MDEG:
            goal = goal // _CREEP_DIVISOR
        step = _SLEW_PER_MS * dt_ms
        duty = self.duty
        if duty > goal + step:
            duty -= step
        elif duty < goal - step:
            duty += step
        else:
            duty = goal
        self.duty = duty
        # Reckoning: rate = duty / gain (gain is duty per mdps, Q10).
        # |duty| <= 10000 so duty * 1024 < 1.1e7; rate * dt <= 6e4 * 50.
        gain = self._loop.gain_q(self.angle_mdeg)
        rate_mdps = duty * 1024 // gain if gain > 0 else 0
        moved = rate_mdps * dt_ms + self._rem  # udeg
        self.angle_mdeg += moved // 1000
        self._rem = moved % 1000
        return duty
