"""Soak run: many simulated sessions, each with one random fault, every one checked.

    python -m sim.soak --sessions N --seed S [--jobs J] [--out build/soak.json]
    python -m sim.soak --only K --seed S      # session K of that run, alone

Each session: a random user (40-150 kg, 1.45-2.00 m), a random short program
(the ranges of the fault property tests), one fault from the whole catalogue
(sim/faults.py) injected at a random fraction of the session, a random
simulator seed. About 1 in 5 sessions runs on a board without the position
pot (except the pot-slip fault, which needs a pot), about 1 in 10 has no
fault at all (the control group, checked against the ordinary limits).

The sessions are the fault property tests' own (tests/
test_fault_injection_properties.py: the same scenario builder) and are
checked by the same functions (sim/checks.py): a "return" fault ends HOME
within its bound, a "stop" fault is stopped within the bound with the fault
reported, a "ride" fault keeps every limit and ends HOME; always the angle
cap, the rate cap (with checks.py's exemption while a STOP fault is being
stopped), every other limit of checks.all_violations, and at most 1 deg
further head-down after a return or stop fault. On a board without the pot
an IMU lost is brought home open loop to the end switch, slow and with a
timeout: checked as the property test for that case does (every limit, at
most 1 deg further head-down, ends HOME or SAFE_STOP blind_return_timeout).

Everything a session draws comes from random.Random seeded with the master
seed and the session index, so a run does not depend on --jobs and any
session can be re-run alone (--only). Every violation is printed with its
reproduction line, and its scenario is written as TOML next to --out
(soak-failures/session-K.toml, for `python -m sim run`).

Exit status: 0 when every requested session ran and none broke a check,
1 otherwise, 2 for a bad command line.
"""

import argparse
import functools
import json
import multiprocessing
import os
import random
import sys
import time

from firmware.config import Program
from sim import checks, faults
from sim.board import SimBoard
from sim.plant import User
from sim.runner import Run
from tests.session_strategies import HOME_DEG, runnable
from tests.test_fault_injection_properties import fault_scenario

FAULTS = tuple(sorted(faults.CATALOGUE))
CONTROL = "(no fault)"  # the control group's row in the report
CONTROL_FRACTION = 0.1
NO_POT_FRACTION = 0.2
# Faults that need a position pot to mean anything (the pot slips).
NEEDS_POT = ("position_sensor_disagree",)
# IMU lost: with no pot the way home is the blind return to the end switch
# (no time bound, may end in SAFE_STOP blind_return_timeout).
BLIND_RETURN_FAULTS = ("imu_freeze", "imu_disconnect", "imu_implausible")
DEFAULT_OUT = os.path.join("build", "soak.json")
# A STOP fault's session ends once the table has been in SAFE_STOP (which
# nothing leaves) this long after the fault, or at the end of the property
# tests' timeline, whichever is first: checks.rate_never_past_cap costs time
# quadratic in the rows after a STOP fault (tens of seconds for the whole
# timeline, which waits for the slowest way home). Not a fixed time after the
# fault: a dead drive at low duty is reported only a minute or two later.
STOP_TAIL_S = 20.0


def session_params(seed, index):
    """Everything session `index` of the run with master `seed` is made of.

    Faults are dealt in blocks of len(FAULTS) sessions, each block a shuffle
    of the catalogue: uniform, and every fault appears once the run is a few
    blocks long. A control session skips its block's fault."""
    rng = random.Random("sim.soak/%d/%d" % (seed, index))
    block, slot = divmod(index, len(FAULTS))
    order = list(FAULTS)
    random.Random("sim.soak/%d/block/%d" % (seed, block)).shuffle(order)
    control = rng.random() < CONTROL_FRACTION
    position_pot = rng.random() >= NO_POT_FRACTION
    fault = None if control else order[slot]
    if fault in NEEDS_POT:
        position_pot = True
    program = _draw_program(rng)
    return {
        "index": index,
        "seed": seed,
        "fault": fault,
        "position_pot": position_pot,
        "mass_kg": rng.uniform(40.0, 150.0),
        "height_m": rng.uniform(1.45, 2.00),
        "program": program,
        "frac": rng.random(),
        "sim_seed": rng.randint(0, 10_000),
    }


