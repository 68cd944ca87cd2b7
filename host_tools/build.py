"""Compile the firmware and the board files to .mpy, laid out as they go onto a board.

    python -m host_tools.build [--out DIR] [-v] [--mpy-cross PATH]
    make build [V=1]

DIR (default build/device) is a copy of the board's filesystem root:

    firmware/__init__.mpy, firmware/*.mpy, firmware/drivers/*.mpy
    boards/*.mpy        every board file (only the one for the board is needed)
    main.py, boot.py    copied as source, if the repository has them at its
                        root: MicroPython runs only these two, by name

mpy-cross options: plain bytecode, no -march. The firmware has no
@micropython.native/viper code, so one .mpy runs on every port of the same
MicroPython version (RP2040, ESP32, and the unix port the tests use); -march
would only tag the files with one architecture. -msmall-int-bits=31 (the
32-bit boards' small int; mpy-cross's default, stated so it cannot drift).
-O3: no source line numbers in the bytecode (the firmware has no asserts to
lose). A traceback on the board still names the file and the function, not
the line. The line tables cost about 1.2 KB of RAM with the safety layer
resident, and the SITL's small-heap test (a full session in -X heapsize=64K
on the 64-bit unix port, the same .mpy bytes as the board) needs it. To get
line numbers while debugging on a bench, compile without -O3 by hand.

The build fails (exit 1) and names the file when
- mpy-cross rejects it (syntax MicroPython does not have, e.g. `match`);
- a firmware module imports a hardware or clock module (machine, time, ...):
  the peripherals and the clock are handed in by boards/ or sim/;
- any module imports a CPython-only module (dataclasses, typing, ...).
A failed build leaves DIR as it was. Standard library only.
"""

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "build", "device")
MPY_CROSS_FLAGS = ("-msmall-int-bits=31", "-O3")
# Packages compiled to .mpy; boards/ is a namespace package (no __init__).
PACKAGES = ("firmware", "boards")
# Kept as source at the device root (the names MicroPython runs at boot).
ROOT_SCRIPTS = ("boot.py", "main.py")
# Modules the firmware must not import: the board or the simulator hands
# these in (peripherals, the clock).
FIRMWARE_FORBIDDEN = ("machine", "umachine", "pyb", "rp2", "esp", "esp32", "time", "utime")
# CPython modules that MicroPython does not have.
CPYTHON_ONLY = ("abc", "dataclasses", "enum", "functools", "typing", "typing_extensions")


class BuildError(Exception):
    """The build failed; `problems` lists one message per file."""

    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def find_mpy_cross(explicit=None):
    """The mpy-cross to run: explicit, $MPY_CROSS, next to this Python, or on PATH."""
    candidates = [explicit, os.environ.get("MPY_CROSS")]
    candidates.append(os.path.join(os.path.dirname(sys.executable), "mpy-cross"))
    candidates.append(shutil.which("mpy-cross"))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise BuildError(
        ["mpy-cross not found: run `make venv` (it installs the pinned mpy-cross from "
         "requirements-dev.txt), set MPY_CROSS, or pass --mpy-cross PATH"]
    )


def source_files(root=ROOT):
    """Paths (relative, '/'-separated) of every file that goes onto the board."""
    found = []
    for package in PACKAGES:
        top = os.path.join(root, package)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
            found.extend(rel_dir + "/" + name for name in sorted(filenames) if name.endswith(".py"))
    found.extend(name for name in ROOT_SCRIPTS if os.path.isfile(os.path.join(root, name)))
    return found


def import_problems(rel, text):
    """Messages for imports the file may not make (see the module docstring)."""
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError as exc:  # mpy-cross has accepted it: CPython-incompatible
        return ["%s:%s: not parseable by CPython: %s" % (rel, exc.lineno, exc.msg)]
    in_firmware = rel.startswith("firmware/")
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in CPYTHON_ONLY:
                problems.append(
                    "%s:%d: imports %s, which MicroPython does not have" % (rel, node.lineno, top)
                )
            elif in_firmware and top in FIRMWARE_FORBIDDEN:
                problems.append(
                    "%s:%d: imports %s; firmware/ gets peripherals and the clock from the "
                    "board object (boards/ or sim/), never imports them" % (rel, node.lineno, top)
                )
    return problems


