"""InvenSense MPU-6050 modelled at the register level.

The real MicroPython driver talks to this through `SimI2C` exactly as it talks
to the chip: register pointer write, then auto-incrementing reads or writes.
Measurements are computed from the plant's true state when the driver reads
them (sim/imu_physics.py, shared with the LSM6DSOX model), with the
imperfections a real part has (bias, noise, mounting offset, motor
vibration, saturation, quantisation), each a constructor parameter so faults
can turn them up later.

Sensor frame on the table: x toward the head, z out of the board (up when the
table is flat), y the pivot axis; head-down rotation is positive about +y.
"""

from sim.imu_physics import ImuPhysics, to_int16_counts

# Register map (datasheet RM-MPU-6000A-00 rev 4.2).
SMPLRT_DIV = 0x19
CONFIG = 0x1A
GYRO_CONFIG = 0x1B
ACCEL_CONFIG = 0x1C
FIFO_EN = 0x23
INT_PIN_CFG = 0x37
INT_ENABLE = 0x38
INT_STATUS = 0x3A
ACCEL_XOUT_H = 0x3B
DATA_LAST = 0x48  # GYRO_ZOUT_L
SIGNAL_PATH_RESET = 0x68
USER_CTRL = 0x6A
PWR_MGMT_1 = 0x6B
PWR_MGMT_2 = 0x6C
WHO_AM_I = 0x75

WHO_AM_I_VALUE = 0x68
PWR_MGMT_1_SLEEP = 0x40
PWR_MGMT_1_DEVICE_RESET = 0x80
INT_STATUS_DATA_RDY = 0x01
REGISTER_COUNT = 128  # the pointer wraps here

# Registers a write may change; writes elsewhere (read-only data, WHO_AM_I,
# unmodelled blocks) are ignored, as the chip ignores writes to read-only regs.
WRITABLE_REGISTERS = frozenset(
    (
        SMPLRT_DIV,
        CONFIG,
        GYRO_CONFIG,
        ACCEL_CONFIG,
        FIFO_EN,
        INT_PIN_CFG,
        INT_ENABLE,
        SIGNAL_PATH_RESET,
        USER_CTRL,
        PWR_MGMT_1,
        PWR_MGMT_2,
    )
)
RESET_VALUES = {PWR_MGMT_1: PWR_MGMT_1_SLEEP, WHO_AM_I: WHO_AM_I_VALUE}

ACCEL_LSB_PER_G = (16384.0, 8192.0, 4096.0, 2048.0)  # AFS_SEL 0..3: +-2/4/8/16 g
GYRO_LSB_PER_DPS = (131.0, 65.5, 32.8, 16.4)  # FS_SEL 0..3: +-250/500/1000/2000 dps
TEMP_LSB_PER_C = 340.0
TEMP_OFFSET_C = 36.53  # temperature = raw / 340 + 36.53


_to_int16_counts = to_int16_counts  # shared with the LSM6DSOX model


class Mpu6050Model(ImuPhysics):
    """MPU-6050 register file backed by a `Plant`, for `SimI2C`.

    The sensor physics and the knobs (`nack`, `frozen`, bias, noise, mount
    offset, vibration ...) come from `ImuPhysics` (sim/imu_physics.py); the
    chip's axes are the sensor frame's (x toward the head, z up).
    """

    BURST_REG = ACCEL_XOUT_H  # the firmware driver's one read per tick
    BURST_LEN = 14

    def __init__(self, plant, *, seed=0, clock=None, **knobs):
        super().__init__(plant, seed=seed, clock=clock, **knobs)
        self._pointer = 0
        self._last_sample_us = None
        self.registers = bytearray(REGISTER_COUNT)
        self._reset_registers()

    def _reset_registers(self):
        self.registers[:] = bytes(REGISTER_COUNT)
        for reg, value in RESET_VALUES.items():
            self.registers[reg] = value

    @property
    def asleep(self):
        return bool(self.registers[PWR_MGMT_1] & PWR_MGMT_1_SLEEP)

    # --- I2C transactions (called by SimI2C) --------------------------------

    def i2c_write(self, data):
        """One write transaction: register pointer, then data (auto-increment)."""
        self._check_ack()
        if not data:
            return
        pointer = data[0] % REGISTER_COUNT
        for value in data[1:]:
            self._write_register(pointer, value)
            pointer = (pointer + 1) % REGISTER_COUNT
        self._pointer = pointer

    def i2c_read_into(self, buf):
        """One read transaction from the current pointer (auto-increment)."""
        self._check_ack()
        n = len(buf)
        pointer = self._pointer
        # The chip copies a whole sample into the output registers at once, so
        # a burst never mixes two samples.
        if pointer <= DATA_LAST and pointer + n > ACCEL_XOUT_H:
            self._latch_sample()
        regs = self.registers
        for i in range(n):
            buf[i] = regs[pointer]
            if pointer == INT_STATUS:
                regs[INT_STATUS] = 0  # interrupt status clears when read
            pointer = (pointer + 1) % REGISTER_COUNT
        self._pointer = pointer

    def _write_register(self, reg, value):
        if reg not in WRITABLE_REGISTERS:
            return
        if reg == PWR_MGMT_1 and value & PWR_MGMT_1_DEVICE_RESET:
            self._reset_registers()  # the reset bit clears itself
            self._last_sample_us = None
            return
        if reg == SIGNAL_PATH_RESET:
            return  # self-clearing strobe bits
        self.registers[reg] = value & 0xFF

    # --- measurement --------------------------------------------------------

    def sample_period_us(self):
        """Output data period from SMPLRT_DIV and the DLPF setting."""
        dlpf_cfg = self.registers[CONFIG] & 0x07
        gyro_rate_hz = 8000 if dlpf_cfg in (0, 7) else 1000
        return (1 + self.registers[SMPLRT_DIV]) * 1_000_000 // gyro_rate_hz

    def _latch_sample(self):
        if self.frozen or self.asleep:
            return  # asleep: the registers keep their last sample (0 at power-up)
        clock = self.clock
        if clock is not None:
            now_us = clock.elapsed_us
            last_us = self._last_sample_us
            if last_us is not None and now_us - last_us < self.sample_period_us():
                return  # no new sample since the last read
            self._last_sample_us = now_us
        self._write_sample(self.measure())

    def _write_sample(self, sample):
        accel, temperature_c, gyro = sample
        regs = self.registers
        accel_lsb = ACCEL_LSB_PER_G[(regs[ACCEL_CONFIG] >> 3) & 0x03]
        gyro_lsb = GYRO_LSB_PER_DPS[(regs[GYRO_CONFIG] >> 3) & 0x03]
        counts = (
            _to_int16_counts(accel[0], accel_lsb),
            _to_int16_counts(accel[1], accel_lsb),
            _to_int16_counts(accel[2], accel_lsb),
            _to_int16_counts(temperature_c - TEMP_OFFSET_C, TEMP_LSB_PER_C),
            _to_int16_counts(gyro[0], gyro_lsb),
            _to_int16_counts(gyro[1], gyro_lsb),
            _to_int16_counts(gyro[2], gyro_lsb),
        )
        reg = ACCEL_XOUT_H
        for count in counts:
            value = count & 0xFFFF  # two's complement, big-endian
            regs[reg] = value >> 8
            regs[reg + 1] = value & 0xFF
            reg += 2
        regs[INT_STATUS] |= INT_STATUS_DATA_RDY
        self.samples_taken += 1