def _draw_program(rng):
    """A random program the firmware runs: drawn again while the actuator's
    duty budget could never cover its session (the firmware refuses those
    outright, sim.runner.program_refusal; they would test nothing)."""
    while True:
        program = _program_draw(rng)
        if runnable(program):
            return program


def _program_draw(rng):
    return {
        "target_angle_deg": rng.uniform(-20.0, 90.0),
        "hold_s": rng.uniform(0.0, 6.0),
        "rock_amplitude_deg": rng.choice([0.0, 3.0, 8.0]),
        "rock_period_s": rng.uniform(8.0, 12.0),
        "rock_cycles": rng.randint(1, 2),
        "rest_s": rng.uniform(0.0, 4.0),
        "descent_rate_dps": rng.uniform(0.8, 3.0),
        "return_rate_dps": rng.uniform(1.0, 6.0),
    }


def build_scenario(params):
    """(Scenario, fault time s). The control group's scenario is the same
    timeline with the fault event left out."""
    user = User(params["mass_kg"], params["height_m"])
    fault = params["fault"] or FAULTS[0]
    scenario, at_s = fault_scenario(fault, user, params["program"], params["frac"],
                                    params["sim_seed"])
    if params["fault"] is None:
        scenario.events = [e for e in scenario.events if e.fault is None]
        scenario.name = "control"
    return scenario, at_s


def simulate(params):
    """Run the session; (Run, Trace, fault time s)."""
    scenario, at_s = build_scenario(params)
    board = SimBoard(scenario.user, seed=params["sim_seed"], position_pot=params["position_pot"])
    run = Run(scenario, board=board)
    stop_fault = params["fault"] is not None and faults.kind(params["fault"]) == "stop"
    stopped_ms = None
    while run.t_ms < scenario.duration_ms:
        run.step()
        if stop_fault and run.injected and run.controller.state_name == "SAFE_STOP":
            stopped_ms = run.t_ms if stopped_ms is None else stopped_ms
            if run.t_ms - stopped_ms >= STOP_TAIL_S * 1000:
                break
        else:
            stopped_ms = None
    run.finish_blind_return()
    return run, run.trace, at_s


def check(params, trace, at_s):
    """Every violation of the session's checks (sim/checks.py), as strings."""
    fault = params["fault"]
    problems = checks.all_violations(trace)
    if fault is None:
        if trace["state"][-1] != "HOME":
            problems.append("no fault: ends in %s, not HOME" % trace["state"][-1])
        return problems
    if not params["position_pot"] and fault in BLIND_RETURN_FAULTS:
        # As test_imu_lost_without_a_position_pot_still_ends_home_or_stopped_by_timeout.
        i0 = _fault_row(trace, fault)
        if i0 is not None and max(trace["angle_deg"][i0:]) - trace["angle_deg"][i0 - 1] > 1.0:
            problems.append("more than 1 deg further head-down after %s" % fault)
        end = (trace["state"][-1], trace["fault"][-1])
        if end[0] != "HOME" and end != ("SAFE_STOP", "blind_return_timeout"):
            problems.append("ends in %s with fault %r" % end)
        return problems
    return problems + checks.fault_violations(trace, fault, at_s, HOME_DEG,
                                              params["program"]["return_rate_dps"])


def _fault_row(trace, fault):
    """The first row with the fault injected (or, for a latent fault, the
    first row reporting one after that): checks.fault_violations' reference."""
    injected = trace["injected_fault"]
    i0 = next((i for i, name in enumerate(injected) if name == fault), None)
    if i0 is None or fault not in checks.LATENT_FAULTS:
        return i0
    return next((i for i in range(i0, len(injected)) if trace["fault"][i]), None)


