"""Simulated `machine` peripherals for the firmware, backed by the simulator.

Each class has the methods (and argument checks) of its MicroPython
`machine` counterpart on the RP2040 port, so the firmware runs unchanged, and
nothing else: a call the real class does not have raises AttributeError. The
few simulator-side additions are documented as such on each class.
"""

import errno

# rp2 constants (ports/rp2/machine_pin.c, machine_timer.c).
_PIN_IN = 0
_PIN_OUT = 1
_PIN_OPEN_DRAIN = 2
_PIN_PULL_UP = 1
_PIN_PULL_DOWN = 2
_PIN_IRQ_FALLING = 4
_PIN_IRQ_RISING = 8
_UNCHANGED = -1

PWM_FREQ_MIN_HZ = 8  # rp2 lower limit (125 MHz clock, maximum dividers)
PWM_FREQ_MAX_HZ = 62_500_000
U16_MAX = 65535

_NO_ARG = object()


def _require_int(value, what):
    if type(value) is not int and type(value) is not bool:
        raise TypeError(f"can't convert {type(value).__name__} to int ({what})")
    return int(value)


def _no_device():
    return OSError(errno.ENODEV, "ENODEV")


class SimI2C:
    """machine.I2C backed by device models: `devices` maps a 7-bit address to a
    model with `i2c_write(data)` (first byte = register pointer) and
    `i2c_read_into(buf)`. An address with no device raises OSError(ENODEV),
    which is what MicroPython raises when nothing acknowledges.
    """

    def __init__(self, devices):
        self.devices = dict(devices)

    def _device(self, addr):
        addr = _require_int(addr, "addr")
        device = self.devices.get(addr)
        if device is None:
            raise _no_device()
        return device

    @staticmethod
    def _memaddr_bytes(memaddr, addrsize):
        memaddr = _require_int(memaddr, "memaddr")
        addrsize = _require_int(addrsize, "addrsize")
        if addrsize not in (8, 16, 24, 32):
            raise ValueError(f"invalid addrsize {addrsize}")
        # Sent most significant byte first, as extmod/machine_i2c.c does.
        return bytes((memaddr >> shift) & 0xFF for shift in range(addrsize - 8, -8, -8))

    @staticmethod
    def _writable(buf):
        view = memoryview(buf)  # TypeError for a non-buffer, as on MicroPython
        if view.readonly:
            raise TypeError("object with buffer protocol required (writable)")
        return view

    def scan(self):
        return sorted(addr for addr, dev in self.devices.items() if not dev.nack)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        view = self._writable(buf)
        device = self._device(addr)
        device.i2c_write(self._memaddr_bytes(memaddr, addrsize))
        device.i2c_read_into(view)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        nbytes = _require_int(nbytes, "nbytes")
        if nbytes < 0:
            raise ValueError("negative nbytes")
        buf = bytearray(nbytes)
        self.readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)
        return bytes(buf)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        data = bytes(memoryview(buf))
        device = self._device(addr)
        device.i2c_write(self._memaddr_bytes(memaddr, addrsize) + data)

    def readfrom_into(self, addr, buf, stop=True):
        view = self._writable(buf)
        self._device(addr).i2c_read_into(view)

    def readfrom(self, addr, nbytes, stop=True):
        nbytes = _require_int(nbytes, "nbytes")
        buf = bytearray(nbytes)
        self.readfrom_into(addr, buf, stop)
        return bytes(buf)

    def writeto(self, addr, buf, stop=True):
        data = bytes(memoryview(buf))
        self._device(addr).i2c_write(data)
        return len(data)  # number of ACKs: every byte is acknowledged


class SimPinIRQ:
    """What Pin.irq() returns: the handler's trigger mask and pending flags."""

    def __init__(self, pin):
        self._pin = pin

    def trigger(self):
        return self._pin._irq_trigger

    def flags(self):
        return self._pin._irq_flags


class SimPin:
    """machine.Pin. Outputs hold the level last written. Inputs read their
    level from `level_fn` (simulator side: a callable returning 0/1, set by
    the board), or from the pull resistor when nothing drives the pin.

    Simulator side: `level_fn`, and `sample()`, which the board calls after
    each step: when the level has changed it runs the IRQ handler for a
    matching edge, as handler(pin).
    """

    IN = _PIN_IN
    OUT = _PIN_OUT
    OPEN_DRAIN = _PIN_OPEN_DRAIN
    PULL_UP = _PIN_PULL_UP
    PULL_DOWN = _PIN_PULL_DOWN
    IRQ_FALLING = _PIN_IRQ_FALLING
    IRQ_RISING = _PIN_IRQ_RISING

    def __init__(self, id, mode=_UNCHANGED, pull=_UNCHANGED, *, value=None, level_fn=None):
        self.id = id
        self.level_fn = level_fn
        self._mode = _PIN_IN
        self._pull = None
        self._out = 0
        self._irq_handler = None
        self._irq_trigger = 0
        self._irq_flags = 0
        self._irq = None
        self.init(mode, pull, value=value)
        self._last_level = self._level()

    def __repr__(self):
        return f"SimPin({self.id!r})"

    def init(self, mode=_UNCHANGED, pull=_UNCHANGED, *, value=None):
        if mode != _UNCHANGED:
            if mode not in (_PIN_IN, _PIN_OUT, _PIN_OPEN_DRAIN):
                raise ValueError(f"invalid pin mode {mode!r}")
            self._mode = mode
        if pull != _UNCHANGED:
            if pull not in (None, _PIN_PULL_UP, _PIN_PULL_DOWN):
                raise ValueError(f"invalid pull {pull!r}")
            self._pull = pull
        if value is not None:
            self._out = 1 if value else 0

    def _level(self):
        if self._mode == _PIN_OUT:
            return self._out
        if self._mode == _PIN_OPEN_DRAIN and self._out == 0:
            return 0
        if self.level_fn is not None:
            return 1 if self.level_fn() else 0
        return 1 if self._pull == _PIN_PULL_UP else 0

    def value(self, x=_NO_ARG):
        if x is _NO_ARG:
            return self._level()
        self._out = 1 if x else 0
        self.sample()  # an output edge also fires the pin's IRQ, as on the chip
        return None

    def __call__(self, x=_NO_ARG):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def high(self):
        self.value(1)

    def low(self):
        self.value(0)

    def toggle(self):
        self.value(1 - self._out)

    def irq(self, handler=None, trigger=_PIN_IRQ_FALLING | _PIN_IRQ_RISING, *, hard=False):
        if handler is not None and not callable(handler):
            raise TypeError("handler must be callable or None")
        trigger = _require_int(trigger, "trigger")
        self._irq_handler = handler
        self._irq_trigger = trigger if handler is not None else 0
        self._irq_flags = 0
        self._last_level = self._level()  # only edges after this call count
        if self._irq is None:
            self._irq = SimPinIRQ(self)
        return self._irq

    def sample(self):
        """Simulator side: fire the IRQ handler if the level has changed."""
        level = self._level()
        if level == self._last_level:
            return
        self._last_level = level
        edge = _PIN_IRQ_RISING if level else _PIN_IRQ_FALLING
        if self._irq_handler is not None and self._irq_trigger & edge:
            self._irq_flags = edge
            self._irq_handler(self)


