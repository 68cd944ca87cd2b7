"""The boot self-test run ON the virtual board, against simulated peripherals.

The firmware is deployed to the virtual board (the unix port on a pty,
host_tools/virtual_board.py) with the real deploy path (host_tools/deploy.py,
mpremote); then sim/mp/virtual_static.py (a pure-MicroPython Board: an
MPU-6050 at register level, the button, the end switches, PWM/ADC/WDT/Timer
stand-ins, a table at rest at home) is copied next to it, and main.py's boot
(`main.boot`: the self-test of firmware/selftest.py, then the controller) runs
there through `mpremote exec`. These tests protect: a healthy table at home
passes every check (IMU, button, switches, every file of the manifest) and
the controller starts on it; a button held at boot, an IMU that does not
answer and an implausible accelerometer fail with their reasons; the file
check verifies the manifest deploy wrote, and names a corrupted file.
"""

import json

import pytest

from host_tools import deploy as D
from host_tools.virtual_board import VirtualBoard

BOARD = "rpi_pico"  # the deployed firmware; the simulated board stands in for it
BOARD_MODULE = D.REPO / "sim" / "mp" / "virtual_static.py"
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def board():
    """A virtual board with the firmware deployed and the simulated board module copied."""
    with VirtualBoard() as vb:
        result = D.deploy(vb.port, BOARD, timeout=TIMEOUT_S, log=lambda _m: None)
        out = vb.mpremote("fs", "cp", str(BOARD_MODULE), ":virtual_static.py", timeout=TIMEOUT_S)
        assert out.returncode == 0, out.stdout + out.stderr
        yield vb, result


BOOT = """
import main
import virtual_static
board = virtual_static.Board(name=%r, **%r)
manifest, error = main.read_manifest()
app = main.boot(board, manifest=manifest, manifest_error=error)
r = app.selftest
angle = r.accel_angle_deg
print('@@', app.mode_name, r.ok, r.files_checked, r.recovery_ok,
      'none' if angle is None else int(round(angle)), board.motor_pwm.duty_u16(),
      board.deadman_timer.period)
for reason in r.reasons:
    print('@@reason', reason)
"""


def _boot(vb, board_name=BOARD, **knobs):
    out = vb.mpremote("exec", BOOT % (board_name, knobs), timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("@@")]
    assert lines, out.stdout
    mode, ok, checked, recovery_ok, angle, duty, period = lines[0].split()[1:]
    return {
        "mode": mode, "ok": ok == "True", "files_checked": int(checked),
        "recovery_ok": recovery_ok == "True", "angle": angle, "duty": int(duty),
        "deadman_period": period,
        "reasons": [line.split(" ", 1)[1] for line in lines[1:]],
    }  # fmt: skip


def test_a_healthy_table_at_home_passes_every_check_and_the_controller_starts(board):
    vb, deployed = board
    got = _boot(vb)
    assert got["reasons"] == []
    assert got["ok"] and got["mode"] == "run"
    assert got["angle"] == "-60"  # the accelerometer's angle: home
    # Every file deploy wrote into the manifest was hashed on the board.
    manifest = json.loads((vb.root / "manifest.json").read_bytes())
    assert manifest == deployed.manifest and manifest["board"] == BOARD
    assert got["files_checked"] == len(manifest["files"]) > 10
    # The controller started on the simulated board: motor off, dead-man timer at 20 ms.
    assert got["duty"] == 0 and got["deadman_period"] == "20"


def test_the_button_held_at_boot_fails_and_no_session_runs(board):
    vb, _ = board
    got = _boot(vb, button_held=True)
    assert not got["ok"] and got["mode"] == "halted"  # at home: nothing to recover
    assert got["reasons"] == [
        "button: held at boot (NO closed, NC open): let go of it, or a contact is stuck"
    ]
    assert got["recovery_ok"]  # the way home would still be trusted


def test_an_imu_that_does_not_answer_fails_and_blocks_recovery(board):
    vb, _ = board
    got = _boot(vb, imu_nack=True)
    assert not got["ok"] and got["mode"] == "halted" and not got["recovery_ok"]
    assert len(got["reasons"]) == 1
    assert got["reasons"][0].startswith("imu: mpu6050 at 0x68 does not answer or is not that chip")
    assert got["angle"] == "none" and got["duty"] == 0


def test_an_implausible_accelerometer_fails_naming_the_magnitude(board):
    vb, _ = board
    got = _boot(vb, accel_scale=1.5)
    assert not got["ok"] and got["mode"] == "halted"
    assert got["reasons"] == ["imu: mpu6050 at 0x68: |a| = 1.500 g at rest, expected 1 g +- 10 %"]


def test_a_wrong_chip_and_a_stuck_far_switch_are_named(board):
    vb, _ = board
    got = _boot(vb, who_am_i=0x70)
    assert got["reasons"][0].startswith("imu: mpu6050 at 0x68 does not answer or is not that chip")
    assert "WHO_AM_I=0x70" in got["reasons"][0]
    got = _boot(vb, far_switch=1)
    assert got["mode"] == "halted"
    assert got["reasons"] == [
        "switch: far end switch reads engaged at -60.0 deg (only expected above 85 deg): "
        "broken wire or stuck switch"
    ]


def test_the_file_check_refuses_a_manifest_for_another_board(board):
    vb, _ = board
    got = _boot(vb, board_name="esp32_devkitc")
    assert got["mode"] == "halted"
    assert got["reasons"] == [
        "files: the manifest is for board 'rpi_pico', this board is 'esp32_devkitc'"
    ]


def test_a_file_corrupted_after_deploy_is_named_by_the_boot_self_test(board):
    vb, _ = board
    target = vb.root / "board.py"  # in the manifest, never imported by these tests
    good = target.read_bytes()
    try:
        target.write_bytes(good + b"# edited on the board\n")
        got = _boot(vb)
        assert got["mode"] == "halted" and not got["recovery_ok"]
        assert len(got["reasons"]) == 1
        assert got["reasons"][0].startswith("files: board.py has SHA-256")
    finally:
        target.write_bytes(good)
    assert _boot(vb)["ok"]


def test_check_files_public_wrapper_on_the_board(board):
    vb, deployed = board
    code = (
        "import main\nimport virtual_static\nfrom firmware.selftest import check_files\n"
        "r = check_files(virtual_static.Board(name=%r), main.read_manifest()[0])\n"
        "print('@@', r.ok, r.files_checked)\n" % BOARD
    )
    out = vb.mpremote("exec", code, timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("@@"))
    assert line.split()[1:] == ["True", str(len(deployed.manifest["files"]))]
