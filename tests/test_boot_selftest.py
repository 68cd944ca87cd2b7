"""Boot self-test on the simulated board: passes when healthy, and fails with
a clear reason for each fault it is there to catch."""

import errno
import hashlib
import json
import re

import pytest

from firmware.config import Table
from firmware.controller import imu_driver
from firmware.selftest import SelfTestResult, away_from_home, run_selftest, sha256_file
from sim.board import SimBoard
from sim.plant import User
from sim.runner import firmware_table_config

USER = User(80.0, 1.78)


def board_and_table(**kwargs):
    board = SimBoard(USER, **kwargs)
    return board, firmware_table_config(board)


def selftest(board, table=None, **kwargs):
    table = table or firmware_table_config(board)
    imu = imu_driver(board.imu_type)[0](board.i2c, board.imu_addr)
    return run_selftest(board, imu, table, **kwargs)


def reported_angle(reason):
    return float(re.search(r"engaged at (-?[0-9.]+) deg", reason).group(1))


def only_reason(result, prefix):
    assert not result.ok
    assert len(result.reasons) == 1, result.reasons
    assert result.reasons[0].startswith(prefix), result.reasons
    return result.reasons[0]


@pytest.mark.parametrize("imu", ["mpu6050", "lsm6dsox"])
@pytest.mark.parametrize("angle_deg", [None, -30.0, 0.0, 40.0, 85.0])
def test_a_healthy_board_passes_at_any_angle(imu, angle_deg):
    board, table = board_and_table(imu=imu, angle_deg=angle_deg)
    result = selftest(board, table)
    assert result.ok and result.reasons == [] and result.recovery_ok
    expected = -60.0 if angle_deg is None else angle_deg
    assert result.accel_angle_deg == pytest.approx(expected, abs=1.0)
    assert result.accel_norm_g == pytest.approx(1.0, abs=0.02)
    assert away_from_home(result, table) == (angle_deg is not None)
    assert not board.wdt.expired  # fed while it worked


def test_engaged_end_switches_are_fine_where_they_belong():
    board, table = board_and_table(angle_deg=89.8)  # the far switch engages at 89.5
    assert board.far_switch.value() == 1
    assert selftest(board, table).ok
    board, table = board_and_table(angle_deg=-61.0)  # past home: over-travel switch engaged
    assert board.home_switch.value() == 1
    assert selftest(board, table).ok


def test_imu_not_answering_fails_and_blocks_recovery():
    board, table = board_and_table(angle_deg=20.0)
    board.imu.nack = True
    reason = only_reason(selftest(board, table), "imu: mpu6050 at 0x68 does not answer")
    assert str(errno.ENODEV) in reason
    result = selftest(board, table)
    assert not result.recovery_ok and result.accel_angle_deg is None


def test_the_wrong_imu_type_fails_naming_what_answered():
    board, table = board_and_table()
    board.imu_type = "lsm6dsox"  # configured for an LSM6DSOX, an MPU-6050 is fitted
    reason = only_reason(selftest(board, table), "imu: lsm6dsox at 0x68 does not answer or is not")
    assert "WHO_AM_I=0x00" in reason


@pytest.mark.parametrize("bias, words", [
    ((0.0, 0.0, 0.4), "|a| = 1.4"),
    ((0.0, 0.0, -0.3), "|a| = 0.7"),
])
def test_an_implausible_gravity_reading_fails(bias, words):
    board, table = board_and_table(angle_deg=0.0, imu_kwargs={"accel_bias_g": bias})
    reason = only_reason(selftest(board, table), "imu:")
    assert words in reason and "expected 1 g +- 10 %" in reason


def test_gravity_along_the_pivot_axis_means_a_rotated_sensor():
    board, table = board_and_table(angle_deg=0.0, imu_kwargs={"accel_bias_g": (0.0, 0.3, -0.05)})
    reason = only_reason(selftest(board, table), "imu:")
    assert "pivot axis" in reason


def test_a_gyro_reading_far_from_zero_at_rest_fails():
    board, table = board_and_table(imu_kwargs={"gyro_bias_dps": (0.0, 35.0, 0.0)})
    reason = only_reason(selftest(board, table), "imu:")
    assert "gyro reads 35" in reason


def test_a_frozen_sensor_fails():
    board, table = board_and_table()
    board.imu.frozen = True
    assert "frozen" in only_reason(selftest(board, table), "imu:")


def test_button_held_at_boot_fails_but_does_not_block_recovery():
    board, table = board_and_table(angle_deg=30.0)
    board.press_button()
    result = selftest(board, table)
    assert "held at boot" in only_reason(result, "button:")
    assert result.recovery_ok


@pytest.mark.parametrize("no, nc", [(1, 1), (0, 0)])
def test_button_contacts_that_disagree_fail(no, nc):
    board, table = board_and_table()
    board.button_no.level_fn = lambda: no
    board.button_nc.level_fn = lambda: nc
    reason = only_reason(selftest(board, table), "button: contacts disagree")
    assert "NO reads %d, NC reads %d" % (no, nc) in reason


