"""The session recorder (firmware/session_record.py) can run in the control tick.

What these tests protect:
- the figures are right: peak angle, time inverted (angle > 0) to the tick,
  duration, and one sample every 5000 ms (the angle then, in decidegrees),
  across the 2**30 ticks wrap of the simulator's clock; finish() makes a
  record the session log accepts and reads back unchanged;
- a config.Program is recorded in the record's units (deg, s, deg/s);
- start() and update() allocate nothing on the real MicroPython interpreter
  (they run under micropython.heap_lock(); a check shows the lock does catch
  an allocation), and the MicroPython run's record equals the CPython one;
- every int in start()/update() -- locals, attributes and every
  intermediate value -- stays within 31-bit small ints (|x| <= 2**30 - 1)
  over hostile inputs: huge angles, late and backwards ticks, sessions far
  past the sample capacity and the sum caps;
- misuse is refused with a message naming the allowed values.
"""

import ast
import json
import os
import random
import subprocess
import types

import pytest

from firmware import session_record as SR
from firmware.config import Program
from firmware.session_log import SessionLog, check_record
from firmware.session_record import SessionRecorder
from sim.clock import VirtualClock
from sim.micropython_runtime import MicroPythonUnavailable, find_micropython

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_INT_MAX = 2**30 - 1


def angle_at(t_ms):
    """A session: descend from -60 deg at 2 deg/s to 30, hold, come back at 2 deg/s."""
    if t_ms < 45_000:
        return -60_000 + 2 * t_ms
    if t_ms < 105_000:
        return 30_000
    return max(-60_000, 30_000 - 2 * (t_ms - 105_000))