def compile_one(mpy_cross, root, rel, out_path, extra_flags=()):
    """Run mpy-cross on one file; returns a problem message or None."""
    # Relative input with cwd=root: errors and tracebacks name "firmware/x.py".
    cmd = [mpy_cross, *MPY_CROSS_FLAGS, *extra_flags, "-o", out_path, rel]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not os.path.isfile(out_path):
        output = (proc.stdout + proc.stderr).strip() or "exit status %d" % proc.returncode
        return "%s: mpy-cross rejected it:\n    %s" % (rel, output.replace("\n", "\n    "))
    return None


def _replace_contents(staging, out_dir, names):
    """Swap out_dir's build entries for the staged ones, refusing foreign files."""
    if os.path.isdir(out_dir):
        ours = set(PACKAGES) | set(ROOT_SCRIPTS)
        foreign = sorted(set(os.listdir(out_dir)) - ours)
        if foreign:
            raise BuildError(
                ["%s holds files the build did not make (%s): refusing to replace it; "
                 "choose an empty or new --out" % (out_dir, ", ".join(foreign))]
            )
        for name in ours:
            path = os.path.join(out_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    else:
        os.makedirs(out_dir)
    for name in names:
        os.replace(os.path.join(staging, name), os.path.join(out_dir, name))


def build(out_dir=DEFAULT_OUT, root=ROOT, mpy_cross=None):
    """Compile everything into out_dir; returns [(src, dest, size_bytes)] in build order.

    `src` is relative to root, `dest` is the absolute path of the .mpy (or of
    the copied main.py/boot.py). Raises BuildError naming every bad file.
    """
    root = os.path.abspath(root)
    out_dir = os.path.abspath(out_dir)
    mpy_cross = find_mpy_cross(mpy_cross)
    rels = source_files(root)
    if not any(rel.startswith("firmware/") for rel in rels):
        raise BuildError(["%s: no firmware/*.py to build" % root])
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".device-", dir=parent)
    try:
        problems = []
        staged = []
        for rel in rels:
            src = os.path.join(root, rel)
            with open(src, encoding="utf-8") as f:
                text = f.read()
            if rel in ROOT_SCRIPTS:
                dest_rel = rel
                shutil.copyfile(src, os.path.join(staging, dest_rel))
                problem = compile_one(mpy_cross, root, rel, os.path.join(staging, ".check.mpy"))
            else:
                dest_rel = rel[:-3] + ".mpy"
                os.makedirs(os.path.dirname(os.path.join(staging, dest_rel)), exist_ok=True)
                problem = compile_one(mpy_cross, root, rel, os.path.join(staging, dest_rel))
            if problem:
                problems.append(problem)
                continue
            problems.extend(import_problems(rel, text))
            staged.append((rel, dest_rel))
        if problems:
            raise BuildError(problems)
        check = os.path.join(staging, ".check.mpy")
        if os.path.exists(check):
            os.remove(check)
        top_names = sorted({dest_rel.split("/")[0] for _, dest_rel in staged})
        _replace_contents(staging, out_dir, top_names)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    results = []
    for rel, dest_rel in staged:
        dest = os.path.join(out_dir, *dest_rel.split("/"))
        results.append((rel, dest, os.path.getsize(dest)))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m host_tools.build",
        description="Compile firmware/ and boards/ to .mpy in the layout of a board's filesystem.",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default build/device)")
    parser.add_argument("--mpy-cross", help="mpy-cross executable (default: the venv's)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every file's size")
    parser.add_argument("--root", default=ROOT, help=argparse.SUPPRESS)  # tests: another tree
    args = parser.parse_args(argv)
    try:
        results = build(args.out, root=args.root, mpy_cross=args.mpy_cross)
    except BuildError as exc:
        print("build failed:", file=sys.stderr)
        for problem in exc.problems:
            print("  " + problem, file=sys.stderr)
        return 1
    out = os.path.relpath(os.path.abspath(args.out))
    mpy = [(src, dest, size) for src, dest, size in results if dest.endswith(".mpy")]
    if args.verbose:
        for _, dest, size in results:
            print("%8d  %s" % (size, os.path.relpath(dest)))
    by_package = {}
    for src, _, size in mpy:
        package = src.split("/")[0]
        by_package[package] = by_package.get(package, 0) + size
    detail = ", ".join("%s %d" % item for item in sorted(by_package.items()))
    print("%s: %d .mpy files, %d bytes (%s)" % (out, len(mpy), sum(s for _, _, s in mpy), detail))
    scripts = [os.path.basename(dest) for _, dest, _ in results if not dest.endswith(".mpy")]
    if scripts:
        print("%s: kept as source: %s" % (out, ", ".join(scripts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
