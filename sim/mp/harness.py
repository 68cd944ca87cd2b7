"""MicroPython side of the SITL runtime: the firmware's Controller on the unix port.

Started by sim/micropython_runtime.py as `micropython sim/mp/harness.py` with
MICROPYPATH=<repo> (or `micropython -m harness` with MICROPYPATH=<dir of .mpy
files>). The firmware files run unchanged; the board it is handed (this
Harness object) carries proxies with the `machine` methods the firmware
uses, whose inputs and outputs travel over stdin/stdout to the CPython
simulator, which keeps the plant, the IMU register model, the virtual clock
and the scenario events. Kept small (it shares the heap with the firmware in
a small -X heapsize run): a method the firmware does not call is left out,
and calling one raises AttributeError, as on a board without it.

Protocol: frames of kind (1 byte), payload length (u16 LE), payload.

  CPython -> here
    B  boot, JSON: the board's peripherals by name and their state now, the
       clock, program/limits/table; builds a new Controller on the board
       (first boot, or after a watchdog reset)
    T  tick: clock, input pin levels, ADC readings, the IMU burst read for
       this tick (or the errno the read failed with), timer firings due
       since the last frame; runs the firings, then one controller.tick()
    F  timer firings only (the simulator needs the outputs now)
    M  memory: answered with M (gc.mem_alloc, gc.mem_free after a collect)
    i  answer to an I2C request
  here -> CPython
    H  hello: protocol, interpreter version (once, at start)
    N  names: the firmware's state and fault names (once, before the first
       boot's O)
    O  outputs after B/T/F: output pins, watchdog feeds, shoot-throughs,
       timer configuration, what the trace records, each PWM's duty/freq
    I  an I2C transaction other than the burst read for this tick,
       answered synchronously
    E  an exception: "type|where|state|traceback"

The frames CPython sent can be recorded and fed back from a file with no
simulator attached (bench/tick_micropython.py replays a session that way).

One exchange per tick. With the boot option heap_lock, every controller.tick()
and every timer callback runs under micropython.heap_lock(): the proxies only
copy ints and preallocated bytes there, so an allocation inside is the
firmware's and raises MemoryError.
"""

import gc
import io
import struct
import sys

import micropython
from micropython import const

_PROTOCOL = const(3)
_GC_THRESHOLD_BOOT = const(512)  # bytes: collect this often while the firmware loads

# MicroPython `time` semantics on a 32-bit port (what the board has).
_TICKS_MASK = const(0x3FFFFFFF)
_TICKS_HALF = const(0x20000000)

_IMU_ERROR = const(1)
_IMU_NONE = const(2)
_IMU_EXCEPTION = const(3)
_I2C_READ_MEM = const(0)
_I2C_WRITE_MEM = const(1)

# Tick inputs: ticks_ms, ticks_us, input pins (bit i = inputs[i]), burst
# addr, reg, length, imu status, errno, firings; each ADC's reading (u16);
# the burst (unless status is none); firings x (ticks_ms, ticks_us).
_INPUTS = "<IIHBBBBBB"
_INPUTS_SIZE = const(16)
_FIRE_SIZE = const(8)
_BURST_MAX = const(32)
# Outputs: output pins (bit i = outputs[i]), wdt feeds, shoot-throughs, timer
# version, mode, freq, period, armed; state, fault, head_down_permitted,
# burst used; estimate, drive duty, target, plan; then each PWM's duty, freq.
_OUTPUTS = "<HHHHbiiBBBBBiiii"
_OUTPUTS_SIZE = const(38)
_PWM_SIZE = const(6)

_NO_ARG = object()


class Clock:
    """`time`-like: the ticks the simulator sent with this exchange."""

    ms = 0
    us = 0

    def ticks_ms(self):
        return self.ms

    def ticks_us(self):
        return self.us

    def ticks_diff(self, ticks1, ticks2):
        return ((ticks1 - ticks2 + _TICKS_HALF) & _TICKS_MASK) - _TICKS_HALF

    def ticks_add(self, ticks, delta):
        if not -_TICKS_HALF < delta < _TICKS_HALF:
            raise OverflowError("ticks interval overflow")
        return (ticks + delta) & _TICKS_MASK


class Pin:
    """machine.Pin: an input reads the level the simulator sent (`level`); an
    output holds what was written (`out`, sent back after each exchange)."""

    level = 0
    out = 0

    def __init__(self, output):
        self.output = output

    def value(self, x=_NO_ARG):
        if x is _NO_ARG:
            return self.out if self.output else self.level
        self.out = 1 if x else 0
        return None


class PWM:
    """machine.PWM; with a `partner` (the other input of a dual-PWM bridge)
    it counts writes that leave both on (the simulator raises ShootThrough)."""

    partner = None

    def __init__(self, harness):
        self.h = harness
        self.f = 0
        self.duty = 0

    def freq(self, f=_NO_ARG):
        if f is _NO_ARG:
            return self.f
        if f < 8 or f > 62500000:
            raise ValueError("freq out of range")
        self.f = f
        return None

    def duty_u16(self, d=_NO_ARG):
        if d is _NO_ARG:
            return self.duty
        if d < 0 or d > 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        self.duty = d
        if d and self.partner is not None and self.partner.duty:
            self.h.shoot += 1
        return None