def measure(params, trace):
    """(extra head-down deg after the fault, s from the fault to HOME): the
    first for return and stop faults, the second for return faults; None
    where it does not apply or did not happen."""
    fault = params["fault"]
    if fault is None or faults.kind(fault) == "ride":
        return None, None
    ref = _fault_row(trace, fault)
    if ref is None:
        return None, None
    angle = trace["angle_deg"]
    extra = max(angle[ref:]) - angle[max(ref - 1, 0)]
    if faults.kind(fault) != "return":
        return extra, None
    state = trace["state"]
    t = trace["t_s"]
    home = next((i for i in range(ref, len(state)) if state[i] == "HOME"), None)
    return extra, (None if home is None else t[home] - t[ref])


def run_session(seed, index):
    """Session `index` of the run with master `seed`: a JSON-ready result."""
    params = session_params(seed, index)
    started = time.perf_counter()
    try:
        run, trace, at_s = simulate(params)
        problems = check(params, trace, at_s)
        extra, to_home = measure(params, trace)
        end_state, end_fault = trace["state"][-1], trace["fault"][-1]
        i0 = next((i for i, name in enumerate(trace["injected_fault"]) if name), None)
        state_at_fault = None if i0 is None else trace["state"][max(i0 - 1, 0)]
        sim_s, resets = trace["t_s"][-1], run.firmware_resets
    except Exception as err:  # a crash of the simulator or the firmware is a finding too
        problems = ["simulator error: %r" % err]
        extra = to_home = at_s = None
        end_state, end_fault, sim_s, resets = "ERROR", "", 0.0, 0
        state_at_fault = None
    return {
        "index": index,
        "fault": params["fault"],
        "kind": faults.kind(params["fault"]) if params["fault"] else "control",
        "position_pot": params["position_pot"],
        "at_s": at_s if params["fault"] else None,
        "state_at_fault": state_at_fault,
        "end_state": end_state,
        "end_fault": end_fault,
        "firmware_resets": resets,
        "extra_head_down_deg": extra,
        "time_to_home_s": to_home,
        "sim_s": sim_s,
        "wall_s": time.perf_counter() - started,
        "problems": problems,
    }


def run_sessions(seed, indices, jobs=1, progress=None):
    """Results for the given session indices, in index order."""
    indices = list(indices)
    work = functools.partial(run_session, seed)
    results = []
    if jobs <= 1 or len(indices) <= 1:
        for index in indices:
            results.append(work(index))
            if progress:
                progress(len(results), len(indices))
    else:
        with multiprocessing.Pool(jobs) as pool:
            for result in pool.imap_unordered(work, indices, chunksize=1):
                results.append(result)
                if progress:
                    progress(len(results), len(indices))
    return sorted(results, key=lambda r: r["index"])


def reproduce_line(seed, index):
    return "python -m sim.soak --only %d --seed %d" % (index, seed)


