"""`make flash BOARD=... PORT=...` end to end, against a virtual board.

The same command a developer runs with a Pico on /dev/ttyACM0, here with the
MicroPython unix port behind a pseudo-terminal (host_tools/virtual_board.py)
and the real mpremote: it compiles, copies, verifies and writes the manifest,
the firmware then runs on the board, and a second run copies nothing.
"""

import json
import shutil
import subprocess
import sys

import pytest

from host_tools.deploy import REPO
from host_tools.virtual_board import VirtualBoard
from tests.test_deploy_virtual_board import GOOD_CONFIG

# Generous: a loaded 2-core CI machine.
TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _make(*args):
    # -o: never reinstall the venv from inside a test; PY: this interpreter;
    # BUILD (per test) keeps the repository's build/ untouched.
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", *args, "PY=" + sys.executable],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip


def test_make_flash_deploys_verifies_and_then_has_nothing_to_copy(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(GOOD_CONFIG) + "\n")  # deploy checks it first
    build = "BUILD=%s" % (tmp_path / "build")
    with VirtualBoard() as vb:
        out = _make("flash", "BOARD=rpi_pico", "PORT=" + vb.port, "CONFIG=%s" % config, build)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "deployed:" in out.stdout and "0 unchanged" in out.stdout
        assert (tmp_path / "build" / "device" / "firmware" / "limits.mpy").is_file()

        manifest = json.loads((vb.root / "manifest.json").read_bytes())
        assert manifest["board"] == "rpi_pico"
        assert "firmware/controller.mpy" in manifest["files"]
        assert (vb.root / "config.json").read_bytes() == config.read_bytes()

        ran = vb.mpremote(
            "exec", "import firmware.limits as L; print(L.SETPOINT_MAX_MDEG)", timeout=TIMEOUT_S
        )
        assert ran.stdout.strip() == "88500", ran.stdout + ran.stderr

        again = _make("flash", "BOARD=rpi_pico", "PORT=" + vb.port, build)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "up to date: 0 copied" in again.stdout


def test_make_flash_without_board_or_port_prints_usage():
    out = _make("flash", "BOARD=rpi_pico")
    assert out.returncode != 0
    assert "usage: make flash BOARD=" in out.stderr