class ADC:
    value = 0  # set by the harness

    def read_u16(self):
        return self.value


class WDT:
    feeds = 0  # since the last exchange

    def feed(self):
        self.feeds += 1


class Timer:
    """machine.Timer: the simulator arms a timer on its virtual clock with this
    configuration and sends its firings here, where the callback runs."""

    ONE_SHOT = 0
    PERIODIC = 1
    version = 0
    mode = 1
    freq = -1
    period = -1
    armed = False
    callback = None

    def init(self, *, mode=1, freq=-1, period=-1, callback=None, hard=True):
        if (mode != 0 and mode != 1) or (freq == -1 and period == -1):
            raise ValueError("mode 0/1 and a period (ms) or freq (Hz)")
        self.mode = mode
        self.freq = freq
        self.period = period
        self.callback = callback
        self.armed = True
        self.version += 1

    def deinit(self):
        self.armed = False
        self.version += 1


class I2C:
    """machine.I2C: the burst the simulator read for this tick is served from
    a preallocated buffer (no allocation) if it is the tick's first
    transaction; anything else is forwarded."""

    def __init__(self, harness):
        self.h = harness
        self.addr = self.reg = self.n = 0
        self.buf = bytearray(_BURST_MAX)
        self.errno = 0
        self.pending = False  # the burst, not yet read this tick
        self.used = 0
        self.raised = 0  # the burst raised OSError this tick

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        if self.pending:
            self.pending = False  # it is either this transaction or none
            if addr == self.addr and memaddr == self.reg and addrsize == 8 and len(buf) == self.n:
                self.used = 1
                if self.errno:
                    self.raised = 1
                    if self.errno < 0:
                        raise RuntimeError("I2C controller in an unexpected state")
                    raise OSError(self.errno)
                src = self.buf
                for i in range(self.n):
                    buf[i] = src[i]
                return
        self.h.forward_i2c(_I2C_READ_MEM, addr, memaddr, addrsize, buf)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self.pending = False
        self.h.forward_i2c(_I2C_WRITE_MEM, addr, memaddr, addrsize, buf)


def _locked(harness, fn):
    harness.locked = True
    micropython.heap_lock()
    try:
        fn()
    finally:
        micropython.heap_unlock()
        harness.locked = False


