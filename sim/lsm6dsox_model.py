"""ST LSM6DSOX modelled at the register level.

The real MicroPython driver (firmware/drivers/lsm6dsox.py) talks to this
through `SimI2C` exactly as it talks to the chip. The sensor physics are the
same as the MPU-6050 model's (sim/imu_physics.py); this file is the chip's
register file (datasheet DS13014):

- WHO_AM_I (0x0F) reads 0x6C; writes to read-only registers are ignored;
- CTRL1_XL (0x10) / CTRL2_G (0x11): output data rate (ODR) and full scale.
  Both sensors power up off (ODR 0): their output registers stay at 0 until
  given a rate, and keep their last sample when switched off again;
- CTRL3_C (0x12): IF_INC (default on) makes the register address
  auto-increment within a transfer; without it every byte of a burst comes
  from the same register. BDU: a pair's low and high bytes always belong to
  the same sample (the output pair is not updated between reading one byte
  and the other); without BDU a pair read in two transfers may mix samples.
  SW_RESET restores every register's default (and powers the sensors down);
  it clears itself. BOOT is accepted and clears itself;
- data, little-endian: OUT_TEMP (0x20), OUTX/Y/Z_G (0x22..0x27),
  OUTX/Y/Z_A (0x28..0x2D); STATUS_REG (0x1E) XLDA/GDA/TDA flag new data and
  clear when the data are read;
- with a clock, new samples appear at each sensor's ODR (accelerometer and
  gyro separately); without one, every read is a new sample.

Mounting (as documented in the driver): component side up, chip +Y toward
the head. The physics' sensor frame (x head, y pivot, z up) maps to the chip
as chip X = -y, chip Y = x, chip Z = z.

Knobs: `nack` (OSError ENODEV on every transfer), `frozen` (the data
registers stop updating), and the physics parameters (ImuPhysics).
"""

from types import MappingProxyType

from sim.imu_physics import ImuPhysics, to_int16_counts

FUNC_CFG_ACCESS = 0x01
PIN_CTRL = 0x02
FIFO_CTRL1 = 0x07
FIFO_CTRL4 = 0x0A
INT1_CTRL = 0x0D
INT2_CTRL = 0x0E
WHO_AM_I = 0x0F
CTRL1_XL = 0x10
CTRL2_G = 0x11
CTRL3_C = 0x12
CTRL4_C = 0x13
CTRL5_C = 0x14
CTRL6_C = 0x15
CTRL7_G = 0x16
CTRL8_XL = 0x17
CTRL9_XL = 0x18
CTRL10_C = 0x19
STATUS_REG = 0x1E
OUT_TEMP_L = 0x20
OUTX_L_G = 0x22
OUTX_L_A = 0x28
DATA_LAST = 0x2D  # OUTZ_H_A
REGISTER_COUNT = 128  # the pointer wraps here (model choice)

WHO_AM_I_VALUE = 0x6C
CTRL3_BOOT = 0x80
CTRL3_BDU = 0x40
CTRL3_IF_INC = 0x04
CTRL3_SW_RESET = 0x01
CTRL8_XL_FS_MODE = 0x02
STATUS_XLDA = 0x01
STATUS_GDA = 0x02
STATUS_TDA = 0x04

WRITABLE_REGISTERS = frozenset(
    [FUNC_CFG_ACCESS, PIN_CTRL, INT1_CTRL, INT2_CTRL,
     *range(FIFO_CTRL1, FIFO_CTRL4 + 1), *range(CTRL1_XL, CTRL10_C + 1)]
)
RESET_VALUES = {PIN_CTRL: 0x3F, WHO_AM_I: WHO_AM_I_VALUE, CTRL3_C: CTRL3_IF_INC, CTRL9_XL: 0xE0}

