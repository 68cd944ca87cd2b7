"""HBridgeDualPwm (BTS7960 / IBT-2): the PWM/DIR bridge's guarantees (signed
duty, soft start/stop, immediate stop, dead-man), and never both inputs on."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.drivers.hbridge import DUTY_FULL, SLEW_FULL_MS, HBridgePwmDir
from firmware.drivers.hbridge_dual_pwm import HBridgeDualPwm
from sim.board import ShootThrough, SimBoard
from sim.clock import VirtualClock
from sim.peripherals import SimPin, SimPWM, SimTimer
from sim.plant import User


class Bridge:
    """Two PWM inputs and an enable, with every write checked: the test fails
    at the first moment both inputs are on at once."""

    def __init__(self):
        self.writes = []
        self.both_on = []
        bridge = self

        class CheckedPWM(SimPWM):
            def duty_u16(self, *args):
                result = super().duty_u16(*args)
                if args:
                    bridge.writes.append((self.dest, args[0]))
                    bridge.check()
                return result

        self.extend = CheckedPWM("rpwm")
        self.retract = CheckedPWM("lpwm")
        self.enable = SimPin("en", SimPin.OUT, value=0)

    def check(self):
        if self.extend.duty_u16() and self.retract.duty_u16():
            self.both_on.append((self.extend.duty_u16(), self.retract.duty_u16()))

    def signed(self):
        """The duty the bridge applies, + = extend, in DUTY_FULL units."""
        if not self.enable.value():
            return 0
        return round((self.extend.duty_u16() - self.retract.duty_u16()) * DUTY_FULL / 65535)


def make(deadman_ms=50, enable=True):
    clock = VirtualClock()
    bridge = Bridge()
    drive = HBridgeDualPwm(bridge.extend, bridge.retract, clock,
                           bridge.enable if enable else None, deadman_ms=deadman_ms)
    return clock, bridge, drive


def test_starts_off_with_both_inputs_low_and_enable_low_at_20_khz():
    _clock, bridge, drive = make()
    assert drive.duty == 0
    assert bridge.extend.duty_u16() == 0 and bridge.retract.duty_u16() == 0
    assert bridge.enable.value() == 0
    assert bridge.extend.freq() == 20000 and bridge.retract.freq() == 20000


def test_signed_duty_drives_one_input_and_enables_the_bridge():
    clock, bridge, drive = make()
    for _ in range(30):
        clock.advance_us(10_000)
        drive.command(5000)
    assert drive.duty == 5000
    assert bridge.extend.duty_u16() == 5000 * 65535 // DUTY_FULL and bridge.retract.duty_u16() == 0
    assert bridge.enable.value() == 1 and bridge.signed() == 5000
    for _ in range(30):
        clock.advance_us(10_000)
        drive.command(-DUTY_FULL)
    assert bridge.extend.duty_u16() == 0 and bridge.retract.duty_u16() == 65535
    assert bridge.signed() == -DUTY_FULL
    assert bridge.both_on == []


def test_full_reversal_takes_at_least_the_soft_start_window_like_pwm_dir():
    def steps_to_reverse(drive, clock):
        while drive.duty != DUTY_FULL:
            clock.advance_us(10_000)
            drive.command(DUTY_FULL)
        steps = 0
        while drive.duty != -DUTY_FULL:
            clock.advance_us(10_000)
            drive.command(-DUTY_FULL)
            steps += 1
        return steps

    clock, bridge, dual = make()
    clock2 = VirtualClock()
    single = HBridgePwmDir(SimPWM("pwm"), SimPin("dir", SimPin.OUT, value=0), clock2)
    assert steps_to_reverse(dual, clock) == steps_to_reverse(single, clock2)
    assert steps_to_reverse(dual, clock) * 10 >= 2 * SLEW_FULL_MS * 9 // 10
    assert bridge.both_on == []


def test_the_same_commands_give_the_same_duties_as_the_pwm_dir_bridge():
    clock, bridge, dual = make()
    clock2 = VirtualClock()
    single = HBridgePwmDir(SimPWM("pwm"), SimPin("dir", SimPin.OUT, value=0), clock2)
    for target in [3000, 10000, -10000, 0, -2500, 7000, -7000, 0]:
        for _ in range(25):
            clock.advance_us(7_000)
            clock2.advance_us(7_000)
            dual.command(target)
            single.command(target)
            assert dual.duty == single.duty
            assert bridge.signed() == pytest.approx(dual.duty, abs=1)


def test_output_falls_to_zero_when_not_refreshed_and_the_enable_drops():
    clock, bridge, drive = make(deadman_ms=50)
    timer = SimTimer(clock)
    timer.init(mode=SimTimer.PERIODIC, period=20, callback=drive.check_deadman)
    for _ in range(30):
        clock.advance_us(10_000)
        drive.command(-5000)
    assert bridge.retract.duty_u16() > 0
    clock.advance_us(40_000)  # within the dead-man time: still driving
    assert bridge.retract.duty_u16() > 0
    clock.advance_us(40_000)  # past it: the timer callback zeroed the output
    assert bridge.retract.duty_u16() == 0 and bridge.extend.duty_u16() == 0
    assert bridge.enable.value() == 0 and drive.duty == 0
    assert drive.deadman_trips == 1


def test_stop_is_immediate():
    clock, bridge, drive = make()
    for _ in range(30):
        clock.advance_us(10_000)
        drive.command(DUTY_FULL)
    drive.stop()
    assert drive.duty == 0 and bridge.signed() == 0
    assert bridge.extend.duty_u16() == 0 and bridge.enable.value() == 0


def test_works_without_an_enable_pin():
    clock, bridge, drive = make(enable=False)
    for _ in range(30):
        clock.advance_us(10_000)
        drive.command(-DUTY_FULL)
    assert bridge.retract.duty_u16() == 65535 and bridge.extend.duty_u16() == 0
    drive.stop()
    assert bridge.retract.duty_u16() == 0


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(-12000, 12000), st.integers(1, 80),
                          st.sampled_from(["command", "stop", "deadman"])),
                min_size=1, max_size=60))
def test_both_inputs_are_never_on_at_once(ops):
    """Any sequence of commands (reversals, overshooting values, uneven
    periods), stops and dead-man checks: no write ever leaves both on."""
    clock, bridge, drive = make(deadman_ms=50)
    for duty, dt_ms, op in ops:
        clock.advance_us(dt_ms * 1000)
        if op == "command":
            drive.command(duty)
        elif op == "stop":
            drive.stop()
        else:
            drive.check_deadman()
        assert -DUTY_FULL <= drive.duty <= DUTY_FULL
        assert bridge.signed() == pytest.approx(drive.duty, abs=1)
    assert bridge.both_on == []


def test_a_dead_man_check_in_the_middle_of_a_reversal_cannot_turn_both_on():
    """The timer callback may run between any two pin writes of _apply."""
    clock, bridge, drive = make(deadman_ms=50)
    for _ in range(30):
        clock.advance_us(10_000)
        drive.command(DUTY_FULL)
    interrupts = []
    check_both_on = bridge.check

    def interrupt_after_write():
        check_both_on()
        if len(interrupts) < 200:
            interrupts.append(1)
            clock.advance_us(60_000)  # the loop looks stale to the callback
            drive.check_deadman()

    bridge.check = interrupt_after_write
    for _ in range(40):
        clock.advance_us(10_000)
        drive.command(-DUTY_FULL)
    assert interrupts and drive.deadman_trips > 0
    assert bridge.both_on == []


# --- the simulated dual-PWM board ---------------------------------------------------------


def test_sim_board_decodes_the_dual_pwm_inputs_to_a_signed_duty():
    b = SimBoard(User(80, 1.8), hbridge="dual_pwm")
    assert b.motor_dir is None and b.duty == 0.0
    b.motor_pwm.duty_u16(32768)
    assert b.duty == 0.0  # enable low: the bridge is off
    b.motor_enable.value(1)
    assert b.duty == 0.0  # the actuator power relay is open until the firmware closes it
    b.motor_power.value(1)
    assert b.duty == pytest.approx(0.5, abs=1e-4)
    b.motor_pwm.duty_u16(0)
    b.motor_pwm_retract.duty_u16(65535)
    assert b.duty == pytest.approx(-1.0)
    start = b.plant.angle_deg
    for _ in range(50):
        b.step(10_000)
    assert b.plant.angle_deg < start  # retract = head-up, toward the home-side stop


def test_sim_board_treats_both_inputs_on_as_a_shoot_through_fault():
    b = SimBoard(User(80, 1.8), hbridge="dual_pwm")
    b.motor_pwm.duty_u16(1000)
    with pytest.raises(ShootThrough, match="RPWM duty_u16=1000, LPWM duty_u16=2000"):
        b.motor_pwm_retract.duty_u16(2000)
    assert b.shoot_through_events == 1
    b.shoot_through_raises = False
    b.motor_enable.value(1)
    b.motor_pwm.duty_u16(3000)
    assert b.shoot_through_events == 2
    assert b.duty == 0.0  # no net drive is applied to the plant


def test_unknown_sim_board_options_are_refused():
    with pytest.raises(ValueError, match="l298"):
        SimBoard(User(80, 1.8), hbridge="l298")
    with pytest.raises(ValueError, match="bmi270"):
        SimBoard(User(80, 1.8), imu="bmi270")