def _worst(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _counts(rows):
    return {
        "sessions": len(rows),
        "no_pot": sum(1 for r in rows if not r["position_pot"]),
        "ended_home": sum(1 for r in rows if r["end_state"] == "HOME"),
        "ended_safe_stop": sum(1 for r in rows if r["end_state"] == "SAFE_STOP"),
        "violations": sum(1 for r in rows if r["problems"]),
        "worst_extra_head_down_deg": _worst(r["extra_head_down_deg"] for r in rows),
        "worst_time_to_home_s": _worst(r["time_to_home_s"] for r in rows),
    }


def build_report(results, seed, requested, jobs, wall_s):
    """The figures of a run (what is printed and written as JSON)."""
    per_fault = {}
    for name in (*FAULTS, CONTROL):
        rows = [r for r in results if (r["fault"] or CONTROL) == name]
        per_fault[name] = dict(_counts(rows),
                               kind=faults.kind(name) if name in faults.CATALOGUE else "control")
    failing = [
        {"index": r["index"], "fault": r["fault"], "position_pot": r["position_pot"],
         "state_at_fault": r.get("state_at_fault"), "problems": r["problems"],
         "reproduce": reproduce_line(seed, r["index"])}
        for r in results if r["problems"]
    ]
    return {
        "seed": seed,
        "sessions_requested": requested,
        "sessions_run": len(results),
        "jobs": jobs,
        "wall_s": wall_s,
        "simulated_s": sum(r["sim_s"] for r in results),
        "per_fault": per_fault,
        "totals": _counts(results),
        "faults_not_exercised": [f for f in FAULTS if not per_fault[f]["sessions"]],
        "violations": failing,
        "sessions": results,
    }


def exit_status(report):
    """0 only with zero violations and at least the requested sessions run."""
    if report["violations"] or report["totals"]["violations"]:
        return 1
    if report["sessions_run"] < report["sessions_requested"]:
        return 1
    return 0


def _fmt(value, spec="%.2f"):
    return "-" if value is None else spec % value


def format_table(report):
    head = ("fault", "kind", "sessions", "no pot", "HOME", "SAFE_STOP", "violations",
            "extra hd deg", "to home s")
    rows = []
    total = ("TOTAL", dict(report["totals"], kind=""))
    for name, c in [*report["per_fault"].items(), total]:
        rows.append((name, c["kind"], str(c["sessions"]), str(c["no_pot"]),
                     str(c["ended_home"]), str(c["ended_safe_stop"]), str(c["violations"]),
                     _fmt(c["worst_extra_head_down_deg"]), _fmt(c["worst_time_to_home_s"], "%.1f")))
    widths = [max(len(r[i]) for r in [*rows, head]) for i in range(len(head))]
    line = "  ".join("%-*s" if i < 2 else "%*s" for i in range(len(head)))

    def fmt(r):
        return line % tuple(x for pair in zip(widths, r, strict=True) for x in pair)

    out = [fmt(head), "  ".join("-" * w for w in widths)]
    out += [fmt(r) for r in rows[:-1]]
    out += ["  ".join("-" * w for w in widths), fmt(rows[-1])]
    return "\n".join(out)


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def scenario_toml(params):
    """The session as a scenario file (sim/scenario.py's format)."""
    scenario, _at_s = build_scenario(params)
    lines = ["# sim.soak session %d, master seed %d: %s"
             % (params["index"], params["seed"], params["fault"] or "no fault"),
             "# reproduce: %s" % reproduce_line(params["seed"], params["index"])]
    if not params["position_pot"]:
        lines.append("# NOTE: this session ran on a board WITHOUT the position pot "
                     "(SimBoard(position_pot=False)),")
        lines.append("# which a scenario file cannot say: `python -m sim run` uses a pot. "
                     "Use the line above.")
    lines += ["duration_s = %s" % _toml_value(scenario.duration_ms / 1000.0),
              "seed = %d" % scenario.seed, "", "[user]",
              "mass_kg = %r" % scenario.user.mass_kg, "height_m = %r" % scenario.user.height_m,
              "", "[program]"]
    lines += ["%s = %s" % (k, _toml_value(v)) for k, v in scenario.program_data.items()]
    for ev in scenario.events:
        key, value = ("button", ev.button) if ev.button else ("fault", ev.fault)
        lines += ["", "[[event]]", "at_s = %r" % (ev.at_ms / 1000.0),
                  "%s = %s" % (key, _toml_value(value))]
    Program(scenario.program_data)  # what we write is a program the firmware accepts
    return "\n".join(lines) + "\n"


def print_violations(report, failures_dir=None, stream=None):
    """One block per failing session: its problems and the reproduction line;
    its scenario written as TOML into failures_dir (if given)."""
    stream = stream or sys.stdout
    for v in report["violations"]:
        where = "pot" if v["position_pot"] else "no pot"
        if v.get("state_at_fault"):
            where += ", injected in %s" % v["state_at_fault"]
        for problem in v["problems"]:
            print("VIOLATION session %d (%s, %s): %s" % (v["index"], v["fault"] or "no fault",
                                                        where, problem), file=stream)
        print("  reproduce: %s" % v["reproduce"], file=stream)
        if failures_dir:
            os.makedirs(failures_dir, exist_ok=True)
            path = os.path.join(failures_dir, "session-%d.toml" % v["index"])
            with open(path, "w") as f:
                f.write(scenario_toml(session_params(report["seed"], v["index"])))
            print("  scenario:  %s" % path, file=stream)


def soak(sessions, seed, jobs=1, only=None, progress=None):
    """Run the sessions (or session `only` alone); the report."""
    indices = [only] if only is not None else range(sessions)
    started = time.perf_counter()
    results = run_sessions(seed, indices, jobs, progress)
    return build_report(results, seed, len(indices), jobs, time.perf_counter() - started)


def _progress_printer(every=50):
    started = time.perf_counter()

    def progress(done, total):
        if done % every == 0 or done == total:
            print("  %d/%d sessions, %.0f s" % (done, total, time.perf_counter() - started),
                  file=sys.stderr, flush=True)
    return progress


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.soak",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000,
                        help="how many sessions (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="master seed (default 1)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: the CPU count)")
    parser.add_argument("--only", type=int, metavar="K",
                        help="run session K of the run alone (reproduce a failure)")
    parser.add_argument("--out", help="report as JSON (default %s; none with --only)"
                        % DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.jobs < 1 or (args.only is not None and args.only < 0):
        parser.error("--sessions and --jobs must be >= 1, --only >= 0")
    out = args.out or (None if args.only is not None else DEFAULT_OUT)

    if args.only is None:
        print("soak: %d sessions, seed %d, %d jobs" % (args.sessions, args.seed, args.jobs),
              file=sys.stderr, flush=True)
    report = soak(args.sessions, args.seed, args.jobs, args.only, _progress_printer())
    if args.only is not None:
        r = report["sessions"][0]
        params = session_params(args.seed, args.only)
        print("session %d (seed %d): fault %s (%s) at %s s in %s, %s, user %.1f kg %.2f m, "
              "simulator seed %d" % (args.only, args.seed, r["fault"] or "none", r["kind"],
                                     _fmt(r["at_s"]), r["state_at_fault"] or "-",
                                     "pot" if r["position_pot"] else "no pot",
                                     params["mass_kg"], params["height_m"],
                                     params["sim_seed"]))
        print("program: %s" % ", ".join("%s=%.6g" % kv for kv in params["program"].items()))
        print("ends %s (fault %r), %d firmware resets, extra head-down %s deg, "
              "to home %s s, %.1f s simulated"
              % (r["end_state"], r["end_fault"], r["firmware_resets"],
                 _fmt(r["extra_head_down_deg"]), _fmt(r["time_to_home_s"], "%.1f"), r["sim_s"]))
    print(format_table(report))
    print("%d sessions (%d requested), %d violations; %.0f s simulated in %.1f s wall, "
          "%d jobs" % (report["sessions_run"], report["sessions_requested"],
                       report["totals"]["violations"], report["simulated_s"],
                       report["wall_s"], report["jobs"]))
    if report["faults_not_exercised"] and args.only is None:
        print("faults not exercised: %s" % ", ".join(report["faults_not_exercised"]))
    failures_dir = os.path.join(os.path.dirname(out or DEFAULT_OUT), "soak-failures")
    print_violations(report, failures_dir)
    if out:
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        with open(out, "w") as f:
            json.dump(report, f, indent=1)
        print("report: %s" % out)
    status = exit_status(report)
    print("soak: %s" % ("PASS" if status == 0 else "FAIL"))
    return status


if __name__ == "__main__":
    sys.exit(main())
