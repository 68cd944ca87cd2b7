"""config.json on the board (firmware/device_config.py): a good file is used as
given; a bad one of every kind (missing, not JSON, wrong types, unknown
sections or keys, out of range, limits above the hard caps) leaves the
firmware on conservative defaults with a problem naming the key and the
allowed range; the limits in force never exceed the hard caps; the reader
runs on MicroPython in a 64 KB heap and is dropped after boot."""

import json
import os
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware import device_config as DC
from firmware import limits as L
from firmware.config import Limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TABLE = {"home_deg": -55.0, "lever_m": 0.2, "base_m": 0.75, "phi_offset_deg": 70.0,
         "noload_speed_mps": 0.03, "imu_mount_offset_deg": 1.5}
PROGRAM = {"target_angle_deg": 40.0, "hold_s": 90.0, "rock_amplitude_deg": 3.0,
           "rock_period_s": 12.0}
GOOD = {"table": TABLE, "limits": {"rate_max_dps": 5.0}, "program": PROGRAM}


def load(data):
    return DC.load_device_config(json.dumps(data) if not isinstance(data, str) else data)


def assert_conservative_program(program):
    assert program.target_mdeg == 15000
    assert program.rock_amplitude_mdeg == 0
    assert program.hold_ms <= 60000
    assert program.descent_rate_mdps <= 1000 and program.return_rate_mdps <= 1000
    assert program.rest_ms >= 30000  # rest near horizontal on the way up


def test_a_good_config_is_used_as_given():
    program, limits, table, problems = load(GOOD)
    assert problems == []
    assert program.target_mdeg == 40000 and program.rock_amplitude_mdeg == 3000
    assert limits.rate_max_mdps == 5000
    assert table.home_mdeg == -55000 and table.imu_mount_offset_mdeg == 1500


def test_limits_may_be_left_out_and_then_are_the_hard_caps():
    _program, limits, _table, problems = load({"table": TABLE, "program": PROGRAM})
    assert problems == []
    assert limits.rate_max_mdps == L.RATE_MAX_MDPS
    assert limits.head_down_rate_max_mdps == L.HEAD_DOWN_RATE_MAX_MDPS


def test_the_conservative_defaults_are_gentle_and_valid():
    program, limits, table, problems = DC.load_device_config(None)
    assert problems == ["config.json: no such file on the board"]
    assert_conservative_program(program)
    assert limits.rate_max_mdps == L.RATE_MAX_MDPS  # the default limits: the hard caps
    assert table.home_mdeg == -60000  # the reference table


@pytest.mark.parametrize("text, expected", [
    ('{"table": {"home_deg": -60.0,\n "lever_m" 0.18}}', "config.json is not valid JSON: "
     "Expecting ':' delimiter: line 2 column 12"),
    ("", "config.json is not valid JSON"),
    ("[1, 2]", "config.json must hold a JSON object with sections table, limits, program, "
     "got a list"),
    ("null", "config.json must hold a JSON object with sections table, limits, program, "
     "got null"),
    (b"\xff\xfe{}", "config.json is not UTF-8 text"),
])  # fmt: skip
def test_text_that_is_not_a_json_object_names_the_error(text, expected):
    program, _limits, table, problems = DC.load_device_config(text)
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    assert_conservative_program(program)
    assert table.home_mdeg == -60000


def _with(section, key, value):
    data = json.loads(json.dumps(GOOD))
    if key is None:
        data[section] = value
    else:
        data[section][key] = value
    return data


@pytest.mark.parametrize("data, expected", [
    (_with("program", "target_angle_deg", 120.0),
     "program.target_angle_deg = 120.0 is outside the allowed range -30.0 .. 90.0 deg"),
    (_with("program", "hold_s", "long"), "program.hold_s must be a number of s, got 'long'"),
    (_with("program", "rock_cycles", 2.5), "program.rock_cycles must be a whole number"),
    (_with("program", "speed", 3), "program: unknown key 'speed' (allowed: target_angle_deg,"),
    (_with("table", "home_deg", -20.0),
     "table.home_deg = -20.0 is outside the allowed range -70.0 .. -45.0 deg"),
    (_with("table", "lever_m", True), "table.lever_m must be a number of m, got True"),
    (_with("limits", "rate_max_dps", 8.0),
     "limits.rate_max_dps = 8.0 is outside the allowed range 1.0 .. 6.0 deg/s"),
    (_with("limits", "head_down_rate_max_dps", 3.5),
     "limits.head_down_rate_max_dps = 3.5 is outside the allowed range 0.2 .. 3.0 deg/s"),
    (_with("limits", "angle_max_deg", 95.0),
     "limits.angle_max_deg = 95.0 is outside the allowed range 0.0 .. 88.5 deg"),
    (_with("limits", "accel_max_dps2", 2.0), "limits: with head_down_rate_max_dps = 3.00"),
    (_with("limits", None, [1, 2]), "limits must be an object of keys, got a list"),
    (_with("program", None, 30), "program must be an object of keys, got a number"),
    ({**GOOD, "wifi": {}}, "config.json: unknown section 'wifi' (allowed: table, limits, program)"),
    ({"limits": {}, "program": PROGRAM}, "config.json: the 'table' section is missing"),
    ({"table": TABLE}, "config.json: the 'program' section is missing"),
])  # fmt: skip
def test_every_kind_of_bad_config_names_the_key_and_falls_back(data, expected):
    program, limits, _table, problems = load(data)
    assert any(p.startswith(expected) for p in problems), problems
    assert_conservative_program(program)
    assert limits.rate_max_mdps <= L.RATE_MAX_MDPS


