"""The control tick on the MicroPython unix port: time, heap, code size.

    python -m bench.tick_micropython [--quick] [--out build/bench_tick.json]
    make bench

1. Records SITL sessions with the firmware in MicroPython
   (sim/micropython_runtime.py, `record=`): the default scenario (full
   session + a release mid-descent) and an IMU lost mid-descent (blind
   return), so every common state is in the sample.
2. Replays each recording in a fresh `micropython` with no simulator and no
   pipe (sim/mp/replay.py): the firmware gets the same inputs; each
   controller.tick() is timed with time.ticks_us() and bracketed by
   gc.mem_alloc() with the automatic collector off, so the difference is
   what the tick allocated (expected: 0 bytes).
3. Compiles the firmware with mpy-cross (host_tools/build.py, as it goes
   onto a board) and sums the .mpy sizes.

Reports the median and p99 microseconds per tick over the steady part (the
first WARMUP_TICKS after each boot left out), per state as well, and bytes
allocated per tick. The unix port runs on a PC: the numbers compare runs and
versions, not the RP2040 (tens of times slower). Not a test: no assertions;
tests/test_micropython_tick_allocates_nothing.py checks the zero allocation.
Prints a markdown table and writes JSON (default build/bench_tick.json).
`result(quick=False)` is what bench/run_all.py calls.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

import sim  # noqa: F401  (the `micropython` stand-in for CPython imports)
from sim.micropython_runtime import (
    ROOT,
    MicroPythonRun,
    compile_mpy,
    find_micropython,
    replay,
)
from sim.scenario import load, parse

DEFAULT_OUT = os.path.join(ROOT, "build", "bench_tick.json")
WARMUP_TICKS = 50

_BLIND = """
duration_s = {duration}
seed = 7
[user]
mass_kg = 95.0
height_m = 1.85
[program]
target_angle_deg = 40.0
hold_s = 30.0
rock_amplitude_deg = 0.0
rock_period_s = 10.0
[[event]]
at_s = 2.0
button = "press"
[[event]]
at_s = {fault_s}
fault = "imu_disconnect"
"""

_QUICK = """
duration_s = 20.0
seed = 1
[user]
mass_kg = 80.0
height_m = 1.78
[program]
target_angle_deg = 30.0
hold_s = 5.0
rock_amplitude_deg = 0.0
rock_period_s = 10.0
[[event]]
at_s = 2.0
button = "press"
[[event]]
at_s = 12.0
button = "release"
"""


def _scenarios(quick):
    if quick:
        return [("quick", parse(tomllib.loads(_QUICK), "quick"))]
    return [
        ("default", load(os.path.join(ROOT, "scenarios", "default.toml"))),
        ("imu_lost", parse(tomllib.loads(_BLIND.format(duration=80.0, fault_s=15.0)), "imu_lost")),
    ]


def record(scenario, path):
    """Run the scenario with the firmware in MicroPython, recording the frames."""
    with open(path, "wb") as f:
        run = MicroPythonRun(scenario, record=f)
        trace = run.run()
    return len(trace)


def _p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def mpy_size():
    """(firmware .mpy bytes, {file: bytes}, how it was built)."""
    with tempfile.TemporaryDirectory(prefix="bench-mpy-") as tmp:
        try:
            from host_tools import build as hb

            built = hb.build(out_dir=os.path.join(tmp, "device"))
            sizes = {src: size for src, _dest, size in built if src.startswith("firmware/")}
            how = "host_tools.build"
        except Exception as err:  # not there, or failing: plain mpy-cross still counts
            sizes = compile_mpy(os.path.join(tmp, "plain"), with_harness=False)
            how = "mpy-cross (host_tools.build: %s: %s)" % (type(err).__name__, err)
    return sum(sizes.values()), sizes, how


def result(quick=False):
    """Measure; returns the dict written to build/bench_tick.json."""
    from firmware.session import STATE_NAMES

    t0 = time.perf_counter()
    us_all, alloc_all, by_state = [], [], {}
    sessions, allocating, first_allocs = {}, {}, []
    imu_error_ticks = 0
    with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
        for name, scenario in _scenarios(quick):
            rec = os.path.join(tmp, name + ".rec")
            ticks = record(scenario, rec)
            sample = replay(rec)
            assert len(sample.us) == ticks, (len(sample.us), ticks)
            us, alloc, states = sample.us, sample.alloc, sample.state
            sessions[name] = {"ticks": len(us), "simulated_s": scenario.duration_ms / 1000}
            for i in range(len(us)):
                state = STATE_NAMES[states[i]]
                alloc_all.append(alloc[i])
                if alloc[i]:
                    allocating.setdefault(state, []).append(alloc[i])
                    if sample.imu_raised[i]:
                        imu_error_ticks += 1
                    if len(first_allocs) < 10:
                        first_allocs.append({"session": name, "tick": i, "state": state,
                                             "bytes": alloc[i],
                                             "imu_read_raised": bool(sample.imu_raised[i])})
                if i >= WARMUP_TICKS:  # one boot per session here
                    us_all.append(us[i])
                    by_state.setdefault(state, []).append(us[i])
    total_mpy, files, how = mpy_size()
    per_state = {
        state: {"ticks": len(v), "median_us": statistics.median(v), "p99_us": _p99(v),
                "ticks_that_allocated": len(allocating.get(state, ())),
                "bytes_allocated": sum(allocating.get(state, ()))}
        for state, v in sorted(by_state.items(), key=lambda kv: STATE_NAMES.index(kv[0]))
    }
    return {
        "us_per_tick_micropython": statistics.median(us_all),
        "us_per_tick_p99_micropython": _p99(us_all),
        "us_per_tick_max_micropython": max(us_all),
        "bytes_per_tick": sum(alloc_all) / len(alloc_all),
        "ticks_that_allocated": sum(1 for a in alloc_all if a != 0),
        # of those, ticks whose IMU read raised OSError (the exception object;
        # machine.I2C allocates it on a board too): the reads that detect a lost IMU
        "ticks_that_allocated_imu_read_raised": imu_error_ticks,
        "ticks_measured": len(alloc_all),
        "first_allocating_ticks": first_allocs,
        "mpy_bytes": total_mpy,
        "mpy_files": files,
        "mpy_built_with": how,
        "per_state": per_state,
        "sessions": sessions,
        "warmup_ticks_left_out": WARMUP_TICKS,
        "micropython": _mp_version(),
        "machine": platform.machine(),
        "quick": quick,
        "wall_s": time.perf_counter() - t0,
    }


def _mp_version():
    proc = subprocess.run([find_micropython(), "-c", "import sys; print(sys.version)"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def markdown(res):
    lines = [
        "| control tick, MicroPython unix port (%s) | value |" % res["micropython"],
        "|---|---|",
        "| median us/tick (steady states) | %.1f |" % res["us_per_tick_micropython"],
        "| p99 us/tick | %.1f |" % res["us_per_tick_p99_micropython"],
        "| heap bytes allocated per tick | %.3g (%d of %d ticks allocated; %d of them: "
        "the IMU read raised OSError) |"
        % (res["bytes_per_tick"], res["ticks_that_allocated"], res["ticks_measured"],
           res["ticks_that_allocated_imu_read_raised"]),
        "| firmware .mpy total (%d files, %s) | %d bytes |"
        % (len(res["mpy_files"]), res["mpy_built_with"], res["mpy_bytes"]),
        "",
        "| state | ticks | median us | p99 us | ticks that allocated |",
        "|---|---|---|---|---|",
    ]
    for state, s in res["per_state"].items():
        lines.append("| %s | %d | %.1f | %.1f | %d |" % (state, s["ticks"], s["median_us"],
                                                        s["p99_us"], s["ticks_that_allocated"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.tick_micropython",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20 s session only")
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON output (%(default)s)")
    args = parser.parse_args(argv)
    res = result(quick=args.quick)
    print(markdown(res))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
        f.write("\n")
    print("\nwrote %s (%.1f s)" % (args.out, res["wall_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
