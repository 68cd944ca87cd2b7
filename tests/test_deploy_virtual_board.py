"""Deploying to a board (host_tools/deploy.py), against a virtual board with the real mpremote.

The virtual board is the MicroPython unix port behind a pseudo-terminal
(host_tools/virtual_board.py): mpremote talks to it exactly as to a USB
serial port, and its file system is a temporary folder. These tests protect:
every file arrives and is verified by SHA-256 read back from the board; the
manifest the boot self-test checks against is right; a second deploy copies
nothing and a change copies only that file; corruption (on the board, or
during the copy) is caught and names the file, and no manifest vouches for
it; the deployed .mpy files run on the board.
"""

import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from host_tools import deploy as D
from host_tools.virtual_board import VirtualBoard

BOARD = "rpi_pico"
# Generous: a loaded 2-core CI machine.
TIMEOUT_S = 60


def _quiet(_message):
    pass


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The firmware compiled once for this module (deploys below use it as is)."""
    out = tmp_path_factory.mktemp("build") / "device"
    D.compile_firmware(out)
    return out


def _deploy(vb, built, **kwargs):
    kwargs.setdefault("build_dir", built)
    kwargs.setdefault("skip_build", "repo" not in kwargs)
    return D.deploy(vb.port, BOARD, timeout=TIMEOUT_S, log=_quiet, **kwargs)


def _expected_paths(built):
    paths = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    paths = {p for p in paths if not p.startswith("boards/") or p == "boards/%s.mpy" % BOARD}
    paths.add("board.py")
    if (D.REPO / "main.py").is_file():
        paths.add("main.py")
    return sorted(paths)


def _run(vb, code):
    out = vb.mpremote("exec", code, timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def deployed(built):
    """One virtual board with the firmware deployed once (tests here only read it)."""
    with VirtualBoard() as vb:
        first = _deploy(vb, built)
        yield vb, first


def test_first_deploy_copies_every_file_and_verifies_it(deployed, built):
    vb, first = deployed
    expected = _expected_paths(built)
    assert first.copied == expected
    assert first.unchanged == [] and first.removed == []
    assert first.verified == sorted([*expected, "manifest.json"])
    for path in expected:
        if path.endswith(".mpy"):
            local = (built / path).read_bytes()
            assert (vb.root / path).read_bytes() == local, path
    # Only the chosen board's module goes onto the board.
    assert sorted(p.name for p in (vb.root / "boards").iterdir()) == ["%s.mpy" % BOARD]


def test_manifest_pulled_back_with_mpremote_lists_every_file_hash(deployed, built, tmp_path):
    vb, first = deployed
    local = tmp_path / "manifest.json"
    out = vb.mpremote("fs", "cp", ":manifest.json", str(local), timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    manifest = json.loads(local.read_bytes())
    assert manifest == first.manifest
    assert manifest["board"] == BOARD
    assert sorted(manifest["files"]) == _expected_paths(built)
    for path, digest in manifest["files"].items():
        assert hashlib.sha256((vb.root / path).read_bytes()).hexdigest() == digest, path
    # mpremote's own device-side hash agrees.
    out = vb.mpremote("fs", "sha256sum", ":firmware/controller.mpy", timeout=TIMEOUT_S)
    assert manifest["files"]["firmware/controller.mpy"] in out.stdout


def test_second_deploy_with_no_change_copies_nothing(deployed, built):
    vb, first = deployed
    manifest_before = (vb.root / "manifest.json").read_bytes()
    second = _deploy(vb, built)
    assert second.copied == [] and second.removed == []
    assert second.unchanged == first.copied
    assert second.verified == first.verified
    assert (vb.root / "manifest.json").read_bytes() == manifest_before


def test_deployed_mpy_files_run_on_the_board(deployed):
    vb, _ = deployed
    from firmware import limits

    out = _run(vb, "import firmware.limits as L; print(L.__file__, L.ANGLE_MAX_MDEG)")
    assert out == "firmware/limits.mpy %d" % limits.ANGLE_MAX_MDEG
    # The board choice: `import board` is the chosen board's module.
    out = _run(vb, "import board; print(board.NAME, board.Board.name)")
    assert out == "%s %s" % (BOARD, BOARD)


def test_changed_source_file_is_the_only_one_copied(tmp_path, built):
    repo = tmp_path / "repo"
    for name in ("firmware", "boards"):
        shutil.copytree(D.REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    if (D.REPO / "main.py").is_file():
        shutil.copy(D.REPO / "main.py", repo / "main.py")
    out = tmp_path / "device"
    with VirtualBoard() as vb:
        first = _deploy(vb, built, repo=repo, build_dir=out)
        assert "firmware/limits.mpy" in first.copied
        with open(repo / "firmware" / "limits.py", "a") as f:
            f.write("\nDEPLOY_TEST_MARK = 1234\n")
        second = _deploy(vb, built, repo=repo, build_dir=out)
        assert second.copied == ["firmware/limits.mpy"]
        assert second.removed == []
        assert len(second.unchanged) == len(first.copied) - 1
        assert _run(vb, "import firmware.limits as L; print(L.DEPLOY_TEST_MARK)") == "1234"
        manifest = json.loads((vb.root / "manifest.json").read_bytes())
        new_hash = hashlib.sha256((out / "firmware" / "limits.mpy").read_bytes()).hexdigest()
        assert manifest["files"]["firmware/limits.mpy"] == new_hash
        assert manifest["files"]["firmware/limits.mpy"] != first.manifest["files"][
            "firmware/limits.mpy"
        ]


def test_corrupted_file_on_the_board_is_named_by_verification_and_repaired(built):
    with VirtualBoard() as vb:
        _deploy(vb, built)
        target = vb.root / "firmware" / "controller.mpy"
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))

        problems = D.verify(vb.port, BOARD, build_dir=built, skip_build=True, timeout=TIMEOUT_S)
        assert len(problems) == 1 and problems[0].startswith("firmware/controller.mpy:")

        cli = subprocess.run(
            [sys.executable, "-m", "host_tools", "deploy", "--port", vb.port, "--board", BOARD,
             "--build-dir", str(built), "--no-build", "--verify-only"],
            capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=D.REPO,
        )  # fmt: skip
        assert cli.returncode == 1
        assert "firmware/controller.mpy" in cli.stderr

        repaired = _deploy(vb, built)
        assert repaired.copied == ["firmware/controller.mpy"]
        assert D.verify(vb.port, BOARD, build_dir=built, skip_build=True) == []


def _damage_after_copy(monkeypatch, path, damage_code):
    """Make the board damage `path` right after mpremote writes it (same connection)."""
    real_run = D.Device.run

    def run(self, *commands):
        chained = []
        for cmd in commands:
            chained.append(cmd)
            if cmd[:2] == ["fs", "cp"] and cmd[-1] == ":" + path:
                chained.append(["exec", "p = %r\n%s" % (path, damage_code)])
        return real_run(self, *chained)

    monkeypatch.setattr(D.Device, "run", run)


TRUNCATE = "d = open(p, 'rb').read()\nf = open(p, 'wb')\nf.write(d[:-7])\nf.close()"
DELETE = "import os\nos.remove(p)"


def test_corruption_during_the_copy_fails_naming_the_file_and_writes_no_manifest(
    built, monkeypatch
):
    with VirtualBoard() as vb:
        _damage_after_copy(monkeypatch, "firmware/session.mpy", TRUNCATE)
        with pytest.raises(D.DeployError, match=r"firmware/session\.mpy: sha256 on the device"):
            _deploy(vb, built)
        assert not (vb.root / "manifest.json").exists()
        out = vb.mpremote("fs", "ls", ":", timeout=TIMEOUT_S)
        assert "manifest.json" not in out.stdout


def test_a_file_lost_during_the_copy_is_named_missing(built, monkeypatch):
    with VirtualBoard() as vb:
        _deploy(vb, built)  # a good deploy first: its manifest must go
        (vb.root / "firmware" / "limits.mpy").write_bytes(b"stale")
        _damage_after_copy(monkeypatch, "firmware/limits.mpy", DELETE)
        with pytest.raises(D.DeployError, match=r"firmware/limits\.mpy: missing on the device"):
            _deploy(vb, built)
        assert not (vb.root / "manifest.json").exists()


def test_stale_source_that_would_shadow_an_mpy_is_removed(built):
    with VirtualBoard() as vb:
        (vb.root / "firmware").mkdir()
        (vb.root / "firmware" / "limits.py").write_text("ANGLE_MAX_MDEG = 180000\n")
        (vb.root / "firmware" / "retired_module.mpy").write_bytes(b"M\x06old")
        (vb.root / "user_log.txt").write_text("kept\n")  # outside what deploy owns
        result = _deploy(vb, built)
        assert result.removed == ["firmware/limits.py", "firmware/retired_module.mpy"]
        assert _run(vb, "import firmware.limits as L; print(L.__file__)") == "firmware/limits.mpy"
        assert (vb.root / "user_log.txt").read_text() == "kept\n"


# A config the firmware takes (deploy checks --config as `config check` does).
GOOD_CONFIG = {
    "table": {"home_deg": -60.0, "lever_m": 0.18, "base_m": 0.80, "phi_offset_deg": 75.0,
              "noload_speed_mps": 0.035},
    "program": {"target_angle_deg": 20.0, "hold_s": 60.0, "rock_amplitude_deg": 0.0,
                "rock_period_s": 10.0},
}


def test_config_is_written_listed_in_the_manifest_and_kept(built, tmp_path):
    config = tmp_path / "table.json"
    config.write_text(json.dumps(GOOD_CONFIG) + "\n")
    with VirtualBoard() as vb:
        first = _deploy(vb, built, config=config)
        assert "config.json" in first.copied
        assert (vb.root / "config.json").read_bytes() == config.read_bytes()
        digest = hashlib.sha256(config.read_bytes()).hexdigest()
        assert first.manifest["files"]["config.json"] == digest

        # Without --config the board keeps its config, still listed.
        again = _deploy(vb, built)
        assert again.copied == [] and again.removed == []
        assert again.manifest["files"]["config.json"] == digest

        # A kept config that no longer matches the manifest is refused.
        (vb.root / "config.json").write_text('{"program": {"target_angle_deg": 90.0}}\n')
        with pytest.raises(D.DeployError, match=r"config\.json on the device does not match"):
            _deploy(vb, built)


def test_cli_refuses_an_unknown_board_or_a_bad_config_with_status_2(tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "host_tools", "deploy", "--port", "/dev/null", *args],
            capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=D.REPO,
        )  # fmt: skip

    out = cli("--board", "no_such_board")
    assert out.returncode == 2
    assert "unknown board 'no_such_board'" in out.stderr and BOARD in out.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = cli("--board", BOARD, "--config", str(bad))
    assert out.returncode == 2
    assert "not valid JSON" in out.stderr


def test_a_config_the_firmware_would_not_take_is_refused_before_anything_is_written(
        built, tmp_path):
    bad = json.loads(json.dumps(GOOD_CONFIG))
    bad["program"]["target_angle_deg"] = 120.0
    bad["limits"] = {"rate_max_dpz": 5.0}
    config = tmp_path / "bad.json"
    config.write_text(json.dumps(bad))
    with VirtualBoard() as vb:
        before = sorted(p.name for p in vb.root.iterdir())
        out = subprocess.run(
            [sys.executable, "-m", "host_tools", "deploy", "--port", vb.port, "--board", BOARD,
             "--config", str(config), "--build-dir", str(built), "--no-build",
             "--timeout", str(TIMEOUT_S)],
            capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=D.REPO,
        )  # fmt: skip
        assert sorted(p.name for p in vb.root.iterdir()) == before  # nothing written
        with pytest.raises(D.UsageError, match=r"program\.target_angle_deg"):
            _deploy(vb, built, config=config)
        assert sorted(p.name for p in vb.root.iterdir()) == before
    assert out.returncode == 2, out.stdout + out.stderr
    assert "program.target_angle_deg = 120.0 is outside" in out.stderr
    assert "rate_max_dpz" in out.stderr  # every problem named, not only the first
    assert "nothing written to the device" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_a_board_with_another_mpy_version_is_refused():
    state = D.DeviceState(mpy=5, hashes={})
    with pytest.raises(D.DeployError, match=r"loads \.mpy version 5, mpy-cross made version 6"):
        D._check_mpy_version(state, {"firmware/a.mpy": b"M\x06\x00\x1f"}, "/dev/ttyACM0")


def test_the_board_is_attached_with_resume_unless_a_soft_reset_is_asked_for(tmp_path):
    # A stand-in for mpremote that records its arguments.
    log = tmp_path / "argv.jsonl"
    record = "import json, sys; open(%r, 'a').write(json.dumps(sys.argv[1:]) + '\\n')" % str(log)
    fake = [sys.executable, "-c", record]
    plain = D.Device("/dev/ttyACM0", mpremote=fake)
    plain.run(["exec", "1"])
    plain.run(["exec", "2"], ["fs", "ls"])
    reset = D.Device("/dev/ttyACM1", soft_reset=True, mpremote=fake)
    reset.run(["exec", "3"])
    reset.run(["exec", "4"])
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [
        ["connect", "/dev/ttyACM0", "resume", "exec", "1"],
        ["connect", "/dev/ttyACM0", "resume", "exec", "2", "+", "fs", "ls"],
        ["connect", "/dev/ttyACM1", "exec", "3"],  # mpremote's own soft reset, once
        ["connect", "/dev/ttyACM1", "resume", "exec", "4"],
    ]


def test_an_unreachable_port_fails_with_mpremotes_reason():
    with pytest.raises(D.DeployError, match=r"mpremote failed on /dev/ttyNOPE: .*failed to access"):
        D.Device("/dev/ttyNOPE", timeout=TIMEOUT_S).state((), ["manifest.json"])


@pytest.mark.skipif(
    "esp32_devkitc" not in D.known_boards(), reason="boards/esp32_devkitc.py not there yet"
)
def test_switching_board_replaces_the_board_module(built):
    with VirtualBoard() as vb:
        _deploy(vb, built)
        other = D.deploy(
            vb.port, "esp32_devkitc", build_dir=built, skip_build=True, timeout=TIMEOUT_S,
            log=_quiet,
        )  # fmt: skip
        assert other.copied == ["board.py", "boards/esp32_devkitc.mpy"]
        assert other.removed == ["boards/%s.mpy" % BOARD]
        assert other.manifest["board"] == "esp32_devkitc"
        assert sorted(p.name for p in (vb.root / "boards").iterdir()) == ["esp32_devkitc.mpy"]
        assert _run(vb, "import board; print(board.NAME)") == "esp32_devkitc"


# The boot self-test's file check (firmware/selftest.py), run on the board
# against the manifest deploy wrote, with main.py's own manifest reader. The
# unix port has no Pin/I2C, so the hardware checks (IMU, button, switches)
# cannot run there: only the file check does (check_files), with a stand-in
# for the board object (it reads only `name` and `wdt`). The whole self-test
# against simulated peripherals: tests/test_virtual_board_selftest.py.
SELFTEST_FILES = """
import main
from firmware.selftest import check_files
class Stand:
    name = %r
    wdt = None
