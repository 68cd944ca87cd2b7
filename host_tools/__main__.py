"""`python -m host_tools COMMAND ...`: the host tools' command line.

Each command lives in its own module with `add_arguments(parser)` and
`run(args) -> exit status`; add a command by adding it to COMMANDS.
"""

import argparse
import sys

from host_tools import deploy, virtual_board
from host_tools import logs, monitor
from host_tools import config_cmd, profile_cmd, sim_cmd

# name -> (module, one-line help)
COMMANDS = {
    "deploy": (deploy, "compile the firmware and copy what changed to a board, verified"),
    "virtual-board": (virtual_board, "run the MicroPython unix port as a board mpremote can reach"),
    "logs": (logs, "session logs: pull them from a board, plot them (PNG)"),
    "monitor": (monitor, "live telemetry from the board's serial console"),
    "config": (config_cmd, "check config.json, show the board's, push one to the board"),
    "profile": (profile_cmd, "the user's therapy profile: new (clearance questions), check, push"),
    "sim": (sim_cmd, "the simulator: python -m sim ..."),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m host_tools", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    module, _ = COMMANDS[args.command]
    return module.run(args)


if __name__ == "__main__":
    sys.exit(main())
