"""ST LSM6DSOX accelerometer + gyro, read over I2C.

Same public API as firmware/drivers/mpu6050.py (the controller takes either,
by `board.imu_type`): init(), read() filling ax, ay, az, gx, gy, gz,
temp_raw, sample, frozen_reads, and the module constants ACCEL_LSB_PER_G and
GYRO_LSB_PER_DPS_X10 for the ranges configured here. Handed a bus object
with MicroPython's I2C methods; one 14-byte burst per sample into a buffer
allocated once; raw counts kept as int attributes, so read() allocates
nothing. Bus errors surface as OSError.

Configuration (datasheet DS13014):
- CTRL3_C: BDU (a sample's low and high bytes always belong together) and
  IF_INC (the register address auto-increments: one burst reads everything).
- CTRL1_XL: 208 Hz, +-4 g, LPF2 on at ODR/4 (52 Hz): above the table's
  motion, below motor hum, like the MPU-6050's 44 Hz DLPF. At 208 Hz every
  10 ms read finds a fresh sample.
- CTRL2_G: 208 Hz, +-250 dps (the table never turns faster than 6 dps).
- CTRL9_XL: I3C off (recommended when the bus is plain I2C).
The chip powers up with both sensors off; they start when CTRL1_XL / CTRL2_G
give them a data rate. init() first soft-resets the chip: after a watchdog
reset of the board the IMU has kept its power and its old settings.

Mounting and axes. The firmware's sensor frame is: x toward the head, z out
of the board (up when the table is flat), y the pivot axis; gy positive when
the angle increases (head-down). The LSM6DSOX breakout is mounted component
side up (chip +Z out of the board) with the chip's +Y axis (the "Y" arrow on
the breakout's silkscreen) pointing toward the head end of the table, so its
+X axis points along the pivot axis to the user's right when lying face up.
Hence, in the firmware frame:
    x = chip Y      y = -chip X      z = chip Z        (right-handed)
for both the accelerometer and the gyro. A different mounting needs a
different mapping in read() (and the self-test's |ay| check catches a
sensor that is rotated about z).
"""

from micropython import const

from firmware.drivers.burst_imu import BurstImu

_FUNC_CFG_ACCESS = const(0x01)
_WHO_AM_I = const(0x0F)
_CTRL1_XL = const(0x10)
_CTRL2_G = const(0x11)
_CTRL3_C = const(0x12)
_CTRL9_XL = const(0x18)
_OUT_TEMP_L = const(0x20)  # then OUTX_L_G 0x22 .. OUTZ_H_G 0x27, OUTX_L_A 0x28 .. OUTZ_H_A 0x2D

_WHO_AM_I_VALUE = const(0x6C)
_CTRL3_SW_RESET = const(0x01)
_CTRL3_BDU_IF_INC = const(0x44)  # BDU (bit 6) + IF_INC (bit 2)
_CTRL1_XL_208HZ_4G_LPF2 = const(0x5A)  # ODR_XL 0101 (208 Hz), FS_XL 10 (+-4 g), LPF2_XL_EN
_CTRL2_G_208HZ_250DPS = const(0x50)  # ODR_G 0101 (208 Hz), FS_G 00 (+-250 dps)
_CTRL9_XL_I3C_OFF = const(0xE2)  # reset value 0xE0 with I3C_disable (bit 1)
_RESET_POLLS = const(50)  # a soft reset takes ~50 us; one I2C read is ~50 us at 400 kHz

# Datasheet sensitivities: +-4 g = 0.122 mg/LSB -> 8197 LSB/g (nominally
# 32768 / 4 = 8192; 0.06 % apart, far inside the estimator's 10 % norm
# window); +-250 dps = 8.75 mdps/LSB -> 114.3 LSB/dps.
ACCEL_LSB_PER_G = const(8197)
GYRO_LSB_PER_DPS_X10 = const(1143)

DEFAULT_ADDR = const(0x6A)  # SDO/SA0 low (0x6B with it high)


def _s16(lo, hi):
    value = (hi << 8) | lo
    if value & 0x8000:
        value -= 0x10000
    return value


class LSM6DSOX(BurstImu):
    """Raw accelerometer/gyro counts in the firmware's sensor frame.

    After read(): ax, ay, az (ACCEL_LSB_PER_G per g), gx, gy, gz
    (GYRO_LSB_PER_DPS_X10 / 10 per dps), temp_raw (256 LSB per deg C, 0 at
    25 C); `sample` counts reads and `frozen_reads` counts consecutive reads
    whose 14 bytes were identical (a live sensor's noise makes that
    practically impossible).
    """

    def __init__(self, i2c, addr=DEFAULT_ADDR):
        BurstImu.__init__(self, i2c, addr)

    def init(self):
        """Reset the chip, set ranges and rates; raises OSError if it is absent or wrong."""
        who = self._read(_WHO_AM_I)
        if who != _WHO_AM_I_VALUE:
            raise OSError(
                "LSM6DSOX at 0x%02x answered WHO_AM_I=0x%02x, expected 0x%02x"
                % (self._addr, who, _WHO_AM_I_VALUE)
            )
        self._write(_FUNC_CFG_ACCESS, 0)  # the main register page
        self._write(_CTRL3_C, _CTRL3_SW_RESET)
        ctrl3 = _CTRL3_SW_RESET
        for _ in range(_RESET_POLLS):
            ctrl3 = self._read(_CTRL3_C)
            if not ctrl3 & _CTRL3_SW_RESET:
                break
        if ctrl3 & _CTRL3_SW_RESET:
            raise OSError(
                "LSM6DSOX at 0x%02x: soft reset did not finish (CTRL3_C=0x%02x)"
                % (self._addr, ctrl3)
            )
        self._write(_CTRL3_C, _CTRL3_BDU_IF_INC)
        self._write(_CTRL9_XL, _CTRL9_XL_I3C_OFF)
        self._write(_CTRL1_XL, _CTRL1_XL_208HZ_4G_LPF2)
        self._write(_CTRL2_G, _CTRL2_G_208HZ_250DPS)

    def read(self):
        """One burst read of temperature, gyro and accel. No allocation."""
        buf = self._burst(_OUT_TEMP_L)
        # Little-endian pairs: temp, gyro X/Y/Z, accel X/Y/Z (chip axes),
        # mapped to the firmware frame: x = chip Y, y = -chip X, z = chip Z.
        # Negating -32768 gives 32768: still a small int.
        self.temp_raw = _s16(buf[0], buf[1])
        self.gy = -_s16(buf[2], buf[3])
        self.gx = _s16(buf[4], buf[5])
        self.gz = _s16(buf[6], buf[7])
        self.ay = -_s16(buf[8], buf[9])
        self.ax = _s16(buf[10], buf[11])
        self.az = _s16(buf[12], buf[13])
