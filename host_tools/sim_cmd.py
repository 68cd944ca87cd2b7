"""`python -m host_tools sim ...`: a shortcut to the simulator (`python -m sim ...`).

    python -m host_tools sim run SCENARIO.toml --trace OUT.csv [--plot OUT.png]

Everything after `sim` goes to sim/__main__.py unchanged, and its exit status
comes back (0 ran and every safety check passed, 1 a check failed, 2 a bad
scenario or command line).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sim_args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="arguments for `python -m sim` (run SCENARIO.toml --trace OUT.csv)")


def run(args: argparse.Namespace) -> int:
    from sim.__main__ import main as sim_main

    try:
        return sim_main(args.sim_args)
    except SystemExit as e:  # argparse in the simulator: usage errors exit 2, --help 0
        return e.code if isinstance(e.code, int) else 2
