"""All benchmarks side by side in one run: `python -m bench.run_all`.

Sections (each module's docstring says exactly what it measures and how):
  estimator  bench/estimator_bench.py  TiltEstimator vs Fusion, Mahony, Madgwick
  motion     bench/motion_bench.py     MotionProfile vs Ruckig
  sim        bench/sim_speed.py        simulated seconds per wall second, 30 min
  tick       bench/tick_micropython.py (separate module, if present) against
             the IMU's I2C burst read time
  release    bench/release_bench.py    latency and overtravel after letting go

Prints a markdown table and writes build/bench.json (--out). `--quick` runs
the same machinery on tiny inputs (seconds; used by tests/test_bench_smoke.py).
Peers (imufusion, ahrs, ruckig) come from requirements-bench.txt; a missing
one is reported as missing, not fatal. The firmware never imports them.
"""

import argparse
import importlib
import inspect
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import sim  # noqa: F401
from bench import estimator_bench, motion_bench, release_bench, sim_speed
from bench import streams as S
from firmware import limits as L

# --- I2C: the IMU burst read the firmware does every tick -------------------
# readfrom_mem_into(addr, 0x3B, buf[14]): START, address+W, register,
# repeated START, address+R, 14 data bytes, STOP. Each byte is 8 bits + ACK.
I2C_BURST_BYTES = 1 + 1 + 1 + 14
I2C_BURST_BITS = 9 * I2C_BURST_BYTES + 3  # + START, repeated START, STOP
I2C_BRIEF_ESTIMATE_BYTES = 20  # the round figure (overheads included)


def i2c_read_us(freq_hz, bits=I2C_BURST_BITS):
    return bits * 1e6 / freq_hz


def tick_section(quick=False):
    i2c = {
        "i2c_burst_bytes_on_bus": I2C_BURST_BYTES,
        "i2c_burst_bits": I2C_BURST_BITS,
        "i2c_read_us_400khz": i2c_read_us(400000),
        "i2c_read_us_400khz_20_byte_estimate": i2c_read_us(400000, 9 * I2C_BRIEF_ESTIMATE_BYTES),
        "i2c_read_us_100khz": i2c_read_us(100000),
        "tick_period_us": L.TICK_MS * 1000,
    }
    out = {"us_per_tick_micropython": None, "bytes_per_tick": None, "mpy_bytes": None}
    out.update(i2c)
    try:
        mod = importlib.import_module("bench.tick_micropython")
    except ImportError as err:
        if getattr(err, "name", None) not in ("bench.tick_micropython", None):
            out["status"] = "missing: bench.tick_micropython failed to import (%s)" % err
        else:
            out["status"] = "missing: bench/tick_micropython.py not present"
        return out
    fn = None
    for name in ("result", "run", "measure"):
        fn = getattr(mod, name, None)
        if callable(fn):
            break
    if fn is None:
        out["status"] = "missing: bench.tick_micropython has no result() function"
        return out
    params = inspect.signature(fn).parameters
    if quick and "quick" not in params:
        out["status"] = "skipped in --quick (%s() takes no quick argument)" % fn.__name__
        return out
    try:
        got = fn(quick=True) if quick else fn()
    except Exception as err:  # report it; the other sections stand
        out["status"] = "failed: %s.%s() raised %s: %s" % (
            mod.__name__, fn.__name__, type(err).__name__, err)
        return out
    if not isinstance(got, dict):
        out["status"] = "missing: %s.%s() returned %r, not a dict" % (mod.__name__, fn.__name__,
                                                                       type(got).__name__)
        return out
    out.update(got)
    out["status"] = "ok" if isinstance(out.get("us_per_tick_micropython"), (int, float)) else (
        "incomplete: no us_per_tick_micropython in %s.%s()" % (mod.__name__, fn.__name__))
    us = out.get("us_per_tick_micropython")
    if isinstance(us, (int, float)):
        # Unix-port time (a PC) plus the bus time the real board adds per tick.
        out["tick_plus_i2c_us"] = us + out["i2c_read_us_400khz"]
        out["i2c_share_of_tick_plus_i2c"] = out["i2c_read_us_400khz"] / (
            us + out["i2c_read_us_400khz"])
    return out


# --- the run -----------------------------------------------------------------

FULL = {"moves": 300, "releases": 48, "sim_s": sim_speed.SESSION_S, "stream_scale": None}
QUICK = {"moves": 6, "releases": 3, "sim_s": 20.0, "stream_scale": 12.0}


