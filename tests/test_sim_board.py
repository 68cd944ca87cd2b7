"""SimBoard: the firmware-facing attributes of a real board, wired to the
plant (button contacts, end switches, motor bridge, current ADC, timers)."""

import pytest

from sim.board import SimBoard
from sim.peripherals import SimADC, SimI2C, SimPin, SimPWM, SimTimer, SimWDT
from sim.plant import TableParams, User

FIRMWARE_ATTRIBUTES = {
    "name",
    "clock",
    "i2c",
    "imu_addr",
    "motor_pwm",
    "motor_dir",
    "current_adc",
    "current_full_scale_ma",
    "button_no",
    "button_nc",
    "home_switch",
    "far_switch",
    "wdt",
    "deadman_timer",
    "table_geometry",
    "imu_mount_offset_mdeg",
}


def board(**kwargs):
    """A board whose actuator power relay is closed, as the firmware leaves it
    (these tests drive the bridge inputs directly)."""
    b = SimBoard(User(80, 1.8), **kwargs)
    b.motor_power.value(1)
    return b


def test_board_exposes_the_firmware_attributes_with_the_right_kinds():
    b = board()
    for name in FIRMWARE_ATTRIBUTES:
        assert hasattr(b, name), name
    assert b.name == "sim"
    assert b.imu_addr == 0x68 and b.i2c.scan() == [0x68]
    assert isinstance(b.i2c, SimI2C)
    assert isinstance(b.motor_pwm, SimPWM) and isinstance(b.motor_dir, SimPin)
    assert isinstance(b.current_adc, SimADC) and b.current_full_scale_ma == 20000
    assert isinstance(b.wdt, SimWDT) and b.wdt.timeout_ms == 1000
    assert isinstance(b.deadman_timer, SimTimer)
    assert b.imu_mount_offset_mdeg == 800
    assert set(b.table_geometry) == {
        "lever_m",
        "base_m",
        "phi_offset_deg",
        "noload_speed_mps",
        "home_deg",
        "pot_retracted_deg",  # the position pot's calibration
        "pot_stroke_m",
    }
    assert b.clock.ticks_ms() == 2**30 - 5000


def test_start_ms_and_imu_kwargs_reach_the_clock_and_the_model():
    b = board(start_ms=42, imu_kwargs={"mount_offset_deg": -1.25})
    assert b.clock.ticks_ms() == 42
    assert b.imu_mount_offset_mdeg == -1250


def test_button_contacts_read_like_no_and_nc_switches_to_ground():
    b = board()
    assert (b.button_no.value(), b.button_nc.value()) == (1, 0)
    b.press_button()
    assert b.button_pressed
    assert (b.button_no.value(), b.button_nc.value()) == (0, 1)
    b.release_button()
    assert (b.button_no.value(), b.button_nc.value()) == (1, 0)


def test_button_press_fires_a_pin_irq_at_once():
    b = board()
    seen = []
    b.button_no.irq(handler=lambda p: seen.append(p.value()), trigger=SimPin.IRQ_FALLING)
    b.press_button()
    assert seen == [0]


def test_end_switches_read_1_when_engaged():
    b = board()
    assert b.home_switch.value() == 0  # home is short of the over-travel switch
    assert b.far_switch.value() == 0
    b.motor_dir.value(0)
    b.motor_pwm.duty_u16(65535)
    for _ in range(30):
        b.step(10_000)
    assert b.home_switch.value() == 1  # driven past home toward the stroke end
    b.motor_dir.value(1)
    for _ in range(1500):
        b.step(10_000)
    assert b.far_switch.value() == 1


def test_duty_is_decoded_from_pwm_magnitude_and_direction_pin():
    b = board()
    assert b.duty == 0.0
    b.motor_pwm.duty_u16(32768)
    b.motor_dir.value(1)
    assert b.duty == pytest.approx(0.5, abs=1e-4)
    b.motor_dir.value(0)
    assert b.duty == pytest.approx(-0.5, abs=1e-4)


def test_step_drives_the_plant_head_down_with_dir_1_and_advances_the_clock():
    b = board()
    start = b.plant.angle_deg
    b.motor_dir.value(1)
    b.motor_pwm.duty_u16(20000)
    for _ in range(100):
        b.step(10_000)
    assert b.plant.angle_deg > start + 5
    assert b.clock.elapsed_us == 1_000_000


def test_current_adc_reports_actuator_current_against_full_scale():
    b = board()
    assert b.current_adc.read_u16() == 0
    b.motor_dir.value(0)
    b.motor_pwm.duty_u16(65535)
    for _ in range(20):
        b.step(10_000)  # driving into the home-side stop: stall current
    assert b.plant.at_hard_stop
    expected_ma = TableParams.stall_current_a * 1000
    measured_ma = b.current_adc.read_u16() / 65535 * b.current_full_scale_ma
    assert measured_ma == pytest.approx(expected_ma, rel=0.01)


def test_a_timer_due_inside_a_step_cuts_the_motor_at_its_due_time():
    b = board()
    b.motor_dir.value(1)
    b.motor_pwm.duty_u16(65535)
    b.step(200_000)
    b.deadman_timer.init(
        mode=SimTimer.ONE_SHOT, period=3, callback=lambda t: b.motor_pwm.duty_u16(0)
    )
    b.step(10_000)
    # Reference: the same motion cut at exactly 3 ms.
    ref = board()
    ref.motor_dir.value(1)
    ref.motor_pwm.duty_u16(65535)
    ref.step(200_000)
    ref.step(3_000)
    ref.motor_pwm.duty_u16(0)
    ref.step(7_000)
    assert b.plant.angle_deg == pytest.approx(ref.plant.angle_deg, abs=1e-9)


def test_same_seed_gives_the_same_imu_bytes():
    def first(seed):
        b = board(seed=seed)
        b.i2c.writeto_mem(0x68, 0x6B, b"\x01")
        b.step(10_000)
        return b.i2c.readfrom_mem(0x68, 0x3B, 14)

    assert first(7) == first(7)
    assert first(7) != first(8)
