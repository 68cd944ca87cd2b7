"""MPU-6050 register model: register semantics, power-up sleep, full-scale
settings, big-endian data that decodes to gravity at the right angle, NACK."""

import errno
import math
import statistics
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim.mpu6050_model as regs
from sim.clock import VirtualClock
from sim.mpu6050_model import Mpu6050Model
from sim.peripherals import SimI2C
from sim.plant import Plant, TableParams, User

ADDR = 0x68
IDEAL = {
    "mount_offset_deg": 0.0,
    "accel_bias_g": (0.0, 0.0, 0.0),
    "gyro_bias_dps": (0.0, 0.0, 0.0),
    "accel_noise_g": 0.0,
    "gyro_noise_dps": 0.0,
    "vibration_accel_g": 0.0,
    "vibration_gyro_dps": 0.0,
    "temperature_noise_c": 0.0,
}


class StatePlant:
    """Stand-in for Plant with a state set directly by the test."""

    def __init__(self, angle_deg=0.0, rate_dps=0.0, accel_dps2=0.0, duty=0.0):
        self.angle_deg = angle_deg
        self.rate_dps = rate_dps
        self.accel_dps2 = accel_dps2
        self.duty = duty


def make(plant=None, **kwargs):
    model = Mpu6050Model(plant or StatePlant(), **kwargs)
    return model, SimI2C({ADDR: model})


def wake(i2c):
    i2c.writeto_mem(ADDR, regs.PWR_MGMT_1, b"\x01")


def read_block(i2c):
    """Decode the 14-byte burst: ax, ay, az, temp, gx, gy, gz (big-endian int16)."""
    return struct.unpack(">7h", i2c.readfrom_mem(ADDR, regs.ACCEL_XOUT_H, 14))


def test_who_am_i_reads_0x68_and_ignores_writes():
    _, i2c = make()
    assert i2c.readfrom_mem(ADDR, regs.WHO_AM_I, 1) == b"\x68"
    i2c.writeto_mem(ADDR, regs.WHO_AM_I, b"\x00")
    assert i2c.readfrom_mem(ADDR, regs.WHO_AM_I, 1) == b"\x68"


def test_powers_up_asleep_with_zero_data_until_sleep_is_cleared():
    _, i2c = make(StatePlant(angle_deg=30.0, rate_dps=2.0))
    assert i2c.readfrom_mem(ADDR, regs.PWR_MGMT_1, 1)[0] & 0x40
    assert i2c.readfrom_mem(ADDR, regs.ACCEL_XOUT_H, 14) == bytes(14)
    wake(i2c)
    assert i2c.readfrom_mem(ADDR, regs.PWR_MGMT_1, 1) == b"\x01"
    ax, _ay, az, _temp, _gx, gy, _gz = read_block(i2c)
    assert ax != 0 and az != 0 and gy != 0


def test_device_reset_bit_restores_defaults_and_sleep():
    _, i2c = make()
    wake(i2c)
    i2c.writeto_mem(ADDR, regs.ACCEL_CONFIG, b"\x18")
    i2c.writeto_mem(ADDR, regs.PWR_MGMT_1, b"\x80")
    assert i2c.readfrom_mem(ADDR, regs.PWR_MGMT_1, 1) == b"\x40"
    assert i2c.readfrom_mem(ADDR, regs.ACCEL_CONFIG, 1) == b"\x00"


@pytest.mark.parametrize("reg", [regs.ACCEL_XOUT_H, regs.DATA_LAST, regs.INT_STATUS, 0x00, 0x7F])
def test_writes_to_read_only_registers_are_ignored(reg):
    model, i2c = make()
    before = bytes(model.registers)
    i2c.writeto_mem(ADDR, reg, b"\x5a")
    assert bytes(model.registers) == before


def test_register_pointer_auto_increments_for_writes_and_reads():
    _, i2c = make()
    i2c.writeto_mem(ADDR, regs.SMPLRT_DIV, bytes([7, 3, 0x08, 0x10]))  # 0x19..0x1C
    assert i2c.readfrom_mem(ADDR, regs.SMPLRT_DIV, 4) == bytes([7, 3, 0x08, 0x10])
    # A write that runs onto a read-only register skips it and keeps going.
    i2c.writeto_mem(ADDR, regs.PWR_MGMT_1, bytes([0x01, 0x00, 0xFF]))  # 0x6B, 0x6C, 0x6D
    assert i2c.readfrom_mem(ADDR, regs.PWR_MGMT_1, 2) == bytes([0x01, 0x00])


def test_register_pointer_wraps_at_0x80():
    _, i2c = make()
    data = i2c.readfrom_mem(ADDR, 0x7F, 2)
    assert data == bytes([0x00, 0x00])
    assert i2c.readfrom_mem(ADDR, 0x75, 1) == b"\x68"