def _quick_streams(streams, seconds):
    return tuple(S.shortened(s, seconds) for s in streams)


def _quick_release_cases(n):
    """Short cases for --quick: low targets, short holds, quick rocking."""
    cases = release_bench.random_cases(n, seed=5)
    for c in cases:
        c["program"].update(target_angle_deg=-30.0, descent_rate_dps=3.0, hold_s=1.0,
                            rock_amplitude_deg=2.0, rock_period_s=8.0, rock_cycles=1)
        c["delay_s"] = 0.5
    return cases


DEFAULT_OUT = os.path.join("build", "bench.json")


def run_all(quick=False, jobs=2, out_path=DEFAULT_OUT, log=print):
    cfg = QUICK if quick else FULL
    started = time.perf_counter()
    result = {"meta": {
        "quick": quick,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "jobs": jobs,
        "peers": _peer_versions(),
    }}
    timings = {}

    # Simulator speed first, alone, so nothing else competes for the CPU.
    t0 = time.perf_counter()
    log("sim: %.0f s session ..." % cfg["sim_s"])
    result["sim"] = sim_speed.run(cfg["sim_s"])
    timings["sim"] = time.perf_counter() - t0

    pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else None
    pool_map = pool.map if pool is not None else map
    try:
        t0 = time.perf_counter()
        log("estimator ...")
        if quick:
            sec = cfg["stream_scale"]
            result["estimator"] = estimator_bench.run(
                pool_map, _quick_streams(S.TEST_STREAMS[:2], sec),
                _quick_streams(S.CALIBRATION_STREAMS, sec),
                _quick_streams(S.POWERUP_STREAMS[:1], sec), grid=estimator_bench.QUICK_GRID)
        else:
            result["estimator"] = estimator_bench.run(pool_map)
        timings["estimator"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        log("motion: %d moves ..." % cfg["moves"])
        result["motion"] = motion_bench.run(pool_map, n_moves=cfg["moves"])
        timings["motion"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        log("release: %d cases ..." % cfg["releases"])
        if quick:
            results = list(pool_map(release_bench.release_job,
                                    _quick_release_cases(cfg["releases"])))
            result["release"] = release_bench.summarise(results, seed=5)
        else:
            result["release"] = release_bench.run(pool_map, n_cases=cfg["releases"])
        timings["release"] = time.perf_counter() - t0
    finally:
        if pool is not None:
            pool.shutdown()

    t0 = time.perf_counter()
    log("tick ...")
    result["tick"] = tick_section(quick)
    timings["tick"] = time.perf_counter() - t0

    timings["total"] = time.perf_counter() - started
    result["meta"]["wall_s"] = timings
    if out_path:
        os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True, allow_nan=False, default=_json_default)
    return result


def _json_default(obj):
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "item"):  # numpy scalar
        return obj.item()
    raise TypeError("not JSON serialisable: %r" % (obj,))


