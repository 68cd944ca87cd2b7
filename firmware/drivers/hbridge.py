"""H-bridge motor drivers with soft start/stop and their own dead-man.

Signed duty in per-ten-thousand (DUTY_FULL = 100 %), positive = extend the
actuator = head-down. Two safety behaviours live here, below the controller:

- soft start/stop: the applied duty slews at most DUTY_FULL per SLEW_FULL_MS,
  the 75-150 ms inrush window actuator control boxes use;
- dead-man (Klipper's max_duration): the output falls to zero unless it is
  re-commanded within `deadman_ms`. `check_deadman` is meant to run from a
  hardware Timer callback, independent of the main loop, so a hung loop
  cannot leave the motor running.

The dual-PWM bridge (BTS7960 / IBT-2) is in hbridge_dual_pwm.py, imported
only by a board that has one: a board carries one bridge driver in RAM.
"""

from micropython import const

DUTY_FULL = const(10000)
SLEW_FULL_MS = const(150)
_SLEW_PER_MS = const(67)  # DUTY_FULL / SLEW_FULL_MS, rounded up
PWM_FREQ_HZ = const(20000)  # above hearing
DEFAULT_DEADMAN_MS = const(50)


class HBridgePwmDir:
    """PWM + direction bridge (Cytron MD10C class, DRV8871-type in PWM/DIR use).

    `pwm` has freq()/duty_u16(); `dir_pin` has value(); `clock` has
    ticks_ms()/ticks_diff(). dir 1 = extend = head-down.
    """

    def __init__(self, pwm, dir_pin, clock, deadman_ms=DEFAULT_DEADMAN_MS):
        self._pwm = pwm
        self._dir = dir_pin
        self._clock = clock
        self.deadman_ms = deadman_ms
        self.duty = 0  # applied, signed
        self.deadman_trips = 0
        self._last_ms = clock.ticks_ms()
        self._refreshed_ms = self._last_ms
        pwm.freq(PWM_FREQ_HZ)
        self._apply(0)

    def _apply(self, duty):
        self.duty = duty
        if duty >= 0:
            self._dir.value(1)
            self._pwm.duty_u16(duty * 65535 // DUTY_FULL)  # <= 6.6e8: small int
        else:
            self._dir.value(0)
            self._pwm.duty_u16(-duty * 65535 // DUTY_FULL)

    def command(self, duty):
        """Request a signed duty; refreshes the dead-man. Slew-limited."""
        now = self._clock.ticks_ms()
        elapsed = self._clock.ticks_diff(now, self._last_ms)
        if elapsed < 1:
            elapsed = 1
        elif elapsed > SLEW_FULL_MS:
            elapsed = SLEW_FULL_MS
        self._last_ms = now
        self._refreshed_ms = now
        if duty > DUTY_FULL:
            duty = DUTY_FULL
        elif duty < -DUTY_FULL:
            duty = -DUTY_FULL
        step = _SLEW_PER_MS * elapsed
        if duty > self.duty + step:
            duty = self.duty + step
        elif duty < self.duty - step:
            duty = self.duty - step
        self._apply(duty)

    def stop(self):
        """Immediate stop: for when motion itself is the hazard (jam, runaway)."""
        self._apply(0)

    def check_deadman(self, _timer=None):
        """Zero the output if the controller stopped refreshing it."""
        if self.duty != 0:
            age = self._clock.ticks_diff(self._clock.ticks_ms(), self._refreshed_ms)
            if age > self.deadman_ms:
                self._apply(0)
                self.deadman_trips += 1
