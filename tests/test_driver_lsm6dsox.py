"""LSM6DSOX: the register model behaves like the chip, and the real firmware
driver reads the table angle and rate from it in the firmware's sensor frame."""

import errno
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim.lsm6dsox_model as regs
from firmware.drivers import lsm6dsox
from firmware.drivers.lsm6dsox import ACCEL_LSB_PER_G, GYRO_LSB_PER_DPS_X10, LSM6DSOX
from sim.clock import VirtualClock
from sim.imu_physics import ImuPhysics
from sim.lsm6dsox_model import Lsm6dsoxModel
from sim.mpu6050_model import Mpu6050Model
from sim.peripherals import SimI2C
from sim.plant import Plant, TableParams, User

ADDR = 0x6A
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
    model = Lsm6dsoxModel(plant or StatePlant(), **kwargs)
    return model, SimI2C({ADDR: model})


def start(i2c, ctrl1=0x5A, ctrl2=0x50, ctrl3=0x44):
    i2c.writeto_mem(ADDR, regs.CTRL3_C, bytes([ctrl3]))
    i2c.writeto_mem(ADDR, regs.CTRL1_XL, bytes([ctrl1]))
    i2c.writeto_mem(ADDR, regs.CTRL2_G, bytes([ctrl2]))


def read_block(i2c):
    """temp, gx, gy, gz, ax, ay, az in chip axes (little-endian int16)."""
    return struct.unpack("<7h", i2c.readfrom_mem(ADDR, regs.OUT_TEMP_L, 14))


def driver_for(plant, **kwargs):
    model, i2c = make(plant, **kwargs)
    imu = LSM6DSOX(i2c, ADDR)
    imu.init()
    return model, i2c, imu


# --- the register model ------------------------------------------------------------


def test_who_am_i_reads_0x6c_and_ignores_writes():
    _, i2c = make()
    assert i2c.readfrom_mem(ADDR, regs.WHO_AM_I, 1) == b"\x6c"
    i2c.writeto_mem(ADDR, regs.WHO_AM_I, b"\x00")
    assert i2c.readfrom_mem(ADDR, regs.WHO_AM_I, 1) == b"\x6c"


def test_reset_values_and_both_sensors_powered_down_until_given_a_data_rate():
    _, i2c = make(StatePlant(angle_deg=30.0, rate_dps=2.0))
    assert i2c.readfrom_mem(ADDR, regs.CTRL1_XL, 3) == bytes([0x00, 0x00, 0x04])  # IF_INC on
    assert i2c.readfrom_mem(ADDR, regs.CTRL9_XL, 1) == b"\xe0"
    assert i2c.readfrom_mem(ADDR, regs.OUT_TEMP_L, 14) == bytes(14)
    i2c.writeto_mem(ADDR, regs.CTRL1_XL, b"\x58")  # accelerometer only
    _t, gx, gy, gz, ax, _ay, az = read_block(i2c)
    assert (gx, gy, gz) == (0, 0, 0) and ax != 0 and az != 0
    i2c.writeto_mem(ADDR, regs.CTRL2_G, b"\x50")
    assert read_block(i2c)[1] != 0  # gyro chip X = -(table rate): now measuring


def test_powered_down_sensor_keeps_its_last_sample():
    clock = VirtualClock()
    _, i2c = make(StatePlant(angle_deg=10.0), clock=clock)
    start(i2c)
    first = read_block(i2c)
    i2c.writeto_mem(ADDR, regs.CTRL1_XL, b"\x00")
    i2c.writeto_mem(ADDR, regs.CTRL2_G, b"\x00")
    clock.advance_us(50_000)
    assert read_block(i2c) == first


def test_sw_reset_restores_defaults_and_clears_itself():
    _, i2c = make()
    start(i2c)
    i2c.writeto_mem(ADDR, regs.CTRL3_C, b"\x45")  # BDU + IF_INC + SW_RESET
    assert i2c.readfrom_mem(ADDR, regs.CTRL3_C, 1) == b"\x04"
    assert i2c.readfrom_mem(ADDR, regs.CTRL1_XL, 2) == b"\x00\x00"