def test_a_button_that_goes_down_during_the_samples_fails():
    board, table = board_and_table()
    reads = iter([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    board.button_no.level_fn = lambda: next(reads)
    assert not selftest(board, table).ok


def test_far_switch_engaged_at_home_fails():
    board, table = board_and_table()
    board.far_switch.level_fn = lambda: 1  # a broken wire to the NC switch
    reason = only_reason(selftest(board, table), "switch: far end switch reads engaged at")
    assert reported_angle(reason) == pytest.approx(-60.0, abs=1.0)
    assert "broken wire" in reason


def test_home_switch_engaged_far_from_home_fails():
    board, table = board_and_table(angle_deg=40.0)
    board.home_switch.level_fn = lambda: 1
    result = selftest(board, table)
    reason = only_reason(result, "switch: home end switch reads engaged at")
    assert reported_angle(reason) == pytest.approx(40.0, abs=1.0)
    assert result.recovery_ok  # RECOVERING does not rely on the home switch far from home


def test_both_end_switches_engaged_fail():
    board, table = board_and_table(angle_deg=10.0)
    board.home_switch.level_fn = lambda: 1
    board.far_switch.level_fn = lambda: 1
    assert "both" in only_reason(selftest(board, table), "switch:")


# --- file hashes against the deploy manifest -------------------------------------------


@pytest.fixture
def deployed(tmp_path, monkeypatch):
    """A device folder with a few files and the manifest the deploy tool writes."""
    files = {
        "firmware/controller.mpy": b"\x4d\x06" + bytes(range(256)) * 20,
        "firmware/drivers/lsm6dsox.mpy": b"\x4d\x06lsm",
        "main.py": b"print('boot')\n",
    }
    hashes = {}
    for path, data in files.items():
        full = tmp_path / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
        hashes[path] = hashlib.sha256(data).hexdigest()
    manifest = {"board": "sim", "files": hashes}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.chdir(tmp_path)  # the board's root is the current folder
    return tmp_path, manifest


def test_files_matching_the_manifest_pass(deployed):
    _root, manifest = deployed
    board, table = board_and_table()
    result = selftest(board, table, manifest=manifest)
    assert result.ok and result.files_checked == 3


def test_a_changed_file_fails_naming_it(deployed):
    root, manifest = deployed
    (root / "firmware/drivers/lsm6dsox.mpy").write_bytes(b"\x4d\x06lsm, edited")
    board, table = board_and_table()
    result = selftest(board, table, manifest=manifest)
    reason = only_reason(result, "files: firmware/drivers/lsm6dsox.mpy has SHA-256")
    assert manifest["files"]["firmware/drivers/lsm6dsox.mpy"][:12] in reason
    assert not result.recovery_ok  # firmware that is not what was deployed is not trusted


def test_a_missing_file_fails_naming_it(deployed):
    root, manifest = deployed
    (root / "main.py").unlink()
    board, table = board_and_table()
    only_reason(selftest(board, table, manifest=manifest), "files: main.py cannot be read")


def test_a_manifest_for_another_board_fails(deployed):
    _root, manifest = deployed
    board, table = board_and_table()
    result = selftest(board, table, manifest=dict(manifest, board="rpi_pico"))
    only_reason(result, "files: the manifest is for board 'rpi_pico', this board is 'sim'")


def test_a_manifest_without_files_fails():
    board, table = board_and_table()
    only_reason(selftest(board, table, manifest={"board": "sim"}), "files: the manifest has no")


def test_a_custom_hash_reader_is_used():
    board, table = board_and_table()
    manifest = {"files": {"a.mpy": "00" * 32}}
    result = selftest(board, table, manifest=manifest, read_file_hash=lambda path: "00" * 32)
    assert result.ok and result.files_checked == 1


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = bytes(range(256)) * 37  # several 1 KiB chunks and a partial one
    path = tmp_path / "x.mpy"
    path.write_bytes(data)
    assert sha256_file(str(path)) == hashlib.sha256(data).hexdigest()


def test_several_faults_are_all_reported():
    board, table = board_and_table()
    board.press_button()
    board.far_switch.level_fn = lambda: 1
    result = selftest(board, table, manifest={"files": {"gone.mpy": "ab" * 32}},
                      read_file_hash=lambda p: (_ for _ in ()).throw(OSError(errno.ENOENT, p)))
    assert [r.split(":")[0] for r in result.reasons] == ["button", "switch", "files"]
    assert "SelfTestResult(failed: button:" in repr(result)


def test_result_object():
    result = SelfTestResult()
    assert result.ok and repr(result) == "SelfTestResult(ok)" and not result.recovery_ok
    result.accel_angle_deg = 3.0
    assert result.recovery_ok
    result.fail("button: x", blocks_recovery=False)
    assert not result.ok and result.recovery_ok
    result.fail("imu: y")
    assert not result.recovery_ok and result.reasons == ["button: x", "imu: y"]
    table = Table({"home_deg": -60.0, "lever_m": 0.18, "base_m": 0.8, "phi_offset_deg": 75.0,
                   "noload_speed_mps": 0.035})
    result.accel_angle_deg = -59.0
    assert not away_from_home(result, table)
    result.accel_angle_deg = -58.0
    assert away_from_home(result, table)
