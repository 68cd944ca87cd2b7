"""The H-bridge output slews softly and falls to zero when not refreshed."""

from firmware.drivers.hbridge import DUTY_FULL, SLEW_FULL_MS, HBridgePwmDir
from sim.clock import VirtualClock
from sim.peripherals import SimPin, SimPWM, SimTimer


def make(deadman_ms=50):
    clock = VirtualClock()
    pwm = SimPWM("pwm")
    dir_pin = SimPin("dir", SimPin.OUT, value=0)
    drive = HBridgePwmDir(pwm, dir_pin, clock, deadman_ms=deadman_ms)
    return clock, pwm, dir_pin, drive


def test_full_reversal_takes_at_least_the_soft_start_window():
    clock, pwm, dir_pin, drive = make()
    steps = 0
    while drive.duty != DUTY_FULL:
        clock.advance_us(10000)
        drive.command(DUTY_FULL)
        steps += 1
    assert steps * 10 >= SLEW_FULL_MS * 9 // 10
    assert pwm.duty_u16() == 65535 and dir_pin.value() == 1
    while drive.duty != -DUTY_FULL:
        clock.advance_us(10000)
        drive.command(-DUTY_FULL)
    assert dir_pin.value() == 0 and pwm.duty_u16() == 65535


def test_output_falls_to_zero_when_not_refreshed():
    clock, pwm, _, drive = make(deadman_ms=50)
    timer = SimTimer(clock)
    timer.init(mode=SimTimer.PERIODIC, period=20, callback=drive.check_deadman)
    for _ in range(30):
        clock.advance_us(10000)
        drive.command(5000)
    assert pwm.duty_u16() > 0
    clock.advance_us(40000)  # within the dead-man time: still driving
    assert pwm.duty_u16() > 0
    clock.advance_us(40000)  # past it: the timer callback zeroed the output
    assert pwm.duty_u16() == 0 and drive.duty == 0
    assert drive.deadman_trips == 1


def test_stop_is_immediate():
    clock, pwm, _, drive = make()
    for _ in range(30):
        clock.advance_us(10000)
        drive.command(DUTY_FULL)
    drive.stop()
    assert pwm.duty_u16() == 0 and drive.duty == 0