def test_good_sections_are_kept_bad_ones_replaced():
    # A bad program: the file's table (the machine) and limits still hold.
    program, limits, table, problems = load(_with("program", "hold_s", -1))
    assert len(problems) == 1
    assert table.home_mdeg == -55000 and limits.rate_max_mdps == 5000
    assert_conservative_program(program)
    # A bad table: the reference table; a bad limits section: the hard caps.
    program, limits, table, problems = load(_with("table", "base_m", 9.0))
    assert table.home_mdeg == -60000 and limits.rate_max_mdps == 5000
    program, limits, table, problems = load(_with("limits", "jerk_max_dps3", 500.0))
    assert limits.jerk_max_mdps3 == L.JERK_MAX_MDPS3 and table.home_mdeg == -55000
    # Several problems are all named.
    data = _with("program", "rock_period_s", 1.0)
    data["table"]["lever_m"] = 5.0
    data["extra"] = 1
    problems = load(data)[3]
    assert len(problems) == 3


def test_read_device_config_reads_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GOOD))
    program, _, _, problems = DC.read_device_config(str(path))
    assert problems == [] and program.target_mdeg == 40000
    program, _, _, problems = DC.read_device_config(str(tmp_path / "none.json"))
    assert problems == ["%s: no such file on the board" % (tmp_path / "none.json")]


LIMIT_KEYS = st.sampled_from((*Limits.KEYS, "unknown_limit"))
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.integers(-1000, 1000), st.booleans(), st.text(max_size=3), st.none())


@given(st.dictionaries(LIMIT_KEYS, VALUES, max_size=6))
def test_whatever_the_limits_section_says_the_limits_never_exceed_the_hard_caps(section):
    data = {"table": TABLE, "program": PROGRAM, "limits": section}
    text = json.dumps(data)  # NaN and Infinity as Python's json writes them
    program, limits, _table, problems = DC.load_device_config(text)
    assert limits.setpoint_max_mdeg <= L.SETPOINT_MAX_MDEG
    assert limits.head_down_rate_max_mdps <= L.HEAD_DOWN_RATE_MAX_MDPS
    assert limits.rate_max_mdps <= L.RATE_MAX_MDPS
    assert limits.accel_max_mdps2 <= L.ACCEL_MAX_MDPS2
    assert limits.jerk_max_mdps3 <= L.JERK_MAX_MDPS3
    assert limits.emergency_rate_mdps <= limits.rate_max_mdps
    assert program.target_mdeg <= 90000
    if problems:
        assert_conservative_program(program)
    else:
        assert program.target_mdeg == 40000


MICROPYTHON_SCRIPT = """
import gc, sys
from firmware import config, limits
config = limits = None
gc.collect()
base = gc.mem_alloc()
from firmware import device_config
r = device_config.load_device_config(%r)
print('@@problems', r[3])
print('@@target', r[0].target_mdeg)
r = device_config.load_device_config('{"table": 1')
print('@@json', r[3])
held = gc.mem_alloc() - base
device_config.drop()
device_config = None
r = None
gc.collect()
print('@@mem', held, gc.mem_alloc() - base, 'firmware.device_config' in sys.modules)
"""


def test_runs_on_micropython_in_a_64k_heap_and_is_dropped_after():
    from host_tools.virtual_board import find_micropython

    bad = _with("limits", "rate_max_dps", 9.0)
    out = subprocess.run(
        [find_micropython(), "-X", "heapsize=64K", "-c", MICROPYTHON_SCRIPT % json.dumps(bad)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env=dict(os.environ, MICROPYPATH=ROOT),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.stdout.splitlines()
             if line.startswith("@@")}
    expected = "limits.rate_max_dps = 9.0 is outside the allowed range 1.0 .. 6.0"
    assert expected in lines["@@problems"]
    assert lines["@@target"] == "15000"
    assert "config.json is not valid JSON" in lines["@@json"]
    held, after, still_imported = lines["@@mem"].split()
    assert int(held) > 4000  # the reader and its results took real heap...
    assert int(after) < 1024  # ...which is back after drop() (interned names stay)
    assert still_imported == "False"


def test_the_control_tick_modules_do_not_import_it():
    for name in ("controller", "session", "estimator", "motion_profile", "position_loop"):
        path = os.path.join(ROOT, "firmware", name + ".py")
        with open(path) as f:
            assert "device_config" not in f.read(), name
