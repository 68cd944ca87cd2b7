"""`python -m host_tools config check | show | push`.

check: every kind of bad config (JSON syntax with line and column, wrong
types, out of range, unknown section, unknown key, limits above the hard
caps, a key given twice) exits 1 with a message naming it and no traceback;
a good one exits 0 with a summary of what the firmware will run.
show/push against the virtual board (the MicroPython unix port on a pty,
driven by mpremote as a real board is): push refuses a bad file and writes
nothing; a good one lands under a temporary name, is checked by SHA-256,
renamed over config.json, verified, and the deploy manifest's entry follows
(so the boot self-test's file check still passes); a copy damaged on the
way is caught and replaces nothing."""

import hashlib
import json
import subprocess
import sys

import pytest

from host_tools import config_cmd
from host_tools import deploy as D
from host_tools.__main__ import main as cli_main
from host_tools.virtual_board import VirtualBoard

TIMEOUT_S = 60
TABLE = {"home_deg": -60.0, "lever_m": 0.18, "base_m": 0.80, "phi_offset_deg": 75.0,
         "noload_speed_mps": 0.035}
PROGRAM = {"target_angle_deg": 30.0, "hold_s": 60.0, "rock_amplitude_deg": 0.0,
           "rock_period_s": 10.0}
GOOD = {"table": TABLE, "limits": {"rate_max_dps": 5.0}, "program": PROGRAM}


def write(tmp_path, data, name="config.json"):
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))
    return path


def cli(*args):
    return subprocess.run([sys.executable, "-m", "host_tools", *args], capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False, cwd=D.REPO)


def with_(section, key, value):
    data = json.loads(json.dumps(GOOD))
    data[section][key] = value
    return data


# --- config check --------------------------------------------------------------------------


