"""H-bridge motor drivers with soft start/stop and their own dead-man.

Signed duty in per-ten-thousand (DUTY_FULL = 100 %), positive = extend the
actuator = head-down. Two safety behaviours live here, below the controller:

- soft start/stop: the applied duty slews at most DUTY_FULL per SLEW_FULL_MS,
  the 75-150 ms inrush window actuator control boxes use;
- dead-man (Klipper's max_duration): the output falls to zero unless it is
  re-commanded within `deadman_ms`. `check_deadman` is meant to run from a
  hardware Timer callback, independent of the main loop, so a hung loop
  cannot leave the motor running.
"""

from micropython import const

DUTY_FULL = const(10000)
SLEW_FULL_MS = const(150)
_SLEW_PER_MS = const(67)  # DUTY_FULL / SLEW_FULL_MS, rounded up
_PWM_FREQ_HZ = const(20000)  # above hearing
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
        pwm.freq(_PWM_FREQ_HZ)
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


class HBridgeDualPwm(HBridgePwmDir):
    """Dual-PWM bridge (BTS7960 / IBT-2 class): RPWM extends, LPWM retracts.

    Same API and guarantees as HBridgePwmDir (signed duty +-DUTY_FULL,
    slew-limited command(), immediate stop(), check_deadman() dead-man); only
    the output stage differs. `pwm_extend` and `pwm_retract` have
    freq()/duty_u16(); `enable` (R_EN and L_EN tied together) has value(),
    or is None when the enables are strapped high.

    Both PWM inputs are never on at once: on a BTS7960 both high connects the
    motor across both high-side switches (a brake that heats the bridge and
    fights the drive), and on discrete bridges the same pattern is a supply
    short. _apply therefore switches the idle side off before it drives the
    other, and the enable goes high only after the PWMs are set and low before
    they are cleared. The dead-man callback may interrupt _apply (it runs from
    a timer); it only ever writes zeros, so it cannot create the both-on state
    either.
    """

    def __init__(self, pwm_extend, pwm_retract, clock, enable=None,
                 deadman_ms=DEFAULT_DEADMAN_MS):
        self._pwm_extend = pwm_extend
        self._pwm_retract = pwm_retract
        self._enable = enable
        self._clock = clock
        self.deadman_ms = deadman_ms
        self.duty = 0  # applied, signed
        self.deadman_trips = 0
        self._last_ms = clock.ticks_ms()
        self._refreshed_ms = self._last_ms
        if enable is not None:
            enable.value(0)
        pwm_extend.duty_u16(0)
        pwm_retract.duty_u16(0)
        pwm_extend.freq(_PWM_FREQ_HZ)
        pwm_retract.freq(_PWM_FREQ_HZ)
        self._apply(0)

    def _apply(self, duty):
        self.duty = duty
        enable = self._enable
        if duty > 0:
            self._pwm_retract.duty_u16(0)
            self._pwm_extend.duty_u16(duty * 65535 // DUTY_FULL)  # <= 6.6e8: small int
            if enable is not None:
                enable.value(1)
        elif duty < 0:
            self._pwm_extend.duty_u16(0)
            self._pwm_retract.duty_u16(-duty * 65535 // DUTY_FULL)
            if enable is not None:
                enable.value(1)
        else:
            if enable is not None:
                enable.value(0)
            self._pwm_extend.duty_u16(0)
            self._pwm_retract.duty_u16(0)