@pytest.mark.parametrize("reg", [regs.WHO_AM_I, regs.STATUS_REG, regs.OUT_TEMP_L, regs.DATA_LAST,
                                 0x00, 0x7F])
def test_writes_to_read_only_registers_are_ignored(reg):
    model, i2c = make()
    before = bytes(model.registers)
    i2c.writeto_mem(ADDR, reg, b"\x5a")
    assert bytes(model.registers) == before


def test_auto_increment_follows_if_inc():
    _, i2c = make()
    i2c.writeto_mem(ADDR, regs.CTRL1_XL, bytes([0x5A, 0x50]))  # 0x10, 0x11
    assert i2c.readfrom_mem(ADDR, regs.CTRL1_XL, 2) == bytes([0x5A, 0x50])
    i2c.writeto_mem(ADDR, regs.CTRL3_C, b"\x40")  # BDU, IF_INC off
    assert i2c.readfrom_mem(ADDR, regs.CTRL1_XL, 3) == bytes([0x5A, 0x5A, 0x5A])


def test_data_are_little_endian_at_the_configured_full_scale():
    _, i2c = make(StatePlant(angle_deg=0.0, rate_dps=100.0), **IDEAL)
    start(i2c, ctrl1=0x58, ctrl2=0x50)  # +-4 g, +-250 dps
    raw = i2c.readfrom_mem(ADDR, regs.OUTX_L_A + 4, 2)  # OUTZ_A: 1 g
    assert raw[0] | raw[1] << 8 == round(1000 / 0.122)
    _t, gx, _gy, _gz, *_ = read_block(i2c)
    assert gx == -round(100.0 * 1000 / 8.75)  # chip X = -(pivot axis y)


@pytest.mark.parametrize("fs_bits, mg_per_lsb", [(0, 0.061), (1, 0.488), (2, 0.122), (3, 0.244)])
def test_accel_full_scale_codes(fs_bits, mg_per_lsb):
    _, i2c = make(StatePlant(angle_deg=0.0), **IDEAL)
    start(i2c, ctrl1=0x50 | fs_bits << 2)
    assert read_block(i2c)[6] == round(1000 / mg_per_lsb)


def test_xl_fs_mode_makes_code_01_two_g():
    _, i2c = make(StatePlant(angle_deg=0.0), **IDEAL)
    i2c.writeto_mem(ADDR, regs.CTRL8_XL, b"\x02")
    start(i2c, ctrl1=0x54)
    assert read_block(i2c)[6] == round(1000 / 0.061)


@pytest.mark.parametrize("ctrl2, mdps_per_lsb", [(0x50, 8.75), (0x54, 17.5), (0x58, 35.0),
                                                  (0x5C, 70.0), (0x52, 4.375)])
def test_gyro_full_scale_codes(ctrl2, mdps_per_lsb):
    _, i2c = make(StatePlant(rate_dps=-50.0), **IDEAL)
    start(i2c, ctrl2=ctrl2)
    assert read_block(i2c)[1] == round(50.0 * 1000 / mdps_per_lsb)


def test_samples_follow_each_sensors_data_rate():
    clock = VirtualClock()
    model, i2c = make(StatePlant(angle_deg=5.0), clock=clock)
    start(i2c, ctrl1=0x3A, ctrl2=0x50)  # accel 52 Hz, gyro 208 Hz
    first = read_block(i2c)
    clock.advance_us(5_000)  # past the gyro period (4.8 ms), not the accel's (19.2 ms)
    second = read_block(i2c)
    assert second[4:] == first[4:] and second[1:4] != first[1:4]
    clock.advance_us(15_000)
    assert read_block(i2c)[4:] != first[4:]
    assert model.samples_taken == 3


def test_status_flags_new_data_and_reading_clears_them():
    clock = VirtualClock()
    _, i2c = make(StatePlant(angle_deg=5.0), clock=clock)
    start(i2c)
    assert i2c.readfrom_mem(ADDR, regs.STATUS_REG, 1)[0] & 0x07 == 0x07
    read_block(i2c)
    assert i2c.readfrom_mem(ADDR, regs.STATUS_REG, 1)[0] & 0x07 == 0
    clock.advance_us(10_000)
    assert i2c.readfrom_mem(ADDR, regs.STATUS_REG, 1)[0] & 0x07 == 0x07


