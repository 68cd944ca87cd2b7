"""InvenSense MPU-6050 accelerometer + gyro, read over I2C.

Handed a bus object with MicroPython's I2C methods (a machine.I2C on a board,
a simulated bus in sim/). One 14-byte burst read per sample into a buffer
allocated once; raw counts are kept as int attributes so reading allocates
nothing. Bus errors surface as OSError for the supervisor to act on.
"""

from micropython import const

from firmware.drivers.burst_imu import BurstImu

_SMPLRT_DIV = const(0x19)
_CONFIG = const(0x1A)
_GYRO_CONFIG = const(0x1B)
_ACCEL_CONFIG = const(0x1C)
_ACCEL_XOUT_H = const(0x3B)
_PWR_MGMT_1 = const(0x6B)
_WHO_AM_I = const(0x75)

_WHO_AM_I_VALUE = const(0x68)
_CLKSEL_PLL_GYRO_X = const(0x01)  # wake (SLEEP=0), clock from the X gyro PLL
_DLPF_44_HZ = const(3)  # 44 Hz accel / 42 Hz gyro: above the table's motion, below motor hum
_AFS_4G = const(1 << 3)  # +-4 g: headroom for vibration
_FS_250_DPS = const(0)  # +-250 dps: the table never turns faster than 6 dps

ACCEL_LSB_PER_G = const(8192)  # at +-4 g
GYRO_LSB_PER_DPS_X10 = const(1310)  # 131.0 LSB per dps at +-250 dps

DEFAULT_ADDR = const(0x68)


def _s16(hi, lo):
    value = (hi << 8) | lo
    if value & 0x8000:
        value -= 0x10000
    return value


class MPU6050(BurstImu):
    """Raw accelerometer/gyro counts in the sensor frame.

    Sensor frame on the table: x toward the head, z out of the board, y the
    pivot axis. After read(): ax, ay, az (ACCEL_LSB_PER_G per g), gx, gy, gz
    (GYRO_LSB_PER_DPS_X10 / 10 per dps), temp_raw; `sample` counts reads and
    `frozen_reads` counts consecutive reads whose 14 bytes were identical (a
    live sensor's noise makes that practically impossible).
    """

    def __init__(self, i2c, addr=DEFAULT_ADDR):
        BurstImu.__init__(self, i2c, addr)

    def init(self):
        """Wake the sensor and set ranges; raises OSError if it is absent or wrong."""
        who = self._read(_WHO_AM_I)
        if who != _WHO_AM_I_VALUE:
            raise OSError(
                "MPU-6050 at 0x%02x answered WHO_AM_I=0x%02x, expected 0x%02x"
                % (self._addr, who, _WHO_AM_I_VALUE)
            )
        self._write(_PWR_MGMT_1, _CLKSEL_PLL_GYRO_X)
        self._write(_SMPLRT_DIV, 0)
        self._write(_CONFIG, _DLPF_44_HZ)
        self._write(_GYRO_CONFIG, _FS_250_DPS)
        self._write(_ACCEL_CONFIG, _AFS_4G)

    def read(self):
        """One burst read of accel, temperature and gyro. No allocation."""
        buf = self._burst(_ACCEL_XOUT_H)
        self.ax = _s16(buf[0], buf[1])
        self.ay = _s16(buf[2], buf[3])
        self.az = _s16(buf[4], buf[5])
        self.temp_raw = _s16(buf[6], buf[7])
        self.gx = _s16(buf[8], buf[9])
        self.gy = _s16(buf[10], buf[11])
        self.gz = _s16(buf[12], buf[13])