class SimPWM:
    """machine.PWM. `duty_u16` 0..65535 (ValueError outside, TypeError for a
    non-int); `deinit()` stops the output (duty 0); setting a duty again
    restarts it.
    """

    def __init__(self, dest=None, *, freq=None, duty_u16=None):
        self.dest = dest
        self._freq_hz = 1000
        self._duty_u16 = 0
        self.init(freq=freq, duty_u16=duty_u16)

    def init(self, *, freq=None, duty_u16=None):
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, f=_NO_ARG):
        if f is _NO_ARG:
            return self._freq_hz
        f = _require_int(f, "freq")
        if f < PWM_FREQ_MIN_HZ:
            raise ValueError("freq too small")
        if f > PWM_FREQ_MAX_HZ:
            raise ValueError("freq too large")
        self._freq_hz = f
        return None

    def duty_u16(self, d=_NO_ARG):
        if d is _NO_ARG:
            return self._duty_u16
        d = _require_int(d, "duty_u16")
        if not 0 <= d <= U16_MAX:
            raise ValueError(f"duty_u16 must be from 0 to {U16_MAX}")
        self._duty_u16 = d
        return None

    def deinit(self):
        self._duty_u16 = 0


class SimADC:
    """machine.ADC: `read_u16()` returns `read_fn()` clamped to 0..65535."""

    def __init__(self, pin=None, *, read_fn):
        self.pin = pin
        self.read_fn = read_fn

    def read_u16(self):
        value = int(self.read_fn())
        if value < 0:
            return 0
        if value > U16_MAX:
            return U16_MAX
        return value


class SimWDT:
    """machine.WDT on the virtual clock: `feed()` only (it cannot be stopped).

    Simulator side: `expired` is true while more than `timeout` ms have passed
    since the last feed (the real chip would have reset); `late_feeds` counts
    feeds that came after that point, so an overrun between two checks of
    `expired` is not lost.
    """

    def __init__(self, clock, timeout=5000):
        timeout = _require_int(timeout, "timeout")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self._clock = clock
        self.timeout_ms = timeout
        self._fed_us = clock.elapsed_us
        self.late_feeds = 0

    def feed(self):
        if self.expired:
            self.late_feeds += 1
        self._fed_us = self._clock.elapsed_us

    @property
    def expired(self):
        return self._clock.elapsed_us - self._fed_us > self.timeout_ms * 1000


class SimTimer:
    """machine.Timer on the virtual clock: `init(mode=, period= ms | freq= Hz,
    callback=)` and `deinit()`. `VirtualClock.advance_us` runs the callback as
    callback(timer) at each due time.
    """

    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, clock, **init_kwargs):
        self._clock = clock
        self._mode = self.PERIODIC
        self._period_us = 0
        self._due_us = 0
        self._callback = None
        if init_kwargs:
            self.init(**init_kwargs)

    def init(self, *, mode=PERIODIC, freq=-1, period=-1, callback=None, hard=True):
        if mode not in (self.ONE_SHOT, self.PERIODIC):
            raise ValueError(f"invalid timer mode {mode!r}")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None")
        if freq != -1:
            if freq <= 0:
                raise ValueError("freq must be > 0")
            period_us = round(1_000_000 / freq)
        elif period != -1:
            period = _require_int(period, "period")
            if period <= 0:
                raise ValueError("period must be > 0")
            period_us = period * 1000
        else:
            raise ValueError("give period (ms) or freq (Hz)")
        if period_us <= 0:
            raise ValueError("timer period too short")
        self._clock._disarm(self)
        self._mode = mode
        self._period_us = period_us
        self._callback = callback
        self._due_us = self._clock._now_us + period_us
        self._clock._arm(self)

    def deinit(self):
        self._clock._disarm(self)

    def _fire(self):
        # Reschedule first so the callback may re-init or deinit the timer.
        if self._mode == self.PERIODIC:
            self._due_us += self._period_us
        else:
            self._clock._disarm(self)
        if self._callback is not None:
            self._callback(self)
