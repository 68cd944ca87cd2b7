"""Dual-PWM H-bridge driver (BTS7960 / IBT-2 class), the PWM/DIR bridge's
guarantees (firmware/drivers/hbridge.py) with two PWM inputs.

Its own module so that a board with a PWM/DIR bridge does not carry it in RAM.
"""

from firmware.drivers.hbridge import DEFAULT_DEADMAN_MS, DUTY_FULL, PWM_FREQ_HZ, HBridgePwmDir


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
        pwm_extend.freq(PWM_FREQ_HZ)
        pwm_retract.freq(PWM_FREQ_HZ)
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