def test_check_a_good_config_prints_what_the_firmware_will_run(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert cli_main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("%s: OK" % path)
    assert "home -60.0 deg" in out and "rate <= 5.00 deg/s" in out
    assert "program: 30.0 deg, hold 60 s, no rocking" in out


@pytest.mark.parametrize("data, expected", [
    ('{"table": {"home_deg": -60.0,\n  "lever_m": 0.18 "base_m": 0.8}}',
     "is not valid JSON: Expecting ',' delimiter at line 2, column 19"),
    ('{"table": {}, }', "is not valid JSON: Expecting property name enclosed in double quotes "
     "at line 1, column 15"),
    (b"\xff{}", "is not UTF-8 text (byte 0)"),
    ("[]", "must hold a JSON object with sections table, limits, program, got a list"),
    ({**GOOD, "table": [1]}, "table must be an object of keys, got a list"),
    (with_("program", "hold_s", "60"), "program.hold_s must be a number of s, got '60'"),
    (with_("program", "target_angle_deg", 95),
     "program.target_angle_deg = 95 is outside the allowed range -30.0 .. 90.0 deg"),
    (with_("table", "home_deg", -80),
     "table.home_deg = -80 is outside the allowed range -70.0 .. -45.0 deg"),
    ({**GOOD, "network": {}}, "unknown section 'network' (allowed: table, limits, program)"),
    (with_("table", "colour", "red"), "table: unknown key 'colour' (allowed: home_deg,"),
    (with_("limits", "rate_max_dps", 7.5),
     "limits.rate_max_dps = 7.5 is outside the allowed range 1.0 .. 6.0 deg/s"),
    (with_("limits", "jerk_max_dps3", 150),
     "limits.jerk_max_dps3 = 150 is outside the allowed range 5.0 .. 100.0 deg/s^3"),
    (with_("limits", "accel_max_dps2", 2.0), "limits: with head_down_rate_max_dps = 3.00, "
     "accel_max_dps2 = 2.0 and jerk_max_dps3 = 100.0 a release stop takes"),
    ({"limits": {}, "program": PROGRAM}, "the 'table' section is missing"),
    ({**GOOD, "program": {**PROGRAM, "target_angle_deg": 88.0, "descent_rate_dps": 0.5}},
     "program: a session needs 467 s of actuator on-time; table.duty_on_max_s is 300 s"),
    ('{"table": %s, "program": %s, "program": {}}' % (json.dumps(TABLE), json.dumps(PROGRAM)),
     "key 'program' is given twice in one object"),
])  # fmt: skip
def test_check_refuses_every_kind_of_bad_config_naming_it(tmp_path, capsys, data, expected):
    path = write(tmp_path, data)
    assert cli_main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("%s: REFUSED" % path)
    assert expected in err, err


def test_check_from_the_shell_exits_1_or_2_without_a_traceback(tmp_path):
    out = cli("config", "check", str(write(tmp_path, '{"table": {\n\n  "home_deg": -60,,}}')))
    assert out.returncode == 1
    assert "line 3, column 19" in out.stderr and "Traceback" not in out.stderr + out.stdout
    out = cli("config", "check", str(write(tmp_path, with_("limits", "rate_max_dps", 99))))
    assert out.returncode == 1 and "limits.rate_max_dps = 99 is outside" in out.stderr
    assert "Traceback" not in out.stderr
    out = cli("config", "check", str(tmp_path / "missing.json"))
    assert out.returncode == 2 and "cannot read" in out.stderr and "Traceback" not in out.stderr
    out = cli("config")
    assert out.returncode == 2 and "usage:" in out.stderr


# --- show and push on the virtual board ------------------------------------------------------


@pytest.fixture(scope="module")
def vb():
    with VirtualBoard() as board:
        yield board


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_show_names_a_missing_and_a_bad_config_on_the_board(vb, capsys):
    (vb.root / "config.json").unlink(missing_ok=True)
    assert cli_main(["config", "show", "--port", vb.port]) == 1
    assert "config.json on %s: no such file" % vb.port in capsys.readouterr().err
    (vb.root / "config.json").write_text(json.dumps(with_("program", "rock_period_s", 2)))
    assert cli_main(["config", "show", "--port", vb.port]) == 1
    captured = capsys.readouterr()
    assert '"rock_period_s": 2' in captured.out  # printed as the board has it
    assert "program.rock_period_s = 2 is outside the allowed range 8.0 .. 120.0 s" in captured.err


def test_push_writes_safely_verifies_and_updates_the_manifest(vb, tmp_path, capsys):
    old = b'{"old": true}\n'
    (vb.root / "config.json").write_bytes(old)
    main_py = b"print('main')\n"
    (vb.root / "main.py").write_bytes(main_py)
    manifest = {"board": "rpi_pico", "files": {"config.json": sha(old), "main.py": sha(main_py)}}
    (vb.root / "manifest.json").write_bytes(D.make_manifest("rpi_pico", manifest["files"]))
    path = write(tmp_path, GOOD)
    assert cli_main(["config", "push", str(path), "--port", vb.port]) == 0
    out = capsys.readouterr().out
    assert "wrote config.json" in out and "wrote manifest.json" in out
    assert (vb.root / "config.json").read_bytes() == path.read_bytes()
    assert not list(vb.root.glob("*.tmp"))
    after = json.loads((vb.root / "manifest.json").read_bytes())
    assert after == {"board": "rpi_pico",
                     "files": {"config.json": sha(path.read_bytes()), "main.py": sha(main_py)}}
    # The boot self-test's file check, with the firmware's own code, passes.
    from firmware.selftest import check_files

    class Stand:
        name = "rpi_pico"
        wdt = None

    def read_hash(p):
        return sha((vb.root / p).read_bytes())

    assert check_files(Stand(), after, read_hash).ok
    # And show reads it back, valid.
    assert cli_main(["config", "show", "--port", vb.port]) == 0
    assert "config.json on %s: OK" % vb.port in capsys.readouterr().out


def test_push_refuses_a_bad_config_and_writes_nothing(vb, tmp_path, capsys):
    before = b'{"before": 1}\n'
    (vb.root / "config.json").write_bytes(before)
    path = write(tmp_path, with_("limits", "head_down_rate_max_dps", 4.0))
    assert cli_main(["config", "push", str(path), "--port", vb.port]) == 1
    err = capsys.readouterr().err
    assert "limits.head_down_rate_max_dps = 4.0 is outside the allowed range 0.2 .. 3.0" in err
    assert "nothing written" in err
    assert (vb.root / "config.json").read_bytes() == before


def test_push_without_a_manifest_writes_only_the_config(vb, tmp_path, capsys):
    (vb.root / "manifest.json").unlink(missing_ok=True)
    path = write(tmp_path, GOOD)
    assert cli_main(["config", "push", str(path), "--port", vb.port]) == 0
    assert "no manifest.json on the board" in capsys.readouterr().out
    assert not (vb.root / "manifest.json").exists()
    assert (vb.root / "config.json").read_bytes() == path.read_bytes()


def test_a_copy_damaged_on_the_way_replaces_nothing(vb, tmp_path, monkeypatch):
    before = b'{"before": 2}\n'
    (vb.root / "config.json").write_bytes(before)
    real_run = D.Device.run

    def run(self, *commands):
        chained = []
        for cmd in commands:
            chained.append(cmd)
            if cmd[:2] == ["fs", "cp"] and cmd[-1] == ":config.json.tmp":
                chained.append(["exec", "f = open('config.json.tmp', 'ab')\nf.write(b'x')\n"
                                        "f.close()"])
        return real_run(self, *chained)

    monkeypatch.setattr(D.Device, "run", run)
    device = D.Device(vb.port, timeout=TIMEOUT_S)
    with pytest.raises(D.DeployError, match=r"config\.json\.tmp: sha256 on the device"):
        config_cmd.push_file(device, "config.json", json.dumps(GOOD).encode(), True,
                             log=lambda _m: None)
    assert (vb.root / "config.json").read_bytes() == before
    assert not (vb.root / "config.json.tmp").exists()


def test_an_unreachable_board_fails_with_status_1(tmp_path):
    out = cli("config", "show", "--port", "/dev/ttyNOPE", "--timeout", "20")
    assert out.returncode == 1 and "mpremote failed on /dev/ttyNOPE" in out.stderr
    assert "Traceback" not in out.stderr
