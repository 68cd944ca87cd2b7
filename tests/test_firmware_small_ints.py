"""The control tick stays in 31-bit small ints, never makes a float, and never
allocates on the real MicroPython interpreter.

Why this file exists: on the 32-bit boards (RP2040, ESP32) an int beyond
+-(2**30 - 1) becomes a heap big-int and every float is a heap object, so
either would allocate in the control tick. The 64-bit unix port cannot show
the big-int case (its small ints have 63 bits), so it is checked here on
CPython, two ways:

1. Line tracing (sys.settrace) of the real modules over long random
   sequences: every int local and every int attribute of the objects, in
   every firmware frame, stays within SMALL_INT_MAX; no float appears in a
   per-tick frame (everything but TiltEstimator.__init__ and import time).
2. Expression instrumentation: the same modules recompiled with every binary
   and unary operation (and augmented assignment) wrapped in a check, which
   also sees intermediate values that never reach a named local.

Then the MicroPython unix port runs the tick under micropython.heap_lock():
any allocation raises MemoryError. mpy-cross must compile every module.
"""

import ast
import math
import os
import random
import subprocess
import sys
import types

import pytest

from firmware import estimator as estimator_module
from firmware import fixedpoint as fixedpoint_module
from firmware import motion_profile as motion_profile_module
from firmware.estimator import TiltEstimator
from firmware.limits import SMALL_INT_MAX
from firmware.motion_profile import MotionProfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE_FILES = {
    os.path.abspath(m.__file__)
    for m in (fixedpoint_module, estimator_module, motion_profile_module)
}
# Configuration code that runs once may use floats (not per tick).
CONFIG_FUNCTIONS = {("estimator.py", "__init__")}

WORST = {"abs_int": 0, "where": ""}
WORST_BY_FILE = {}


def _note(value, where):
    if type(value) is bool:
        return
    if type(value) is int:
        mag = -value if value < 0 else value
        if mag > WORST["abs_int"]:
            WORST["abs_int"] = mag
            WORST["where"] = where
        key = where.split(":")[0]
        if mag > WORST_BY_FILE.get(key, (0, ""))[0]:
            WORST_BY_FILE[key] = (mag, where)
        assert mag <= SMALL_INT_MAX, "big int %d at %s" % (value, where)
    elif type(value) is float:
        raise AssertionError("float %r at %s" % (value, where))


# --- workloads: long random sequences through every branch ------------------------