def test_figures_are_right_across_the_ticks_wrap(tmp_path):
    clock = VirtualClock()  # 5 s before the 2**30 wrap
    rec = SessionRecorder(clock)
    prog = {"target_angle_deg": 30.0, "hold_s": 60.0, "rock_amplitude_deg": 0.0,
            "rock_period_s": 10.0}  # fmt: skip
    t0 = clock.ticks_ms()
    rec.start(t0, prog)
    inverted = 0
    total = 150_000
    for t in range(0, total + 1, 10):
        if t:
            clock.advance_us(10_000)
        a = angle_at(t)
        if t and a > 0:
            inverted += 10
        rec.update(clock.ticks_ms(), a)
    assert clock.ticks_ms() < t0  # wrapped
    clock.advance_us(20_000)  # finish 20 ms after the last update, at the last angle
    out = rec.finish(clock.ticks_ms(), "completed", ("", "imu_lost"), boot=4, start_s=1_780_000_000)
    assert out["duration_s"] == 150.02
    assert out["inverted_s"] == inverted / 1000
    assert inverted == 2 * 15_000 - 10 + 60_000  # (0, 45 s) up, held, (105, 120 s) down
    assert out["peak_angle_deg"] == 30.0
    assert out["angle_series_deg"] == [angle_at(5000 * k) // 100 / 10 for k in range(31)]
    assert out["faults"] == ["imu_lost"] and out["ended"] == "completed"
    assert out["start_ms"] == t0 and out["boot"] == 4 and out["start_s"] == 1_780_000_000
    assert out["program"] == prog and out["program"] is not prog
    assert not rec.active
    check_record(out)
    log = SessionLog(str(tmp_path))
    log.append(out)
    assert log.read() == ([out], [])


def test_late_ticks_owe_samples_and_backward_ticks_count_nothing():
    clock = VirtualClock(start_ms=1000)
    rec = SessionRecorder(clock, capacity=5)
    rec.start(1000, None)
    rec.update(1000, 12_345)  # sample 0: 12.3 deg
    rec.update(13_000, -5_000)  # 12 s late: samples at 5 s and 10 s both get this angle
    rec.update(12_000, 50_000)  # 1 s backwards: counts no time, but the peak counts
    rec.update(40_000, 1_000)  # 28 s on: samples at 15 s, 20 s; capacity 5 -> rest dropped
    out = rec.finish(40_000, "released", [])
    assert out["angle_series_deg"] == [12.3, -5.0, -5.0, 1.0, 1.0]
    assert rec.dropped == 4  # 25, 30, 35, 40 s
    assert out["duration_s"] == 40.0
    assert out["inverted_s"] == 28.0  # only the last interval ended above 0
    assert out["peak_angle_deg"] == 50.0


def test_program_from_config_in_record_units():
    program = Program({"target_angle_deg": 30.0, "hold_s": 60.0, "rock_amplitude_deg": 5.0,
                       "rock_period_s": 10.0, "rest_s": 20.0})  # fmt: skip
    got = SR.program_dict(program)
    assert got["target_angle_deg"] == 30.0 and got["hold_s"] == 60.0
    assert got["rock_amplitude_deg"] == 5.0 and got["rock_period_s"] == 10.0
    assert got["rock_cycles"] == 3 and got["rest_s"] == 20.0
    assert set(got) <= set(Program.KEYS)
    assert SR.program_dict(None) == {}


def test_misuse_is_refused_naming_the_allowed_values():
    rec = SessionRecorder(VirtualClock())
    with pytest.raises(ValueError, match=r"finish\(\) without start\(\)"):
        rec.finish(0, "completed")
    rec.start(0, None)
    with pytest.raises(ValueError, match="ended must be one of completed, released, fault, "
                       "power_loss, got 'done'"):  # fmt: skip
        rec.finish(10, "done")
    with pytest.raises(ValueError, match=r"capacity must be an int in 1 \.\. 10000"):
        SessionRecorder(VirtualClock(), capacity=0)
    rec.update(10, 5)  # still recording after a refused finish
    assert rec.active and rec.n_samples == 1


# --- on MicroPython: nothing allocated --------------------------------------------------

MP_SCRIPT = """
import json, micropython
from firmware.session_record import SessionRecorder

class Clock:
    def ticks_diff(self, a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

def angle_at(t):
    if t < 45000:
        return -60000 + 2 * t
    if t < 105000:
        return 30000
    a = 30000 - 2 * (t - 105000)
    return a if a > -60000 else -60000

def session(rec, t0, prog):
    rec.start(t0, prog)
    t = 0
    while t <= 150000:
        rec.update((t0 + t) & 0x3FFFFFFF, angle_at(t))
        t += 10
    return t

rec = SessionRecorder(Clock())
prog = {"target_angle_deg": 30.0}
end = 0
micropython.heap_lock()
try:
    end = session(rec, 0x3FFFFFFF - 4999, prog)
    end = session(rec, 0x3FFFFFFF - 4999, prog)  # a second session reuses everything
finally:
    micropython.heap_unlock()
out = rec.finish((0x3FFFFFFF - 4999 + end) & 0x3FFFFFFF, "completed", ("imu_lost",))
caught = False
micropython.heap_lock()
try:
    rec.samples[0] = int(1.5 * rec.n_samples)  # a float: must be caught
except MemoryError:
    caught = True
finally:
    micropython.heap_unlock()
out["lock_catches_a_float"] = caught
print(json.dumps(out))
"""


def test_start_and_update_allocate_nothing_on_micropython():
    try:
        exe = find_micropython()
    except MicroPythonUnavailable as err:
        pytest.skip(str(err))
    proc = subprocess.run([exe, "-c", MP_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, MICROPYPATH=ROOT + ":.frozen"),
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("lock_catches_a_float") is True

    # The same session on CPython with the simulator's clock: the same record.
    clock = VirtualClock(start_ms=(1 << 30) - 5000)
    rec = SessionRecorder(clock)
    t0 = clock.ticks_ms()
    rec.start(t0, {"target_angle_deg": 30.0})
    for t in range(0, 150_001, 10):
        rec.update((t0 + t) & ((1 << 30) - 1), angle_at(t))
    host = rec.finish((t0 + 150_010) & ((1 << 30) - 1), "completed", ("imu_lost",))
    assert out == host
    assert len(out["angle_series_deg"]) == 31


# --- on CPython: 31-bit small ints everywhere -------------------------------------------

PER_TICK = {"start", "update", "_advance"}


class _Wrap(ast.NodeTransformer):
    """Wrap every BinOp/UnaryOp result and augmented assignment in the per-tick
    methods in a check call."""

    def __init__(self):
        self.depth = 0

    def visit_FunctionDef(self, node):
        active = node.name in PER_TICK
        self.depth += active
        self.generic_visit(node)
        self.depth -= active
        return node

    def _wrap(self, node):
        label = ast.Constant("line %d" % node.lineno)
        return ast.copy_location(
            ast.Call(func=ast.Name("_chk_", ast.Load()), args=[node, label], keywords=[]), node
        )

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self._wrap(node) if self.depth else node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        return self._wrap(node) if self.depth and not isinstance(node.op, ast.Not) else node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if not self.depth:
            return node
        load = ast.parse(ast.unparse(node.target), mode="eval").body
        value = self._wrap(ast.copy_location(ast.BinOp(left=load, op=node.op, right=node.value),
                                             node))  # fmt: skip
        return ast.fix_missing_locations(
            ast.copy_location(ast.Assign(targets=[node.target], value=value), node)
        )


SEEN = {"max": 0}


def _check(value, where):
    if type(value) is float:
        raise AssertionError("float %r at %s" % (value, where))
    if type(value) is int:
        assert -SMALL_INT_MAX <= value <= SMALL_INT_MAX, "big int %d at %s" % (value, where)
        SEEN["max"] = max(SEEN["max"], abs(value))
    return value


def _instrumented_recorder():
    with open(SR.__file__) as f:
        tree = ast.parse(f.read())
    tree = ast.fix_missing_locations(_Wrap().visit(tree))
    mod = types.ModuleType("session_record_checked")
    mod.__dict__["_chk_"] = _check
    exec(compile(tree, SR.__file__, "exec"), mod.__dict__)
    return mod


def _check_attributes(rec):
    for name, value in vars(rec).items():
        if name != "_clock":
            _check(value, "self." + name)


def test_every_int_stays_within_31_bits_over_hostile_input():
    mod = _instrumented_recorder()
    rnd = random.Random(7)
    mask = (1 << 30) - 1
    for trial in range(6):
        clock = VirtualClock()
        rec = mod.SessionRecorder(clock, capacity=(400, 3)[trial % 2])
        t = rnd.randrange(1 << 30)
        rec.start(t, None)
        _check_attributes(rec)
        for _ in range(4000):
            kind = rnd.random()
            if kind < 0.9:
                t = (t + 10) & mask
            elif kind < 0.95:
                t = (t + rnd.randrange(1 << 29)) & mask  # very late: ticks_diff's largest
            else:
                t = (t - rnd.randrange(1 << 29)) & mask  # backwards
            angle = rnd.choice([rnd.randint(-90_000, 90_000), SMALL_INT_MAX, -SMALL_INT_MAX])
            rec.update(t, angle)
            _check_attributes(rec)
        assert rec.elapsed_ms <= SMALL_INT_MAX
        out = rec.finish(t, "fault", ("imu_lost",))
        assert -3276.7 <= min(out["angle_series_deg"]) <= max(out["angle_series_deg"]) <= 3276.7
    # The caps were reached: the sums saturate instead of growing into big ints.
    assert SEEN["max"] >= 1 << 29


def test_the_checker_catches_a_big_int_and_a_float():
    with pytest.raises(AssertionError, match="big int"):
        _check(1 << 30, "x")
    with pytest.raises(AssertionError, match="float"):
        _check(0.5, "x")
    # Without its cap the duration sum would grow into a big int: caught.
    mod = _instrumented_recorder()
    mod._ELAPSED_CAP_MS = 1 << 40
    rec = mod.SessionRecorder(VirtualClock())
    rec.start(0, None)
    rec.elapsed_ms = SMALL_INT_MAX - 5
    rec._next_sample_ms = 1 << 40
    with pytest.raises(AssertionError, match="big int"):
        rec.update(10, 0)