# ODR codes (bits 7:4 of CTRL1_XL / CTRL2_G) in Hz; 0 = power-down.
ODR_HZ = (0, 12.5, 26, 52, 104, 208, 416, 833, 1660, 3330, 6660, 1.6, 0, 0, 0, 0)
# FS_XL (bits 3:2 of CTRL1_XL): sensitivity in mg/LSB. With XL_FS_MODE set
# (CTRL8_XL bit 1) code 01 means +-2 g instead of +-16 g.
ACCEL_MG_PER_LSB = (0.061, 0.488, 0.122, 0.244)  # +-2, +-16, +-4, +-8 g
# FS_G (bits 3:2 of CTRL2_G): mdps/LSB; FS_125 (bit 1) overrides: 4.375.
GYRO_MDPS_PER_LSB = (8.75, 17.5, 35.0, 70.0)  # +-250, +-500, +-1000, +-2000 dps
GYRO_125_MDPS_PER_LSB = 4.375
TEMP_LSB_PER_C = 256.0
TEMP_ZERO_C = 25.0


class Lsm6dsoxModel(ImuPhysics):
    """LSM6DSOX register file backed by a `Plant`, for `SimI2C`."""

    # LSM6DSOX imperfections: residual accelerometer offsets like the MPU-6050
    # model's (what is left after the mounting calibration; the raw zero-g
    # offset is +-20 mg typical), zero-rate level within its +-1 dps typical,
    # noise from 70 ug/sqrt(Hz) and 3.8 mdps/sqrt(Hz) over ~52 Hz (with
    # margin). Mounting, radius and motor vibration are the table's.
    DEFAULTS = MappingProxyType(dict(
        ImuPhysics.DEFAULTS,
        accel_bias_g=(0.005, -0.004, 0.007),
        gyro_bias_dps=(0.4, -0.6, 0.3),
        accel_noise_g=0.0015,
        gyro_noise_dps=0.03,
    ))
    BURST_REG = OUT_TEMP_L  # the firmware driver's one read per tick
    BURST_LEN = 14

    def __init__(self, plant, *, seed=0, clock=None, **knobs):
        super().__init__(plant, seed=seed, clock=clock, **knobs)
        self._pointer = 0
        self.registers = bytearray(REGISTER_COUNT)
        self._reset_registers()

    def _reset_registers(self):
        self.registers[:] = bytes(REGISTER_COUNT)
        for reg, value in RESET_VALUES.items():
            self.registers[reg] = value
        self._last_xl_us = None
        self._last_g_us = None
        self._half_read = set()  # pairs (low register) with one byte read under BDU

    # --- configuration ----------------------------------------------------------

    @property
    def accel_odr_hz(self):
        return ODR_HZ[self.registers[CTRL1_XL] >> 4]

    @property
    def gyro_odr_hz(self):
        return ODR_HZ[self.registers[CTRL2_G] >> 4]

    @property
    def accel_lsb_per_g(self):
        code = (self.registers[CTRL1_XL] >> 2) & 0x03
        if code == 1 and self.registers[CTRL8_XL] & CTRL8_XL_FS_MODE:
            code = 0
        return 1000.0 / ACCEL_MG_PER_LSB[code]

    @property
    def gyro_lsb_per_dps(self):
        ctrl2 = self.registers[CTRL2_G]
        if ctrl2 & 0x02:
            return 1000.0 / GYRO_125_MDPS_PER_LSB
        return 1000.0 / GYRO_MDPS_PER_LSB[(ctrl2 >> 2) & 0x03]

    @property
    def auto_increment(self):
        return bool(self.registers[CTRL3_C] & CTRL3_IF_INC)

    @property
    def bdu(self):
        return bool(self.registers[CTRL3_C] & CTRL3_BDU)

    # --- I2C transactions (called by SimI2C) --------------------------------

    def _advance(self, pointer):
        if self.auto_increment:
            return (pointer + 1) % REGISTER_COUNT
        return pointer

    def i2c_write(self, data):
        """One write transaction: register address, then data."""
        self._check_ack()
        if not data:
            return
        pointer = data[0] % REGISTER_COUNT
        for value in data[1:]:
            self._write_register(pointer, value)
            pointer = self._advance(pointer)
        self._pointer = pointer

    def i2c_read_into(self, buf):
        """One read transaction from the current address."""
        self._check_ack()
        n = len(buf)
        pointer = self._pointer
        last = pointer + n - 1 if self.auto_increment else pointer
        if n and pointer <= DATA_LAST and last >= STATUS_REG:
            self._latch_sample()  # a whole new sample before the transfer, never during it
        regs = self.registers
        bdu = self.bdu
        read = set()
        for i in range(n):
            buf[i] = regs[pointer]
            read.add(pointer)
            if OUT_TEMP_L <= pointer <= DATA_LAST:
                self._data_read(pointer)
            pointer = self._advance(pointer)
        if bdu:
            for low in range(OUT_TEMP_L, DATA_LAST, 2):
                has_low = low in read
                has_high = low + 1 in read
                if has_low != has_high:
                    if low in self._half_read:
                        self._half_read.discard(low)  # the other byte, read now
                    else:
                        self._half_read.add(low)
                elif has_low:
                    self._half_read.discard(low)
        self._pointer = pointer

    def _data_read(self, reg):
        status = self.registers[STATUS_REG]
        if reg < OUTX_L_G:
            status &= ~STATUS_TDA
        elif reg < OUTX_L_A:
            status &= ~STATUS_GDA
        else:
            status &= ~STATUS_XLDA
        self.registers[STATUS_REG] = status & 0xFF

    def _write_register(self, reg, value):
        if reg not in WRITABLE_REGISTERS:
            return
        value &= 0xFF
        if reg == CTRL3_C and value & CTRL3_SW_RESET:
            self._reset_registers()  # the reset bit clears itself
            return
        if reg == CTRL3_C:
            value &= ~CTRL3_BOOT & 0xFF  # reboot of the trimming: done at once
            if not value & CTRL3_BDU:
                self._half_read.clear()
        self.registers[reg] = value

    # --- measurement --------------------------------------------------------

    def _due(self, last_us, odr_hz, now_us):
        if odr_hz == 0:
            return False  # powered down: the registers keep their last sample
        if now_us is None or last_us is None:
            return True
        return now_us - last_us >= 1_000_000 / odr_hz

    def _latch_sample(self):
        if self.frozen:
            return
        if self.bdu and self._half_read:
            return  # BDU: a pair is half read; its sample stays until the other byte is
        now_us = self.clock.elapsed_us if self.clock is not None else None
        xl_due = self._due(self._last_xl_us, self.accel_odr_hz, now_us)
        g_due = self._due(self._last_g_us, self.gyro_odr_hz, now_us)
        if not (xl_due or g_due):
            return
        accel, temperature_c, gyro = self.measure()
        regs = self.registers
        status = regs[STATUS_REG]
        if xl_due:
            self._last_xl_us = now_us
            lsb = self.accel_lsb_per_g
            # chip X = -y, chip Y = x, chip Z = z (sensor frame -> chip axes)
            self._put(OUTX_L_A, (-accel[1], accel[0], accel[2]), lsb)
            status |= STATUS_XLDA
        if g_due:
            self._last_g_us = now_us
            lsb = self.gyro_lsb_per_dps
            self._put(OUTX_L_G, (-gyro[1], gyro[0], gyro[2]), lsb)
            status |= STATUS_GDA
        self._put(OUT_TEMP_L, (temperature_c - TEMP_ZERO_C,), TEMP_LSB_PER_C)
        regs[STATUS_REG] = status | STATUS_TDA
        self.samples_taken += 1

    def _put(self, reg, values, lsb_per_unit):
        regs = self.registers
        for value in values:
            count = to_int16_counts(value, lsb_per_unit) & 0xFFFF  # two's complement
            regs[reg] = count & 0xFF  # little-endian: low byte first
            regs[reg + 1] = count >> 8
            reg += 2