def _peer_versions():
    from importlib import metadata

    out = {}
    for dist in ("imufusion", "ahrs", "ruckig", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


# --- the table ---------------------------------------------------------------

def _fmt(value, digits=3):
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return ("%%.%dg" % digits) % value if abs(value) >= 1000 else ("%%.%df" % digits) % value
    return str(value)


def _settle(e, kind):
    if e.get(kind + "_rms_deg") is None:
        return "n/a"
    value = e.get(kind + "_settle_s_max")
    return "never (in 20 s)" if value is None else _fmt(value, 2)


def _goal(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "NOT met"


def markdown(result):
    e = result["estimator"]
    m = result["motion"]
    s = result["sim"]
    t = result["tick"]
    r = result["release"]
    rows = [
        ("Estimator RMS error (deg)", "ours %s" % _fmt(e["ours_rms_deg"]),
         "Fusion %s, Mahony %s, Madgwick %s" % (_fmt(e["fusion_rms_deg"]),
                                                _fmt(e["mahony_rms_deg"]),
                                                _fmt(e["madgwick_rms_deg"])),
         "no worse than Fusion: %s" % _goal(e["goal_rms_no_worse_than_fusion"])),
        ("Estimator max error (deg)", "ours %s" % _fmt(e["ours_max_deg"]),
         "Fusion %s, Mahony %s, Madgwick %s" % (_fmt(e["fusion_max_deg"]),
                                                _fmt(e["mahony_max_deg"]),
                                                _fmt(e["madgwick_max_deg"])),
         "< 1 deg: %s" % _goal(e["goal_max_under_1deg"])),
        ("Settling after power-up (s, |err| < 0.5 for good, worst stream)",
         "ours %s" % _settle(e, "ours"),
         "Fusion %s, Mahony %s, Madgwick %s" % (_settle(e, "fusion"), _settle(e, "mahony"),
                                                _settle(e, "madgwick")), ""),
        ("Fusion out of the box: gain 0.5, Bias module, rejection 10 deg (RMS / max deg)", "",
         "%s / %s" % (_fmt(e.get("fusion_default_rms_deg")),
                      _fmt(e.get("fusion_default_max_deg"))), ""),
        ("Accel-bias floor, any filter (max deg)", _fmt(e["accel_bias_floor_max_deg"]), "", ""),
        ("Move time / Ruckig (median, max)",
         "%s, %s" % (_fmt(m["time_ratio_vs_ruckig_median"], 4),
                     _fmt(m["time_ratio_vs_ruckig_max"], 4)),
         "Ruckig 1.0", "median <= 1.05: %s" % _goal(
             None if m["time_ratio_vs_ruckig_median"] is None
             else m["time_ratio_vs_ruckig_median"] <= 1.05)),
        ("Planner limit violations", _fmt(m["limit_violations"]),
         "%s" % (m.get("violations_by_kind") or ""),
         "0: %s" % _goal(None if m["limit_violations"] is None
                         else m["limit_violations"] == 0)),
        ("Simulator speed (sim s / wall s, 30 min)", _fmt(s["realtime_factor"], 1),
         "per CPU s: %s; %s us per tick on CPython" % (_fmt(s["realtime_factor_cpu"], 1),
                                                       _fmt(s["cpython_us_per_tick"], 1)), ""),
        ("Control tick, MicroPython unix port (us)", _fmt(t["us_per_tick_micropython"], 1),
         "IMU burst on 400 kHz I2C: %s us (%s bits)" % (_fmt(t["i2c_read_us_400khz"], 0),
                                                        t["i2c_burst_bits"]),
         t.get("status", "")),
        ("Tick heap bytes / .mpy bytes", "%s / %s" % (_fmt(t["bytes_per_tick"]),
                                                       _fmt(t["mpy_bytes"])), "", ""),
        ("Release latency (ticks, max; 1 = first tick after)", _fmt(r["latency_ticks_max"]),
         "plan decelerates in %s; %s of %s cases > 1 tick" % (
             _fmt(r.get("plan_latency_ticks_max")), r.get("cases_latency_over_1_tick"),
             r["cases"]),
         "<= 1 tick: %s" % _goal(r["goal_latency_le_1_tick"])),
        ("Release overtravel (deg, max)", _fmt(r["overshoot_deg_max"]),
         "%d cases" % r["cases"], "<= 1 deg: %s" % _goal(r["goal_overshoot_le_1_deg"])),
    ]
    lines = []
    if result["meta"].get("quick"):
        lines += ["**--quick run: tiny inputs to exercise the machinery; the numbers mean "
                  "nothing.**", ""]
    lines += ["| measure | ours | peers / reference | goal |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % row for row in rows]
    lines.append("")
    lines.append("Estimator per stream (RMS / max deg):")
    lines.append("")
    kinds = [k for k in ("ours", "fusion", "mahony", "madgwick") if e.get(k + "_rms_deg")
             is not None]
    lines.append("| stream | " + " | ".join(kinds) + " | accel-bias floor |")
    lines.append("|---|" + "---|" * (len(kinds) + 1))
    for name, st in e["streams"].items():
        cells = ["%s / %s" % (_fmt(st[k]["rms_deg"]), _fmt(st[k]["max_deg"])) for k in kinds]
        lines.append("| %s | %s | %s / %s |" % (
            name, " | ".join(cells), _fmt(st["accel_bias_floor_rms_deg"]),
            _fmt(st["accel_bias_floor_max_deg"])))
    chosen = e["tuning"]["chosen"]
    lines.append("")
    lines.append("Peer tuning (chosen on the calibration streams): %s" % json.dumps(chosen))
    lines.append("Wall time per section (s): %s" % ", ".join(
        "%s %.1f" % kv for kv in result["meta"]["wall_s"].items()))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT,
                    help="JSON results (default build/bench.json)")
    ap.add_argument("--quick", action="store_true", help="tiny inputs: seconds, not minutes")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes (default 2)")
    args = ap.parse_args(argv)
    result = run_all(quick=args.quick, jobs=args.jobs, out_path=args.out,
                     log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(markdown(result))
    print("\nwrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