def test_a_burst_is_one_sample_and_register_by_register_reads_agree_within_a_sample_period():
    plant = StatePlant(angle_deg=10.0, rate_dps=1.0, duty=0.5)
    clock = VirtualClock()
    _, i2c = make(plant, clock=clock)
    wake(i2c)
    burst = i2c.readfrom_mem(ADDR, regs.ACCEL_XOUT_H, 14)
    pieces = b"".join(i2c.readfrom_mem(ADDR, regs.ACCEL_XOUT_H + i, 2) for i in range(0, 14, 2))
    assert pieces == burst  # same sample: the clock has not moved
    clock.advance_us(1000)
    assert i2c.readfrom_mem(ADDR, regs.ACCEL_XOUT_H, 14) != burst  # new noise


def test_sample_rate_follows_smplrt_div_and_dlpf():
    model, i2c = make()
    assert model.sample_period_us() == 125  # 8 kHz, DLPF off
    i2c.writeto_mem(ADDR, regs.CONFIG, b"\x03")
    assert model.sample_period_us() == 1000
    i2c.writeto_mem(ADDR, regs.SMPLRT_DIV, b"\x09")
    assert model.sample_period_us() == 10000


@pytest.mark.parametrize("afs_sel, lsb_per_g", [(0, 16384), (1, 8192), (2, 4096), (3, 2048)])
def test_accel_full_scale_setting_sets_counts_per_g(afs_sel, lsb_per_g):
    _, i2c = make(StatePlant(angle_deg=0.0), **IDEAL)
    wake(i2c)
    i2c.writeto_mem(ADDR, regs.ACCEL_CONFIG, bytes([afs_sel << 3]))
    ax, ay, az, *_ = read_block(i2c)
    assert (ax, ay, az) == (0, 0, lsb_per_g)


@pytest.mark.parametrize("fs_sel, lsb_per_dps", [(0, 131.0), (1, 65.5), (2, 32.8), (3, 16.4)])
def test_gyro_full_scale_setting_sets_counts_per_dps(fs_sel, lsb_per_dps):
    _, i2c = make(StatePlant(rate_dps=100.0), **IDEAL)
    wake(i2c)
    i2c.writeto_mem(ADDR, regs.GYRO_CONFIG, bytes([fs_sel << 3]))
    gx, gy, gz = read_block(i2c)[4:]
    assert (gx, gz) == (0, 0)
    assert gy == round(100.0 * lsb_per_dps)


def test_readings_saturate_at_full_scale_instead_of_wrapping():
    _, i2c = make(StatePlant(angle_deg=90.0, rate_dps=-400.0, accel_dps2=-50000.0), **IDEAL)
    wake(i2c)  # +-2 g, +-250 dps
    ax, _ay, az, _temp, _gx, gy, _gz = read_block(i2c)
    assert gy == -32768
    assert ax == -32768  # -1 g gravity, -1.5 g centripetal (7 rad/s at 0.3 m)
    assert az == 32767  # tangential: 873 rad/s^2 * 0.3 m = 26.7 g


@pytest.mark.parametrize("angle_deg", [-62.0, -60.0, -30.0, 0.0, 30.0, 60.0, 89.0, 92.0])
def test_big_endian_data_decodes_to_one_g_at_the_table_angle_plus_mount_offset(angle_deg):
    plant = Plant(TableParams(), User(80, 1.8), angle_deg=angle_deg)
    model, i2c = make(plant, seed=3)
    wake(i2c)
    ax, _ay, az, *_ = read_block(i2c)
    ax_g, az_g = ax / 16384, az / 16384
    assert math.hypot(ax_g, az_g) == pytest.approx(1.0, abs=0.02)
    sensed_deg = math.degrees(math.atan2(-ax_g, az_g))
    assert sensed_deg == pytest.approx(angle_deg + model.mount_offset_deg, abs=0.8)


@given(angle_deg=st.floats(min_value=-62.0, max_value=92.0))
def test_ideal_sensor_angle_is_exact_to_quantisation(angle_deg):
    _, i2c = make(StatePlant(angle_deg=angle_deg), **IDEAL)
    wake(i2c)
    ax, _ay, az, *_ = read_block(i2c)
    assert math.degrees(math.atan2(-ax, az)) == pytest.approx(angle_deg, abs=0.01)


def test_head_down_rotation_reads_positive_gy():
    plant = Plant(TableParams(), User(80, 1.8), angle_deg=0.0)
    _, i2c = make(plant, **IDEAL)
    wake(i2c)
    for _ in range(50):
        plant.step(0.01, 0.5)
    gy = read_block(i2c)[5]
    assert plant.rate_dps > 0
    assert gy / 131.0 == pytest.approx(plant.rate_dps, abs=0.01)