class Harness:
    """Serves the protocol; is also the board the firmware is handed."""

    def __init__(self, inp=None, out=None):
        self._in = inp or sys.stdin.buffer
        self._out = out or sys.stdout.buffer
        self._hdr = bytearray(3)
        self.ctl = None
        self.heap_lock = False
        self.in_tick = False
        self.locked = False
        self.proxy_alloc = 0  # bytes the forwarding below allocated (not the firmware's)
        self.shoot = 0
        self.named = False  # the N frame sent
        self.halted = False  # tick_guarded returned False: no ticks until a boot

    def send(self, kind, payload):
        n = len(payload)
        self._out.write(bytes((ord(kind), n & 0xFF, n >> 8)) + payload)

    def recv(self):
        """The next frame's kind (None at the end); its payload in self.data."""
        self.data = None
        if self._in.readinto(self._hdr) != 3:
            return None
        n = self._hdr[1] | (self._hdr[2] << 8)
        self.data = self._in.read(n) if n else b""
        return chr(self._hdr[0])

    def forward_i2c(self, op, addr, memaddr, addrsize, buf):
        """One I2C transaction done by the simulator; OSError as machine.I2C.
        Its allocations are the proxy's, not the firmware's: the heap is
        unlocked meanwhile, and they are counted in proxy_alloc."""
        if self.locked:
            micropython.heap_unlock()
        a0 = gc.mem_alloc()
        try:
            self._forward_i2c(op, addr, memaddr, addrsize, buf)
        finally:
            self.proxy_alloc += gc.mem_alloc() - a0
            if self.locked:
                micropython.heap_lock()

    def _forward_i2c(self, op, addr, memaddr, addrsize, buf):
        head = struct.pack("<BBIBH", op, addr, memaddr, addrsize, len(buf))
        write = op == _I2C_WRITE_MEM
        self.send("I", head + bytes(buf) if write else head)
        kind = self.recv()
        data = self.data
        if kind != "i":
            raise OSError(5)  # EIO: the simulator went away
        if data[0]:
            raise OSError(data[0])
        if not write:
            for i in range(len(buf)):
                buf[i] = data[1 + i]

    def fire_timers(self, data, off, fires):
        timer = self.deadman_timer
        clock = self.clock
        for _ in range(fires):
            clock.ms, clock.us = struct.unpack_from("<II", data, off)
            off += _FIRE_SIZE
            if timer.armed:
                if timer.mode == 0:
                    timer.armed = False  # one-shot: the simulator's is disarmed too
                if timer.callback is not None:
                    if self.heap_lock:
                        _locked(self, self.fire)
                    else:
                        self.fire()

    def guarded_tick(self):
        if not self.ctl.tick_guarded():
            self.halted = True

    def fire(self):
        self.deadman_timer.callback(self.deadman_timer)

    def tick_inputs(self, data):
        ms, us, pins, addr, reg, n, imu, err, fires = struct.unpack_from(_INPUTS, data, 0)
        pins_in = self._inputs
        for i in range(len(pins_in)):
            pins_in[i].level = (pins >> i) & 1
        off = _INPUTS_SIZE
        for adc in self._adcs:
            adc.value = data[off] | (data[off + 1] << 8)
            off += 2
        i2c = self.i2c
        i2c.used = i2c.raised = 0
        i2c.pending = imu != _IMU_NONE
        if i2c.pending:
            i2c.addr = addr
            i2c.reg = reg
            i2c.n = n
            dst = i2c.buf
            for i in range(n):
                dst[i] = data[off + i]
            off += n
            i2c.errno = err if imu == _IMU_ERROR else (-1 if imu == _IMU_EXCEPTION else 0)
        self.fire_timers(data, off, fires)
        self.clock.ms = ms
        self.clock.us = us

    def outputs(self):
        ctl = self.ctl
        t = self.deadman_timer
        feeds = self.wdt.feeds
        self.wdt.feeds = 0
        shoot = self.shoot
        self.shoot = 0
        mask = 0
        outs = self._outputs
        for i in range(len(outs)):
            mask |= outs[i].out << i
        obuf = self._obuf
        struct.pack_into(
            _OUTPUTS, obuf, 3, mask, feeds, shoot, t.version & 0xFFFF, t.mode, t.freq,
            t.period, 1 if t.armed else 0, ctl.session.state, ctl.fault,
            (1 if ctl.head_down_permitted else 0) | (2 if self.halted else 0), self.i2c.used,
            ctl.estimator.angle_mdeg,
            ctl.drive.duty, ctl.session.target_mdeg, ctl.profile.pos_mdeg,
        )
        off = 3 + _OUTPUTS_SIZE
        for p in self._pwms:
            struct.pack_into("<HI", obuf, off, p.duty, p.f)
            off += _PWM_SIZE
        self._out.write(obuf)

    def handle(self, kind):
        data = self.data
        if kind == "T":
            self.tick_inputs(data)
            self.in_tick = True
            if self.halted:
                pass  # the firmware's loop stopped after an exception
            elif self.heap_lock:
                _locked(self, self.guarded_tick)
            else:
                self.guarded_tick()
            self.in_tick = False
        elif kind == "F":
            self.fire_timers(data, 1, data[0])
        elif kind == "M":
            gc.collect()
            self.send("M", struct.pack("<II", gc.mem_alloc(), gc.mem_free()))
            return
        elif kind == "B":
            data = None
            threshold = gc.threshold()
            gc.threshold(_GC_THRESHOLD_BOOT)
            try:
                self.boot()
            finally:
                gc.threshold(threshold)
        else:
            raise ValueError("unknown frame %r" % kind)
        self.outputs()

    def boot(self):
        """A new Controller (first boot, or after a watchdog reset).

        Ordered for a small heap (-X heapsize=64K): harness_boot decodes the
        boot frame and is dropped again before the firmware's modules are
        imported (measured: the other order leaves the controller's objects
        too little room between the holes); the collector runs every
        _GC_THRESHOLD_BOOT bytes meanwhile, so what an import leaves behind
        is freed before the next module is loaded, and once more before the
        controller's objects are built."""
        self.ctl = None
        self.halted = False
        import harness_boot
        try:
            program, limits, table = harness_boot.configure(
                self, (Clock, Pin, PWM, ADC, WDT, Timer, I2C), (_OUTPUTS_SIZE, _PWM_SIZE))
        finally:
            harness_boot = None
            del sys.modules["harness_boot"]
        gc.collect()
        from firmware.controller import Controller
        if not self.named:  # the names' string is built before the controller's objects
            self.named = True
            from firmware.controller import FAULT_NAMES
            from firmware.session import STATE_NAMES
            self.send("N", ("%s|%s" % (",".join(STATE_NAMES), ",".join(FAULT_NAMES))).encode())
        gc.collect()
        self.ctl = Controller(self, program, limits, table)

    def serve(self):
        self.send("H", ("%d|%s" % (
            _PROTOCOL, ".".join(str(v) for v in sys.implementation.version[:3]))).encode())
        while True:
            kind = self.recv()
            if kind is None:
                return
            try:
                self.handle(kind)
            except Exception as err:  # reported; the simulator stops the run
                # (a locked tick has already unlocked the heap in `finally`)
                buf = io.StringIO()
                sys.print_exception(err, buf)
                state = ""
                if self.ctl is not None:
                    from firmware.session import STATE_NAMES
                    state = STATE_NAMES[self.ctl.session.state]
                self.send("E", ("%s|%s|%s|%s" % (
                    type(err).__name__, "tick" if self.in_tick else "harness", state,
                    buf.getvalue())).encode())
                self.in_tick = False


if __name__ == "__main__":
    Harness().serve()