@pytest.mark.parametrize("bdu, same_sample", [(True, True), (False, False)])
def test_bdu_keeps_a_pair_from_one_sample(bdu, same_sample):
    """Low byte in one transfer, high byte in the next, a new sample due in
    between: with BDU both bytes come from the first sample."""
    clock = VirtualClock()
    # A large gyro noise makes every sample's high byte differ.
    model, i2c = make(StatePlant(rate_dps=0.0), clock=clock, gyro_noise_dps=100.0, seed=5)
    start(i2c, ctrl3=0x44 if bdu else 0x04)
    whole = i2c.readfrom_mem(ADDR, regs.OUTX_L_G, 2)
    clock.advance_us(10_000)
    low = i2c.readfrom_mem(ADDR, regs.OUTX_L_G, 1)  # new sample latched here
    clock.advance_us(10_000)
    high = i2c.readfrom_mem(ADDR, regs.OUTX_L_G + 1, 1)
    pair = bytes(low + high)
    expected_first = model.registers[regs.OUTX_L_G: regs.OUTX_L_G + 2]
    assert whole != pair
    assert (bytes(expected_first) == pair) == same_sample


def test_nack_makes_every_transfer_raise_enodev_and_the_driver_passes_it_on():
    model, i2c = make()
    model.nack = True
    for transfer in (
        lambda: i2c.readfrom_mem(ADDR, regs.WHO_AM_I, 1),
        lambda: i2c.writeto_mem(ADDR, regs.CTRL1_XL, b"\x50"),
    ):
        with pytest.raises(OSError) as info:
            transfer()
        assert info.value.errno == errno.ENODEV
    imu = LSM6DSOX(i2c, ADDR)
    with pytest.raises(OSError) as info:
        imu.init()
    assert info.value.errno == errno.ENODEV
    model.nack = False
    imu.init()
    model.nack = True
    with pytest.raises(OSError):
        imu.read()
    assert i2c.scan() == []


def test_frozen_model_repeats_bytes_and_the_driver_counts_frozen_reads():
    clock = VirtualClock()
    plant = StatePlant(angle_deg=5.0)
    model, _i2c, imu = driver_for(plant, clock=clock)
    clock.advance_us(10_000)
    imu.read()
    model.frozen = True
    for _ in range(5):
        clock.advance_us(10_000)
        imu.read()
    assert imu.frozen_reads == 5
    model.frozen = False
    clock.advance_us(10_000)
    imu.read()
    assert imu.frozen_reads == 0


def test_the_chip_model_reuses_the_shared_sensor_physics():
    assert issubclass(Lsm6dsoxModel, ImuPhysics) and issubclass(Mpu6050Model, ImuPhysics)
    assert "measure" not in vars(Lsm6dsoxModel) and "measure" not in vars(Mpu6050Model)
    with pytest.raises(TypeError, match="wobble"):
        Lsm6dsoxModel(StatePlant(), wobble=1)


# --- the firmware driver against the model -------------------------------------------


def test_driver_init_configures_bdu_auto_increment_rates_ranges_and_i3c_off():
    model, _i2c, _imu = driver_for(StatePlant())
    r = model.registers
    assert r[regs.CTRL3_C] == 0x44
    assert r[regs.CTRL1_XL] == 0x5A and model.accel_odr_hz == 208
    assert r[regs.CTRL2_G] == 0x50 and model.gyro_odr_hz == 208
    assert r[regs.CTRL9_XL] == 0xE2
    assert model.accel_lsb_per_g == pytest.approx(ACCEL_LSB_PER_G, abs=0.5)
    assert model.gyro_lsb_per_dps == pytest.approx(GYRO_LSB_PER_DPS_X10 / 10, abs=0.05)


