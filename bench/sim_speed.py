"""Simulator speed: simulated seconds per wall second on CPython.

A 30-minute session built in code (the README's session cap): press at 1 s,
descend to 45 deg, hold 25 minutes, rock +-5 deg three times, return with a
20 s rest near horizontal, home; the user holds the button throughout. The
full firmware (controller, estimator, planner, loop, drivers) runs every
10 ms tick against the plant and the register-level IMU model, recording the
trace (sim.runner.Run.run). Only the run is timed, not the set-up.
"""

import time

import sim  # noqa: F401
from bench import streams as S
from sim import checks

SESSION_S = 1800.0


def session_spec(duration_s=SESSION_S):
    hold_s = max(0.0, duration_s - 300.0)
    return S.spec(
        "session_30min", duration_s,
        {"target_angle_deg": 45.0, "hold_s": hold_s, "rock_amplitude_deg": 5.0,
         "rock_period_s": 10.0, "rock_cycles": 3, "rest_s": 20.0},
        [(1.0, "press")], seed=31,
        what="30-min session: descend to 45, hold, rock +-5 x3, rest, home",
    )


def run(duration_s=SESSION_S):
    run_ = S.build_run(session_spec(duration_s))
    t0 = time.perf_counter()
    c0 = time.process_time()
    trace = run_.run()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    ticks = len(trace)
    states = trace["state"]
    return {
        "realtime_factor": duration_s / wall,
        "simulated_s": duration_s,
        "wall_s": wall,
        # CPU time of this process: the same figure on a busy machine
        "realtime_factor_cpu": duration_s / cpu if cpu > 0 else None,
        "cpu_s": cpu,
        "ticks": ticks,
        "cpython_us_per_tick": wall / ticks * 1e6,
        "states_seen": sorted(set(states)),
        "ended_home": states[-1] == "HOME",
        "safety_violations": len(checks.all_violations(trace)),
    }
