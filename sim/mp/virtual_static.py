"""A board for the virtual board (the unix port): a table at rest, simulated in MicroPython.

The MicroPython unix port behind host_tools/virtual_board.py has no Pin, I2C,
PWM... and sim/ is CPython only. This module is the small pure-MicroPython
stand-in: a `Board` with the attributes of boards/rpi_pico.py whose
peripherals have MicroPython's method names and simulate a table standing
still at an angle (home, -60 deg, by default), nobody on it:

- i2c: an MPU-6050 at 0x68 at register level: WHO_AM_I 0x68, powers up
  asleep (PWR_MGMT_1 = 0x40; the data registers read 0 until woken), the
  accelerometer range from ACCEL_CONFIG (ax = -g sin(angle), az = g cos(angle)),
  the gyro near 0, with small deterministic noise (a seeded LCG) so that no
  two bursts are identical (the driver's frozen-data check);
- button_no / button_nc: the hold button up (NO reads 1, NC reads 0);
- home_switch / far_switch: consistent with the angle (the home switch is
  over-travel past home, engaged only below home - 2 deg; the far switch
  only above +88 deg): neither engaged at home;
- motor_pwm, motor_dir, buzzer, led, current_adc, deadman_timer, wdt:
  stand-ins that record what the firmware does (a Timer never fires by
  itself: `fire()` runs its callback once).

Not a port's board file: it lives outside boards/ (not compiled by
host_tools/build.py, not type-checked against a port's stubs, never picked
by the deploy tool). Tests copy it to the board's root next to a real deploy
(tests/test_virtual_board_selftest.py) and build it by hand:

    import virtual_static
    board = virtual_static.Board(name="rpi_pico")   # stand in for the deployed board

Knobs to inject a failure (constructor arguments, or the attributes after):
button_held=True, imu_nack=True (every I2C transfer raises OSError EIO, as a
bus without the sensor), accel_scale (|a| reads accel_scale g), who_am_i,
home_switch / far_switch (0 or 1 forces the level), angle_deg.
"""

import math
import time

EIO = 5
IMU_ADDR = 0x68
_WHO_AM_I = 0x75
_PWR_MGMT_1 = 0x6B
_ACCEL_CONFIG = 0x1C
_ACCEL_XOUT_H = 0x3B
_SLEEP = 0x40
_HOME_DEG = -60.0
_HOME_OVERTRAVEL_DEG = 2.0
_FAR_SWITCH_DEG = 88.0
_ACCEL_NOISE_LSB = 12
_GYRO_NOISE_LSB = 6
_TEMP_RAW = -2000  # about 30 C


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, pin_id, mode=-1, pull=-1, value=None, level=None):
        self.id = pin_id
        self.mode = mode
        self.pull = pull
        self._value = 0
        self.level = level  # an input's level: an int, or a function returning one
        self.writes = 0
        if value is not None:
            self.value(value)

    def init(self, mode=-1, pull=-1, value=None):
        if mode != -1:
            self.mode = mode
        if pull != -1:
            self.pull = pull
        if value is not None:
            self.value(value)

    def value(self, x=None):
        if x is None:
            level = self.level
            if level is None:
                return self._value
            return level() if callable(level) else level
        self._value = 1 if x else 0
        self.writes += 1
        return None

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin = pin
        self._freq = freq
        self._duty = duty_u16

    def init(self, freq=None, duty_u16=None):
        if freq is not None:
            self._freq = freq
        if duty_u16 is not None:
            self._duty = duty_u16

    def freq(self, value=None):
        if value is None:
            return self._freq
        self._freq = value
        return None

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 must be 0..65535")
        self._duty = value
        return None

    def deinit(self):
        self._duty = 0


class ADC:
    def __init__(self, pin, level_u16=0):
        self.pin = pin
        self.level_u16 = level_u16

    def read_u16(self):
        return self.level_u16


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout_ms = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, timer_id=-1):
        self.id = timer_id
        self.mode = None
        self.period = None
        self.callback = None

    def init(self, mode=PERIODIC, freq=-1, period=-1, callback=None, hard=True):
        if freq != -1:
            period = 1000 // freq
        if period <= 0:
            raise ValueError("give period (ms) or freq (Hz)")
        self.mode = mode
        self.period = period
        self.callback = callback

    def deinit(self):
        self.callback = None

    def fire(self):
        """Run the callback once, as the timer would (the unix port has no timers)."""
        callback = self.callback
        if callback is not None:
            if self.mode == self.ONE_SHOT:
                self.callback = None
            callback(self)


