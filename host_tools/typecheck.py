"""Type-check firmware/ and boards/ against MicroPython's own stubs, one port at a time.

    python -m host_tools.typecheck [--stubs DIR] [PORT ...]
    make typecheck

Ports and what each checks:

    rp2    firmware/ + boards/rpi_pico*.py   micropython-rp2-rpi-pico-stubs
    esp32  firmware/ + boards/esp32*.py      micropython-esp32-stubs

Board helpers (boards/_*.py) go with every port, and so do the root
main.py/boot.py (with a board.py like the one the deploy tool writes, so
`import board` resolves to the port's board).

The two stub packages conflict, so `make` installs each (pinned, with
micropython-stdlib-stubs) into its own folder, build/stubs/<port>. The
checker is pyright (pinned in requirements-dev.txt; it runs on the machine's
Node.js). The stub folder is pyright's typeshed: builtins, array, math,
time, machine and micropython are MicroPython's, so a method or argument the
port does not have is an error. The host Python is hidden from pyright (its
interpreter path points nowhere), so nothing resolves to CPython's standard
library or site-packages: importing a module the port lacks (dataclasses,
functools, ...) is an error too. Every board file must belong to a port.

Exit status 0 only with no errors and no warnings on every port. Standard
library only; the config pyright reads is written to build/typecheck/<port>/.
"""

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_STUBS = os.path.join(ROOT, "build", "stubs")
CONFIG_DIR = os.path.join(ROOT, "build", "typecheck")
ROOT_SCRIPTS = ("boot.py", "main.py")
# port -> the board files (glob in boards/) checked with that port's stubs
PORTS = {
    "rp2": ("rpi_pico*.py",),
    "esp32": ("esp32*.py",),
}
SETTINGS = {
    "pythonVersion": "3.11",
    "pythonPlatform": "Linux",
    "typeCheckingMode": "standard",
    # The stubs have no module source (they describe C modules): not an error.
    "reportMissingModuleSource": "none",
}


class TypecheckError(Exception):
    pass


def board_files(root=ROOT):
    """{port: [boards/x.py, ...]}; raises if a board file belongs to no port.

    Helpers (names starting with an underscore) are checked with every port.
    """
    names = sorted(n for n in os.listdir(os.path.join(root, "boards")) if n.endswith(".py"))
    ports = {port: [] for port in PORTS}
    orphans = []
    for name in names:
        owners = [port for port, globs in PORTS.items()
                  if name.startswith("_") or any(fnmatch.fnmatch(name, g) for g in globs)]
        for port in owners:
            ports[port].append("boards/" + name)
        if not owners:
            orphans.append("boards/" + name)
    # The device's entry points run on every board: checked with every port
    # that has one (they import it through the deploy tool's board.py).
    for name in ROOT_SCRIPTS:
        if os.path.isfile(os.path.join(root, name)):
            for files in ports.values():
                if _boards(files):
                    files.append(name)
    if orphans:
        raise TypecheckError(
            "%s: no port to type-check against; add its name pattern to PORTS in "
            "host_tools/typecheck.py" % ", ".join(orphans)
        )
    return ports


def _boards(files):
    return [f for f in files if f.startswith("boards/") and not f.startswith("boards/_")]


