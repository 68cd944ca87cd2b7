"""Command line: python -m sim run SCENARIO.toml --trace OUT.csv [--plot OUT.png]

`--runtime micropython` runs the firmware in the MicroPython unix port instead
of CPython (sim/micropython_runtime.py); the trace is the same.

Exit status: 0 the run completed and every safety check passed, 1 a safety
check failed (the violations are printed), 2 the scenario or the command line
is bad (a message names what is wrong; no traceback), or asks for what the
runtime cannot do: a scenario with a [profile] section runs on CPython only
(the MicroPython runtime's controller has no set_program).
"""

import argparse
import sys

from sim import checks
from sim.scenario import ScenarioError, load


def _run(args):
    from sim.micropython_runtime import MicroPythonUnavailable
    from sim.runner import Run, write_csv

    try:
        scenario = load(args.scenario)
    except ScenarioError as err:
        print("error: %s" % err, file=sys.stderr)
        return 2
    if args.runtime == "micropython":
        if scenario.profile is not None:
            print("error: %s: a [profile] scenario cannot run with --runtime micropython: "
                  "the therapy profile hands the controller a program after every session "
                  "(Controller.set_program), and the MicroPython runtime's remote controller "
                  "has no set_program; run it with --runtime cpython (the default), or drop "
                  "[profile]" % args.scenario, file=sys.stderr)
            return 2
        from sim.micropython_runtime import MicroPythonRun

        make_run = MicroPythonRun
    else:
        make_run = Run
    try:
        run = make_run(scenario)
    except ScenarioError as err:  # e.g. a program the duty budget never covers
        print("error: %s: %s" % (args.scenario, err), file=sys.stderr)
        return 2
    except MicroPythonUnavailable as err:
        print("error: %s" % err, file=sys.stderr)
        return 2
    trace = run.run()
    write_csv(trace, args.trace)
    print("trace: %s (%d rows)" % (args.trace, len(trace)))
    if args.plot:
        from sim.plot import plot_trace

        plot_trace(trace, args.plot, title=str(args.scenario))
        print("plot:  %s" % args.plot)
    angles = trace["angle_deg"]
    print(
        "max angle %.2f deg, max |rate| %.2f deg/s, final state %s, faults: %s"
        % (max(angles), max(abs(r) for r in trace["rate_dps"]), trace["state"][-1],
           ", ".join(sorted({f for f in trace["fault"] if f})) or "none")
    )
    violations = checks.all_violations(
        trace, home_deg=run.table.home_mdeg / 1000.0,
        emergency_rate_dps=run.limits.emergency_rate_mdps / 1000.0,
    )
    for v in violations:
        print("VIOLATION: %s" % v)
    if violations:
        return 1
    print("limits: all safety checks passed")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run a scenario file and write its trace")
    run_p.add_argument("scenario", help="scenario .toml file")
    run_p.add_argument("--trace", required=True, help="output CSV, one row per control tick")
    run_p.add_argument("--plot", help="output PNG: angle, rate, state and button against time")
    run_p.add_argument("--runtime", default="cpython", choices=("cpython", "micropython"),
                       help="interpreter running the firmware (default: cpython)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
