"""The whole control tick is integer fixed point within 31-bit small ints.

Single-precision safety by construction: the boards' floats are 32-bit and
heap-allocated, so the tick uses none. This traces every firmware frame that
runs inside Controller.tick() over real simulated sessions (every state,
a release, rocking, an IMU loss and the blind return) and fails on any float
or any int beyond +-(2**30 - 1) in a local, a return value or an attribute.
Start-up code (constructors, config reading) may use floats and is not traced.
"""

import os
import sys

from firmware.config import Program
from firmware.limits import SMALL_INT_MAX
from sim.plant import User
from sim.runner import Run
from sim.scenario import Event, Scenario

FIRMWARE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "firmware"))
STARTUP_ONLY = {"__init__", "<module>"}
seen = {"frames": 0, "worst": 0}


def _check(value, where):
    if type(value) is bool or value is None:
        return
    if type(value) is float:
        raise AssertionError("float %r at %s" % (value, where))
    if type(value) is int:
        mag = -value if value < 0 else value
        seen["worst"] = max(seen["worst"], mag)
        assert mag <= SMALL_INT_MAX, "big int %d at %s" % (value, where)


def _local(frame, event, arg):
    code = frame.f_code
    where = "%s:%d %s" % (os.path.basename(code.co_filename), frame.f_lineno, code.co_name)
    for name, value in frame.f_locals.items():
        if name != "self":
            _check(value, where + " " + name)
    if event == "return":
        _check(arg, where + " return")
        owner = frame.f_locals.get("self")
        if owner is not None and hasattr(owner, "__dict__"):
            for attr, value in owner.__dict__.items():
                _check(value, where + " self." + attr)
    return _local


def _global(frame, event, arg):
    code = frame.f_code
    if code.co_filename.startswith(FIRMWARE_DIR) and code.co_name not in STARTUP_ONLY:
        seen["frames"] += 1
        return _local
    return None


class TracedRun(Run):
    def step(self):
        # trace only the firmware's tick, not the plant or the trace recording
        tick = self.controller.tick
        def traced_tick():
            sys.settrace(_global)
            try:
                tick()
            finally:
                sys.settrace(None)
        self.controller.tick = traced_tick
        try:
            super().step()
        finally:
            del self.controller.tick


def run_traced(pdata, events, duration_ms):
    user = User(mass_kg=110.0, height_m=1.9)
    run = TracedRun(Scenario(duration_ms, 5, user, Program(pdata), pdata, events))
    run.run()
    return run.trace


def test_full_session_tick_has_no_float_and_only_small_ints():
    pdata = {"target_angle_deg": 20.0, "hold_s": 1.0, "rock_amplitude_deg": 5.0,
             "rock_period_s": 8.0, "rock_cycles": 1, "rest_s": 1.0, "descent_rate_dps": 3.0}
    events = [Event(500, button="press"), Event(75_000, button="release"),
              Event(76_000, button="press"), Event(86_000, button="release")]
    trace = run_traced(pdata, events, 100_000)
    states = set(trace["state"])
    assert {"HOME", "DESCENDING", "HOLDING", "ROCKING", "RETURNING",
            "EMERGENCY_RETURN"} <= states
    assert seen["frames"] > 50_000


def test_imu_loss_and_blind_return_tick_has_no_float_and_only_small_ints():
    pdata = {"target_angle_deg": 45.0, "hold_s": 30.0, "rock_amplitude_deg": 0.0,
             "rock_period_s": 8.0}
    events = [Event(500, button="press"), Event(15_000, fault="imu_disconnect")]
    trace = run_traced(pdata, events, 45_000)
    assert "BLIND_RETURN" in set(trace["state"])
    assert "imu_lost" in set(trace["fault"])