def test_imu_arc_motion_adds_centripetal_and_tangential_acceleration():
    radius_m = 0.3
    _, i2c = make(StatePlant(angle_deg=0.0, rate_dps=60.0, accel_dps2=200.0), **IDEAL)
    wake(i2c)
    ax, _ay, az, *_ = read_block(i2c)
    g = 9.80665
    assert ax / 16384 == pytest.approx(-(math.radians(60.0) ** 2) * radius_m / g, abs=1e-4)
    assert az / 16384 == pytest.approx(1.0 - math.radians(200.0) * radius_m / g, abs=1e-4)


def test_biases_are_added_in_sensor_units():
    _, i2c = make(
        StatePlant(angle_deg=0.0),
        **dict(IDEAL, accel_bias_g=(0.004, -0.003, 0.006), gyro_bias_dps=(0.8, -1.2, 0.5)),
    )
    wake(i2c)
    ax, ay, az, _temp, gx, gy, gz = read_block(i2c)
    assert (ax, ay, az) == (round(0.004 * 16384), round(-0.003 * 16384), round(1.006 * 16384))
    assert (gx, gy, gz) == (round(0.8 * 131), round(-1.2 * 131), round(0.5 * 131))


def test_noise_and_motor_vibration_have_the_specified_rms():
    clock = VirtualClock()

    def spread(duty):
        _, i2c = make(StatePlant(angle_deg=0.0, duty=duty), seed=11, clock=clock)
        wake(i2c)
        ax, gy = [], []
        for _ in range(2000):
            clock.advance_us(1000)
            sample = read_block(i2c)
            ax.append(sample[0] / 16384)
            gy.append(sample[5] / 131)
        return statistics.pstdev(ax), statistics.pstdev(gy)

    quiet_g, quiet_dps = spread(0.0)
    loud_g, loud_dps = spread(1.0)
    assert quiet_g == pytest.approx(0.003, rel=0.15)
    assert quiet_dps == pytest.approx(0.04, rel=0.25)  # 0.04 dps is ~5 LSB: quantised
    assert loud_g == pytest.approx(math.hypot(0.003, 0.05), rel=0.1)
    assert loud_dps == pytest.approx(math.hypot(0.04, 0.3), rel=0.1)


def test_temperature_register_reads_a_plausible_board_temperature():
    _, i2c = make(temperature_c=31.0)
    wake(i2c)
    temp_raw = read_block(i2c)[3]
    assert temp_raw / 340 + 36.53 == pytest.approx(31.0, abs=0.3)


def test_same_seed_same_bytes_and_different_seed_different_bytes():
    def first_bytes(seed):
        _, i2c = make(StatePlant(angle_deg=5.0), seed=seed)
        wake(i2c)
        return i2c.readfrom_mem(ADDR, regs.ACCEL_XOUT_H, 14)

    assert first_bytes(4) == first_bytes(4)
    assert first_bytes(4) != first_bytes(5)


def test_nack_makes_every_transfer_raise_enodev_like_micropython():
    model, i2c = make()
    model.nack = True
    for transfer in (
        lambda: i2c.readfrom_mem(ADDR, regs.WHO_AM_I, 1),
        lambda: i2c.readfrom_mem_into(ADDR, regs.ACCEL_XOUT_H, bytearray(14)),
        lambda: i2c.writeto_mem(ADDR, regs.PWR_MGMT_1, b"\x00"),
    ):
        with pytest.raises(OSError) as info:
            transfer()
        assert info.value.errno == errno.ENODEV == 19
    assert i2c.scan() == []
    model.nack = False
    assert i2c.scan() == [ADDR]


def test_frozen_sensor_repeats_the_same_bytes():
    clock = VirtualClock()
    model, i2c = make(StatePlant(angle_deg=5.0), clock=clock)
    wake(i2c)
    first = i2c.readfrom_mem(ADDR, regs.ACCEL_XOUT_H, 14)
    model.frozen = True
    clock.advance_us(10_000)
    assert i2c.readfrom_mem(ADDR, regs.ACCEL_XOUT_H, 14) == first


def test_the_project_driver_reads_the_model_through_simi2c():
    from firmware.drivers.mpu6050 import ACCEL_LSB_PER_G, MPU6050

    plant = Plant(TableParams(), User(80, 1.8), angle_deg=30.0)
    _model, i2c = make(plant, **IDEAL)
    driver = MPU6050(i2c, ADDR)
    driver.init()
    driver.read()
    angle = math.degrees(math.atan2(-driver.ax, driver.az))
    assert angle == pytest.approx(30.0, abs=0.05)
    assert math.hypot(driver.ax, driver.az) / ACCEL_LSB_PER_G == pytest.approx(1.0, abs=0.01)
