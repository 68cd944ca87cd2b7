"""The firmware compiles with mpy-cross and the built .mpy files run on MicroPython.

`make build` (host_tools/build.py) is what goes onto a board: these tests
build into a temporary folder, import every firmware module from the .mpy
files on the unix port of MicroPython (the same version as mpy-cross), and
check that syntax MicroPython rejects, or a forbidden import, fails the
build and names the file.
"""

import os
import shutil
import subprocess
import sys

import pytest

from host_tools import build as B

ROOT = B.ROOT
MPY_MAGIC = b"M\x06"  # .mpy format version 6 (MicroPython 1.22 and later)


def _micropython():
    path = os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.isfile(path):
        path = shutil.which("micropython")
    assert path, "the unix port `micropython` is missing: `make venv` installs it"
    return path


def _firmware_modules():
    """Dotted names of every firmware module, from the source tree."""
    names = []
    for rel in B.source_files(ROOT):
        if rel.startswith("firmware/"):
            dotted = rel[:-3].replace("/", ".")
            names.append(dotted.removesuffix(".__init__"))
    return names


def _copy_tree(dest):
    """A copy of the sources the build reads, to break without touching the repo."""
    for package in B.PACKAGES:
        shutil.copytree(
            os.path.join(ROOT, package), dest / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    return dest


def _run_micropython(device_dir, code, cwd):
    # MICROPYPATH replaces the whole search path: only the built folder (and
    # the port's built-in modules) can satisfy an import; cwd has no sources.
    env = dict(os.environ, MICROPYPATH=str(device_dir))
    return subprocess.run(
        [_micropython(), "-c", code], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "device"
    return out, B.build(out)


def test_every_firmware_and_board_module_has_its_mpy(built):
    out, results = built
    sources = B.source_files(ROOT)
    assert [src for src, _, _ in results] == sources
    for src, dest, size in results:
        assert size == os.path.getsize(dest) > 0
        with open(dest, "rb") as f:
            data = f.read()
        if src in B.ROOT_SCRIPTS:  # main.py, boot.py: copied as source
            assert dest == os.path.join(str(out), src)
            with open(os.path.join(ROOT, src), "rb") as f:
                assert data == f.read()
            continue
        assert dest == os.path.join(str(out), *src.split("/"))[:-3] + ".mpy"
        assert data[:2] == MPY_MAGIC, src
    for package in ("firmware", "firmware/drivers", "boards"):
        assert any(src.startswith(package + "/") for src in sources), package
    # Nothing else lands in the device folder: no sources, no caches.
    on_disk = sorted(
        os.path.relpath(os.path.join(d, f), str(out)).replace(os.sep, "/")
        for d, _, files in os.walk(str(out)) for f in files
    )
    assert on_disk == sorted(src if src in B.ROOT_SCRIPTS else src[:-3] + ".mpy" for src in sources)


def test_unix_micropython_imports_every_module_from_the_built_mpy(built, tmp_path):
    out, _ = built
    modules = _firmware_modules()
    assert "firmware.controller" in modules and "firmware.drivers.hbridge" in modules
    code = "\n".join(
        ["import sys", "assert sys.implementation.name == 'micropython'"]
        + ["import " + name for name in modules]
        + ["from firmware.fixedpoint import atan2_mdeg, isqrt",
           "print(atan2_mdeg(1000, 1000), atan2_mdeg(-3, -4), isqrt(1 << 30))",
           "print('imported', %d)" % len(modules)]
    )
    proc = _run_micropython(out, code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from firmware.fixedpoint import atan2_mdeg, isqrt

    expected = "%d %d %d" % (atan2_mdeg(1000, 1000), atan2_mdeg(-3, -4), isqrt(1 << 30))
    assert proc.stdout.splitlines() == [expected, "imported %d" % len(modules)]


def test_the_unix_port_does_not_import_firmware_source_from_the_device_folder(built, tmp_path):
    """The import test above proves the .mpy files: there is no .py to fall back to."""
    out, _ = built
    proc = _run_micropython(out, "import firmware.no_such_module", cwd=tmp_path)
    assert proc.returncode != 0 and "ImportError" in proc.stdout + proc.stderr
    for package in B.PACKAGES:
        walk = os.walk(os.path.join(str(out), package))
        assert not [f for _, _, files in walk for f in files if not f.endswith(".mpy")]


def test_cpython_only_syntax_fails_the_build_and_names_the_file(tmp_path):
    root = _copy_tree(tmp_path / "src")
    out = tmp_path / "device"
    B.build(out, root=root)  # the copy builds as it is
    good = sorted(os.listdir(out / "firmware"))
    with open(root / "firmware" / "limits.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _kind(x):\n    match x:\n        case 0:\n            return 'zero'\n")
    with pytest.raises(B.BuildError) as caught:
        B.build(out, root=root)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith("firmware/limits.py: mpy-cross rejected it")
    assert "SyntaxError" in problem
    assert sorted(os.listdir(out / "firmware")) == good  # the last good build stays

    # The command line: exit status 1, the file named on stderr.
    proc = subprocess.run(
        [sys.executable, "-m", "host_tools.build", "--root", str(root), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 1
    assert "firmware/limits.py" in proc.stderr and "SyntaxError" in proc.stderr


def test_command_line_prints_the_total_and_with_v_every_file(tmp_path):
    out = tmp_path / "device"
    proc = subprocess.run(
        [sys.executable, "-m", "host_tools.build", "--out", str(out), "-v"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    sizes = {}
    summary = []
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].isdigit():
            sizes[fields[1]] = int(fields[0])
        else:
            summary.append(line)
    assert len(sizes) == len(B.source_files(ROOT))
    mpy_total = sum(size for path, size in sizes.items() if path.endswith(".mpy"))
    assert " .mpy files, %d bytes (" % mpy_total in summary[0]


@pytest.mark.parametrize(
    ("rel", "source", "message"),
    [
        ("firmware/x.py", "import machine\n", "firmware/x.py:1: imports machine"),
        ("firmware/x.py", "from machine import Pin\n", "firmware/x.py:1: imports machine"),
        ("firmware/drivers/x.py", "import time\n", "firmware/drivers/x.py:1: imports time"),
        ("firmware/x.py", "x = 1\nfrom dataclasses import dataclass\n",
         "firmware/x.py:2: imports dataclasses, which MicroPython does not have"),
        ("boards/x.py", "import typing\n", "boards/x.py:1: imports typing"),
        ("boards/x.py", "import functools\n", "boards/x.py:1: imports functools"),
    ],
)
def test_forbidden_imports_are_named(rel, source, message):
    problems = B.import_problems(rel, source)
    assert len(problems) == 1 and problems[0].startswith(message)


def test_allowed_imports_pass():
    assert B.import_problems("boards/x.py", "import machine\nimport time\n") == []
    firmware = "from micropython import const\nfrom array import array\nimport math\n"
    assert B.import_problems("firmware/x.py", firmware + "from firmware import limits\n") == []


def test_forbidden_import_fails_the_build(tmp_path):
    root = _copy_tree(tmp_path / "src")
    with open(root / "firmware" / "button.py", "a", encoding="utf-8") as f:
        f.write("\nimport machine\n")
    with pytest.raises(B.BuildError) as caught:
        B.build(tmp_path / "device", root=root)
    assert [p.split(":")[0] for p in caught.value.problems] == ["firmware/button.py"]
    assert not (tmp_path / "device").exists()


def test_build_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    out = tmp_path / "device"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(B.BuildError, match=r"notes\.txt"):
        B.build(out)
    assert sorted(os.listdir(out)) == ["notes.txt"]