def estimator_workload(rnd, n, cls=TiltEstimator, lsb_per_g=16384, lsb_per_dps=131.0):
    """Realistic and hostile IMU samples: statics, motion, vibration, 1.5 g,
    saturation, garbage, odd dt."""
    est = cls(
        accel_lsb_per_g=lsb_per_g,
        gyro_lsb_per_dps=lsb_per_dps,
        mount_offset_mdeg=rnd.randint(-5000, 5000),
        accel_offset_counts=rnd.choice([(0, 0, 0), (2048, -2048, 2048), (-2048, 2048, -2048)]),
    )
    angle = rnd.uniform(-62, 92)
    yield est
    for k in range(n):
        phase = (k // 250) % 5
        angle += rnd.uniform(-0.06, 0.06)
        ts = math.radians(angle)
        g = lsb_per_g * (1.5 if phase == 3 else 1.0)
        noise = 800.0 if phase == 2 else 50.0
        ax = int(-g * math.sin(ts) + rnd.gauss(0, noise))
        az = int(g * math.cos(ts) + rnd.gauss(0, noise))
        ay = int(rnd.gauss(0, noise))
        gy = int(rnd.gauss(1.5 * lsb_per_dps, 40))
        dt = 10
        if phase == 4:
            ax = rnd.choice([-32768, 32767, rnd.randint(-40000, 40000)])
            az = rnd.choice([-32768, 32767, rnd.randint(-40000, 40000)])
            ay = rnd.choice([-32768, 32767])
            gy = rnd.choice([-32768, 32767, rnd.randint(-40000, 40000)])
            dt = rnd.choice([0, 1, 5, 20, 100, 5000, -3])
        est.update(ax, ay, az, gy, dt)
        if k % 3700 == 3699:
            est.reset()
        yield est


def profile_workload(rnd, n, cls=MotionProfile):
    """Random targets (reversals included), limit changes (lowered mid-motion,
    pathological jerk drops), per-tick limit changes, resets from measured
    states, tick lengths including out-of-range ones."""
    prof = cls(2000, 4000, 10000, -60000)
    yield prof
    target = 88000
    for k in range(n):
        r = rnd.random()
        if r < 0.01:
            target = rnd.choice(
                [
                    rnd.randint(-70000, 92000),
                    prof.pos_mdeg + rnd.randint(-3000, 3000),
                    10**6,
                    -(10**6),
                ]
            )
        elif r < 0.015:
            prof.set_limits(rnd.randint(-5, 7000), rnd.randint(-5, 30000), rnd.randint(-5, 200000))
        elif r < 0.018:
            prof.reset(
                rnd.randint(-100000, 100000), rnd.randint(-9000, 9000), rnd.randint(-30000, 30000)
            )
        elif r < 0.02:
            # caps first, then a sudden drop of all limits while hard at work
            prof.set_limits(6000, 20000, 100000)
        elif r < 0.022:
            prof.set_limits(rnd.randint(10, 500), rnd.randint(100, 1000), 1000)
        if (k // 300) % 4 == 3:
            prof.set_limits(
                rnd.randint(10, 6000), rnd.randint(100, 20000), rnd.randint(1000, 100000)
            )
        dt = rnd.choice([10, 10, 10, 5, 20, rnd.randint(1, 25), 0, 100])
        prof.step(target, dt)
        yield prof


# --- 1. line tracing of the real modules ----------------------------------------------


def _make_tracer():
    def local_trace(frame, event, arg):
        code = frame.f_code
        where = "%s:%d %s" % (os.path.basename(code.co_filename), frame.f_lineno, code.co_name)
        config = (os.path.basename(code.co_filename), code.co_name) in CONFIG_FUNCTIONS
        if not config:
            for name, value in frame.f_locals.items():
                if name != "self":
                    _note(value, where + " " + name)
            if event == "return":
                _note(arg, where + " return")
                # attributes as each method leaves (their intermediate values
                # are covered by the instrumented run below)
                owner = frame.f_locals.get("self")
                if owner is not None:
                    for attr, attr_value in owner.__dict__.items():
                        _note(attr_value, where + " self." + attr)
        return local_trace

    def global_trace(frame, event, arg):
        if (
            os.path.abspath(frame.f_code.co_filename) in FIRMWARE_FILES
            and frame.f_code.co_name != "<module>"
        ):
            return local_trace
        return None

    return global_trace


def test_traced_estimator_locals_and_attributes():
    rnd = random.Random(1)
    work = estimator_workload(rnd, 1250)
    est = next(work)
    sys.settrace(_make_tracer())
    try:
        for item in work:
            est = item
    finally:
        sys.settrace(None)
    for attr, value in est.__dict__.items():
        _note(value, "TiltEstimator." + attr)
    print("worst |int| so far: %d at %s" % (WORST["abs_int"], WORST["where"]))


def test_traced_profile_locals_and_attributes():
    rnd = random.Random(101)
    work = profile_workload(rnd, 1500)
    prof = next(work)
    sys.settrace(_make_tracer())
    try:
        for item in work:
            prof = item
    finally:
        sys.settrace(None)
    for attr, value in prof.__dict__.items():
        _note(value, "MotionProfile." + attr)
    print("worst |int| so far: %d at %s" % (WORST["abs_int"], WORST["where"]))


# --- 2. every intermediate value: instrumented recompilation ------------------------


class _WrapOperations(ast.NodeTransformer):
    """Wrap BinOp/UnaryOp results and augmented assignments in _int_check_(...)
    inside functions (module-level code and config functions untouched)."""

    def __init__(self, filename):
        self.filename = filename
        self.in_function = 0
        self.config = 0

    def visit_FunctionDef(self, node):
        is_config = (self.filename, node.name) in CONFIG_FUNCTIONS
        self.in_function += 1
        self.config += is_config
        self.generic_visit(node)
        self.in_function -= 1
        self.config -= is_config
        return node

    def _active(self):
        return self.in_function and not self.config

    def _wrap(self, node):
        label = ast.Constant("%s:%d" % (self.filename, node.lineno))
        return ast.copy_location(
            ast.Call(func=ast.Name("_int_check_", ast.Load()), args=[node, label], keywords=[]),
            node,
        )

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self._wrap(node) if self._active() else node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if self._active() and not isinstance(node.op, ast.Not):
            return self._wrap(node)
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if not self._active() or not isinstance(node.target, (ast.Name, ast.Attribute)):
            return node
        load_target = ast.parse(ast.unparse(node.target), mode="eval").body
        value = ast.BinOp(left=load_target, op=node.op, right=node.value)
        ast.copy_location(value, node)
        assign = ast.Assign(targets=[node.target], value=self._wrap(value))
        return ast.fix_missing_locations(ast.copy_location(assign, node))


def _checked(value, where):
    _note(value, where)
    return value


def _instrumented(module, replacements):
    filename = os.path.basename(module.__file__)
    with open(module.__file__) as handle:
        tree = ast.parse(handle.read(), filename)
    tree = ast.fix_missing_locations(_WrapOperations(filename).visit(tree))
    clone = types.ModuleType(module.__name__ + "_checked")
    clone.__dict__["_int_check_"] = _checked
    exec(compile(tree, module.__file__, "exec"), clone.__dict__)
    clone.__dict__.update(replacements)
    return clone


def test_instrumented_intermediates_stay_small():
    fp = _instrumented(fixedpoint_module, {})
    helpers = {
        name: getattr(fp, name) for name in ("atan2_mdeg", "clamp", "isqrt", "mul_div", "div_round")
    }
    est_mod = _instrumented(estimator_module, helpers)
    prof_mod = _instrumented(motion_profile_module, helpers)
    for seed in range(3):
        rnd = random.Random(1000 + seed)
        # MPU-6050 +-2 g / +-250 dps, and +-16 g / +-2000 dps scales
        scales = ((16384, 131.0), (2048, 16.4), (8192, 65.5))[seed]
        for _ in estimator_workload(rnd, 3000, est_mod.TiltEstimator, *scales):
            pass
        for _ in profile_workload(rnd, 5000, prof_mod.MotionProfile):
            pass
    # fixed-point helpers over their documented domains
    for _ in range(20000):
        fp.isqrt(rnd.randint(0, SMALL_INT_MAX))
        fp.atan2_mdeg(rnd.randint(-40000, 40000), rnd.randint(-40000, 40000))
        fp.mul_div(
            rnd.randint(-(2**19) + 1, 2**19 - 1),
            rnd.randint(-1000, 1000),
            rnd.randint(1, 2**18 - 1),
        )
    print(
        "worst |int| seen: %d (%.1f%% of SMALL_INT_MAX) at %s"
        % (WORST["abs_int"], 100.0 * WORST["abs_int"] / SMALL_INT_MAX, WORST["where"])
    )
    for key, (mag, where) in sorted(WORST_BY_FILE.items()):
        if not key.endswith(".py"):
            continue
        print("  %-20s %11d (%.1f%%) at %s" % (key, mag, 100.0 * mag / SMALL_INT_MAX, where))
    assert WORST["abs_int"] <= SMALL_INT_MAX


def test_the_checker_catches_a_big_int_and_a_float():
    with pytest.raises(AssertionError):
        _note(2**30, "probe")
    with pytest.raises(AssertionError):
        _note(-(2**30), "probe")
    with pytest.raises(AssertionError):
        _note(0.5, "probe")
    _note(SMALL_INT_MAX, "probe")
    _note(-SMALL_INT_MAX, "probe")


# --- 3. zero allocation on the real MicroPython interpreter ---------------------------

MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
MPY_CROSS = os.path.join(ROOT, ".venv", "bin", "mpy-cross")

HEAP_LOCK_SCRIPT = r"""
import gc
import micropython
from firmware.estimator import TiltEstimator
from firmware.motion_profile import MotionProfile

est = TiltEstimator(mount_offset_mdeg=1500, accel_offset_counts=(66, -49, 98))
est16 = TiltEstimator(accel_lsb_per_g=2048, gyro_lsb_per_dps=16.4, mount_offset_mdeg=-3000)
prof = MotionProfile(2000, 4000, 10000, -60000)
SIN = (0, 2856, 5627, 8192, 10531, 12551, 14189, 15388, 16135, 16384)
COS = (16384, 16135, 15388, 14189, 12551, 10531, 8192, 5627, 2856, 0)
DTS = (10, 10, 10, 5, 20, 7, 13, 0, 1, 25, 100)
seed = 12345
result = 0


def rand(n):
    # LCG in 30 bits (no module, no allocation); 0 <= result < n
    global seed
    seed = (seed * 1103515245 + 12345) & 0x3FFFFFFF
    return (seed >> 8) % n


def imu_tick(k):
    i = (k // 97) % 10
    phase = (k // 700) % 5
    if phase == 1:      # motor vibration: degrees of tick-to-tick noise
        ax = -SIN[i] + rand(1800) - 900
        az = COS[i] + rand(1800) - 900
        est.update(ax, rand(600) - 300, az, 196 + rand(80) - 40, 10)
    elif phase == 2:    # 1.5 g: accelerometer rejected, gyro followed
        est.update(-(SIN[i] * 3) // 2, 0, (COS[i] * 3) // 2, 196, 10)
    elif phase == 3:    # garbage and saturation, odd sample periods
        est.update(rand(70000) - 35000, rand(65536) - 32768, rand(70000) - 35000,
                   rand(70000) - 35000, DTS[rand(11)] * (1 if rand(9) else -1) + rand(2) * 5000)
        est16.update(rand(9) - 4, rand(9) - 4, -rand(3000), rand(70000) - 35000, DTS[rand(11)])
    else:
        est.update(-SIN[i] + rand(100) - 50, rand(100) - 50, COS[i] + rand(100) - 50, 196, 10)
    if k % 2900 == 2899:
        est.reset()


def profile_tick(k, target):
    r = rand(1000)
    if (k // 600) % 5 == 2:
        if k % 600 == 0:
            prof.set_limits(3000, 8000, 30000)
            target = rand(6000) - 3000 + prof.pos_mdeg
        r = 1000                                   # hold still: arrive, snap, done
    if r < 10:
        target = rand(180000) - 80000
        if r < 2:
            target = 900000 if r else -900000   # beyond the clamp
    elif r < 14:
        prof.set_limits(rand(7000) - 5, rand(30000) - 5, rand(200000) - 5)
    elif r < 16:
        prof.reset(rand(300000) - 150000, rand(18000) - 9000, rand(60000) - 30000)
    elif r < 18:
        prof.set_limits(6000, 20000, 100000)
    elif r < 20:
        prof.set_limits(10 + rand(500), 100 + rand(1000), 1000)   # drop hard
    if (k // 600) % 5 == 4:
        prof.set_limits(rand(6000), rand(20000), rand(100000))  # every tick
    prof.step(target, DTS[rand(11)])
    return target


def run(n):
    k = 0
    target = 88000
    while k < n:
        imu_tick(k)
        target = profile_tick(k, target)
        k += 1
    return prof.pos_mdeg + est.angle_mdeg


run(300)                  # warm up: every attribute and global exists
result = 0
gc.collect()
micropython.heap_lock()
result = run(20000)
micropython.heap_unlock()
print("OK", result, prof.done, est.settled)
"""


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="MicroPython unix port not installed")
def test_tick_allocates_nothing_under_heap_lock(tmp_path):
    script = tmp_path / "heap_lock_tick.py"
    script.write_text(HEAP_LOCK_SCRIPT)
    env = dict(os.environ, MICROPYPATH=ROOT)
    out = subprocess.run(
        [MICROPYTHON, str(script)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("OK"), out.stdout + out.stderr


@pytest.mark.skipif(not os.path.exists(MICROPYTHON), reason="MicroPython unix port not installed")
def test_heap_lock_check_does_catch_allocation(tmp_path):
    """Guard against a vacuous pass: a float in the locked loop must fail."""
    script = tmp_path / "heap_lock_float.py"
    script.write_text(
        HEAP_LOCK_SCRIPT.replace(
            "        k += 1\n",
            "        k += 1\n        target = target + 0.5 * k if k == 19999 else target\n",
        )
    )
    env = dict(os.environ, MICROPYPATH=ROOT)
    out = subprocess.run(
        [MICROPYTHON, str(script)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode != 0 and "MemoryError" in out.stdout + out.stderr


@pytest.mark.skipif(not os.path.exists(MPY_CROSS), reason="mpy-cross not installed")
@pytest.mark.parametrize(
    "name", ["fixedpoint.py", "estimator.py", "motion_profile.py", "limits.py"]
)
def test_mpy_cross_compiles(name, tmp_path):
    out = subprocess.run(
        [
            MPY_CROSS,
            "-o",
            str(tmp_path / (name[:-3] + ".mpy")),
            os.path.join(ROOT, "firmware", name),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