class MPU6050Bus:
    """machine.I2C with an MPU-6050 on it, the table at rest at `angle_deg`."""

    def __init__(self, angle_deg=_HOME_DEG, addr=IMU_ADDR, seed=1):
        self.angle_deg = angle_deg
        self.addr = addr
        self.nack = False  # True: every transfer raises OSError(EIO)
        self.accel_scale = 1.0  # |a| in g (1.0 on Earth at rest)
        self.regs = bytearray(128)
        self.regs[_WHO_AM_I] = 0x68
        self.regs[_PWR_MGMT_1] = _SLEEP  # the reset value: asleep
        self._seed = seed
        self.bursts = 0

    def _check(self, addr):
        if self.nack or addr != self.addr:
            raise OSError(EIO)

    def _noise(self, amplitude):
        self._seed = (self._seed * 1103515245 + 12345) & 0x7FFFFFFF
        return (self._seed >> 8) % (2 * amplitude + 1) - amplitude

    def _sample(self):
        out = bytearray(14)
        if self.regs[_PWR_MGMT_1] & _SLEEP:
            return out  # asleep: no conversions, the data registers read 0
        lsb_per_g = 16384 >> ((self.regs[_ACCEL_CONFIG] >> 3) & 3)
        theta = math.radians(self.angle_deg)
        g = self.accel_scale * lsb_per_g
        values = (
            int(-g * math.sin(theta)) + self._noise(_ACCEL_NOISE_LSB),
            self._noise(_ACCEL_NOISE_LSB),
            int(g * math.cos(theta)) + self._noise(_ACCEL_NOISE_LSB),
            _TEMP_RAW,
            self._noise(_GYRO_NOISE_LSB),
            self._noise(_GYRO_NOISE_LSB),
            self._noise(_GYRO_NOISE_LSB),
        )
        for i in range(7):
            v = max(-32768, min(32767, values[i])) & 0xFFFF
            out[2 * i] = v >> 8
            out[2 * i + 1] = v & 0xFF
        return out

    def _registers(self, reg, n):
        if reg == _ACCEL_XOUT_H and n >= 1:
            self.bursts += 1
            data = self._sample()
            return bytes(data[:n]) + bytes(self.regs[reg + 14:reg + n])
        return bytes(self.regs[reg:reg + n])

    def scan(self):
        return [] if self.nack else [self.addr]

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        self._check(addr)
        data = self._registers(memaddr, len(buf))
        for i in range(len(buf)):
            buf[i] = data[i] if i < len(data) else 0

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._check(addr)
        for i in range(len(buf)):
            if memaddr + i < len(self.regs) and memaddr + i != _WHO_AM_I:
                self.regs[memaddr + i] = buf[i]


class Board:
    """The attributes of boards/rpi_pico.py (PWM/DIR bridge, MPU-6050, no pot)."""

    def __init__(self, name="virtual_static", angle_deg=_HOME_DEG, button_held=False,
                 imu_nack=False, accel_scale=1.0, who_am_i=0x68, home_switch=None,
                 far_switch=None, wdt=True):
        self.name = name
        self.hbridge_type = "pwm_dir"
        self.motor_enable = None
        self.motor_pwm_retract = None
        self.motor_dir = Pin(17, Pin.OUT, value=0)
        self.motor_pwm = PWM(Pin(16), freq=20000, duty_u16=0)
        self.buzzer = Pin(18, Pin.OUT, value=0)
        self.led = Pin(25, Pin.OUT, value=0)
        self.clock = time  # the unix port's time: ticks_ms, ticks_diff, ticks_add, sleep_ms
        self.i2c = MPU6050Bus(angle_deg)
        self.i2c.nack = imu_nack
        self.i2c.accel_scale = accel_scale
        self.i2c.regs[_WHO_AM_I] = who_am_i
        self.imu_type = "mpu6050"
        self.imu_addr = IMU_ADDR
        self.current_adc = ADC(Pin(26))
        self.current_full_scale_ma = 20000
        self.position_adc = None
        self.button_held = button_held
        pull = Pin.PULL_UP
        self.button_no = Pin(10, Pin.IN, pull, level=lambda: 0 if self.button_held else 1)
        self.button_nc = Pin(11, Pin.IN, pull, level=lambda: 1 if self.button_held else 0)
        self.home_switch_forced = home_switch
        self.far_switch_forced = far_switch
        self.home_switch = Pin(12, Pin.IN, pull, level=self._home_level)
        self.far_switch = Pin(13, Pin.IN, pull, level=self._far_level)
        self.ankle_lock = Pin(14, Pin.IN, pull, level=1)  # not latched (nobody on it)
        self.deadman_timer = Timer(-1)
        self.wdt = WDT(timeout=1000) if wdt else None

    def _home_level(self):
        if self.home_switch_forced is not None:
            return self.home_switch_forced
        return 1 if self.i2c.angle_deg < _HOME_DEG - _HOME_OVERTRAVEL_DEG else 0

    def _far_level(self):
        if self.far_switch_forced is not None:
            return self.far_switch_forced
        return 1 if self.i2c.angle_deg > _FAR_SWITCH_DEG else 0