def test_driver_init_resets_a_chip_left_configured_by_a_previous_boot():
    model, i2c = make(StatePlant())
    i2c.writeto_mem(ADDR, regs.CTRL1_XL, b"\x1c")  # +-8 g, 12.5 Hz: someone else's settings
    i2c.writeto_mem(ADDR, regs.CTRL7_G, b"\x40")
    LSM6DSOX(i2c, ADDR).init()
    assert model.registers[regs.CTRL1_XL] == 0x5A and model.registers[regs.CTRL7_G] == 0


def test_driver_refuses_another_chip_naming_what_answered():
    model, i2c = make()
    model.registers[regs.WHO_AM_I] = 0x6B  # an LSM6DSO32 or similar
    with pytest.raises(OSError, match="0x6b"):
        LSM6DSOX(i2c, ADDR).init()


@pytest.mark.parametrize("angle_deg", [-62.0, -60.0, -30.0, 0.0, 30.0, 60.0, 89.0, 92.0])
def test_driver_reads_gravity_at_the_table_angle_in_the_sensor_frame(angle_deg):
    plant = Plant(TableParams(), User(80, 1.8), angle_deg=angle_deg)
    model, _i2c, imu = driver_for(plant, seed=3)
    imu.read()
    ax_g, ay_g, az_g = imu.ax / ACCEL_LSB_PER_G, imu.ay / ACCEL_LSB_PER_G, imu.az / ACCEL_LSB_PER_G
    assert math.hypot(ax_g, az_g) == pytest.approx(1.0, abs=0.02)
    assert abs(ay_g) < 0.02  # the pivot axis sees no gravity
    sensed_deg = math.degrees(math.atan2(-ax_g, az_g))
    assert sensed_deg == pytest.approx(angle_deg + model.mount_offset_deg, abs=0.8)


@given(angle_deg=st.floats(min_value=-62.0, max_value=92.0))
def test_ideal_sensor_angle_through_the_driver_is_exact_to_quantisation(angle_deg):
    _model, _i2c, imu = driver_for(StatePlant(angle_deg=angle_deg), **IDEAL)
    imu.read()
    assert math.degrees(math.atan2(-imu.ax, imu.az)) == pytest.approx(angle_deg, abs=0.01)
    assert imu.ay == 0


@pytest.mark.parametrize("rate_dps", [-6.0, -2.0, 0.5, 3.0])
def test_driver_gy_is_positive_when_the_angle_increases(rate_dps):
    _model, _i2c, imu = driver_for(StatePlant(angle_deg=10.0, rate_dps=rate_dps), **IDEAL)
    imu.read()
    assert imu.gy * 10 / GYRO_LSB_PER_DPS_X10 == pytest.approx(rate_dps, abs=0.01)
    assert imu.gx == 0 and imu.gz == 0


def test_driver_follows_a_moving_plant_head_down():
    plant = Plant(TableParams(), User(80, 1.8), angle_deg=0.0)
    clock = VirtualClock()
    _model, _i2c, imu = driver_for(plant, clock=clock, **IDEAL)
    for _ in range(50):
        plant.step(0.01, 0.5)
        clock.advance_us(10_000)
    imu.read()
    assert plant.rate_dps > 0
    assert imu.gy * 10 / GYRO_LSB_PER_DPS_X10 == pytest.approx(plant.rate_dps, abs=0.02)


def test_driver_temperature_is_256_lsb_per_degree_from_25_c():
    _model, _i2c, imu = driver_for(StatePlant(), temperature_c=31.0, temperature_noise_c=0.0)
    imu.read()
    assert imu.temp_raw / 256 + 25 == pytest.approx(31.0, abs=0.01)


def test_driver_read_allocates_nothing_new_and_keeps_ints_small():
    _model, _i2c, imu = driver_for(StatePlant(angle_deg=90.0, rate_dps=-300.0), **IDEAL)
    buf = imu._buf
    imu.read()
    assert imu._buf is buf
    for name in ("ax", "ay", "az", "gx", "gy", "gz", "temp_raw"):
        value = getattr(imu, name)
        assert type(value) is int and abs(value) <= 32768
    assert lsm6dsox.DEFAULT_ADDR == ADDR