def write_config(port, stubs_dir, files, root=ROOT, config_root=CONFIG_DIR):
    """Write build/typecheck/<port>/pyrightconfig.json; returns its path.

    pyright takes config paths relative to the config file only. With a root
    script among `files`, a board.py like the one the deploy tool writes to
    the device (`from boards.<name> import *`) is put in shim/ for it.
    """
    cfg_dir = os.path.join(config_root, port)
    shim_dir = os.path.join(cfg_dir, "shim")
    os.makedirs(shim_dir, exist_ok=True)
    boards = _boards(files)
    shim = os.path.join(shim_dir, "board.py")
    if boards and any(f in ROOT_SCRIPTS for f in files):
        name = boards[0][len("boards/"):-len(".py")]
        with open(shim, "w", encoding="utf-8") as f:
            f.write("from boards.%s import *  # noqa: F403\nNAME = %r\n" % (name, name))
    elif os.path.exists(shim):
        os.remove(shim)

    def rel(path):
        return os.path.relpath(path, cfg_dir).replace(os.sep, "/")

    config = {
        "include": [rel(os.path.join(root, f)) for f in ["firmware", *files]],
        "exclude": ["**/__pycache__"],
        "extraPaths": [rel(root), rel(shim_dir)],
        "stubPath": rel(stubs_dir),
        "typeshedPath": rel(stubs_dir),
        **SETTINGS,
    }
    path = os.path.join(cfg_dir, "pyrightconfig.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return path


def check_port(port, stubs_root=DEFAULT_STUBS, root=ROOT, files=None, config_root=CONFIG_DIR):
    """Run pyright for one port: returns (diagnostics, files_checked, seconds).

    `files`: the board files and root scripts to check with the firmware
    (default: the port's, from board_files).
    """
    stubs_dir = os.path.join(stubs_root, port)
    if not os.path.isfile(os.path.join(stubs_dir, "stdlib", "builtins.pyi")):
        raise TypecheckError(
            "%s: no MicroPython stubs for %s; `make typecheck` installs the pinned ones"
            % (stubs_dir, port)
        )
    if shutil.which("node") is None:
        raise TypecheckError(
            "pyright needs Node.js (`node` on PATH); install it from the system's packages"
        )
    if files is None:
        files = board_files(root)[port]
    config = write_config(port, stubs_dir, files, root=root, config_root=config_root)
    # An interpreter path that does not exist: pyright then searches no
    # CPython library, only the stubs and the repository.
    no_python = os.path.join(os.path.dirname(config), "no-python")
    env = dict(os.environ, PYRIGHT_PYTHON_IGNORE_WARNINGS="1")
    cmd = [sys.executable, "-m", "pyright", "--outputjson", "-p", config, "--pythonpath", no_python]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - start
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise TypecheckError(
            "pyright (%s) failed:\n%s%s" % (port, proc.stdout, proc.stderr)
        ) from None
    summary = report.get("summary", {})
    return report.get("generalDiagnostics", []), summary.get("filesAnalyzed", 0), seconds


def _format(diag, root):
    path = os.path.relpath(diag.get("file", "?"), root)
    start = diag.get("range", {}).get("start", {})
    rule = diag.get("rule")
    return "%s:%d:%d - %s: %s%s" % (
        path, start.get("line", 0) + 1, start.get("character", 0) + 1, diag.get("severity"),
        diag.get("message", "").replace("\n", "\n    "), " (%s)" % rule if rule else "",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m host_tools.typecheck",
        description="Type-check firmware/ and boards/ against each port's MicroPython stubs.",
    )
    parser.add_argument("ports", nargs="*", metavar="PORT", help="rp2, esp32 (default: all)")
    parser.add_argument("--stubs", default=DEFAULT_STUBS,
                        help="folder holding one stub folder per port (default build/stubs)")
    args = parser.parse_args(argv)
    unknown = [p for p in args.ports if p not in PORTS]
    if unknown:
        parser.error("unknown port %s (known: %s)" % (", ".join(unknown), ", ".join(PORTS)))
    failed = False
    try:
        boards = board_files()
        ports = args.ports or list(PORTS)
        # One pyright per port, side by side (each is single-threaded).
        with ThreadPoolExecutor(max_workers=len(ports)) as pool:
            runs = [pool.submit(check_port, port, args.stubs, files=boards[port])
                    for port in ports]
            results = [run.result() for run in runs]
        for port, (diags, analyzed, seconds) in zip(ports, results, strict=True):
            shown = [d for d in diags if d.get("severity") in ("error", "warning")]
            for diag in shown:
                print(_format(diag, ROOT))
            errors = sum(1 for d in shown if d.get("severity") == "error")
            print("typecheck %s: %d errors, %d warnings in %d files (firmware/%s), %.1f s" % (
                port, errors, len(shown) - errors, analyzed,
                "".join(" + " + f for f in boards[port]), seconds))
            failed = failed or bool(shown)
    except TypecheckError as exc:
        print("typecheck: %s" % exc, file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