manifest, error = main.read_manifest()
result = check_files(Stand(), manifest)
print('@@', error, result.files_checked, result.ok)
for reason in result.reasons:
    print('@@reason', reason)
"""


def _selftest_files(vb, board_name=BOARD):
    out = _run(vb, SELFTEST_FILES % board_name)
    lines = [line for line in out.splitlines() if line.startswith("@@")]
    error, checked, ok = lines[0].split()[1:]
    reasons = [line.split(" ", 1)[1] for line in lines[1:]]
    return error, int(checked), ok == "True", reasons


def test_boot_selftest_file_check_passes_on_the_deployed_board(deployed):
    vb, first = deployed
    error, checked, ok, reasons = _selftest_files(vb)
    assert (error, ok, reasons) == ("None", True, [])
    assert checked == len(first.manifest["files"])
    # ... and refuses a manifest made for the other board.
    _, _, ok, reasons = _selftest_files(vb, board_name="esp32_devkitc")
    assert not ok
    assert reasons == ["files: the manifest is for board 'rpi_pico', this board is 'esp32_devkitc'"]


def test_boot_selftest_file_check_names_a_file_corrupted_after_deploy(built):
    with VirtualBoard() as vb:
        _deploy(vb, built)
        target = vb.root / "firmware" / "estimator.mpy"
        target.write_bytes(target.read_bytes()[:-1] + b"\x00")
        _, _, ok, reasons = _selftest_files(vb)
        assert not ok
        assert len(reasons) == 1 and reasons[0].startswith("files: firmware/estimator.mpy has")
        # Without a manifest (an interrupted deploy) main.py reports it.
        (vb.root / "manifest.json").unlink()
        error = _run(vb, "import main; print(main.read_manifest()[1])")
        assert error.startswith("files: manifest.json cannot be read")
