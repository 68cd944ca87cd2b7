"""The user-facing simulator interface: command, scenario format, trace format."""

import csv
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIRED_COLUMNS = ["t_s", "state", "button_held", "angle_deg", "angle_est_deg", "rate_dps",
                    "actuator_cmd", "actuator_current_a", "fault"]

SCENARIO = """
duration_s = {duration}
seed = 1
[user]
mass_kg = 80.0
height_m = 1.78
[program]
target_angle_deg = 30.0
hold_s = 5.0
rock_amplitude_deg = 5.0
rock_period_s = 10.0
[[event]]
at_s = 2.0
button = "press"
[[event]]
at_s = 30.0
button = "release"
{extra}
"""


def run_cli(tmp_path, text, plot=False):
    scenario = tmp_path / "s.toml"
    scenario.write_text(text)
    trace = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "sim", "run", str(scenario), "--trace", str(trace)]
    if plot:
        cmd += ["--plot", str(tmp_path / "out.png")]
    proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    return proc, trace


def test_run_writes_trace_with_contract_columns_and_plot(tmp_path):
    proc, trace = run_cli(tmp_path, SCENARIO.format(duration=60.0, extra=""), plot=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(trace) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys())[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS
    assert len(rows) == 6000  # one row per 10 ms tick
    assert float(rows[1]["t_s"]) - float(rows[0]["t_s"]) == pytest.approx(0.01)
    states = {r["state"] for r in rows}
    assert {"HOME", "DESCENDING", "EMERGENCY_RETURN"} <= states
    assert all(-1.0 <= float(r["actuator_cmd"]) <= 1.0 for r in rows)
    assert {r["button_held"] for r in rows} == {"0", "1"}
    png = (tmp_path / "out.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.parametrize(
    "mutation,needle",
    [
        (("mass_kg = 80.0", "mass_kg = 300.0"),
         "[user].mass_kg = 300.0 is outside the allowed range 40.0 .. 150.0 kg"),
        (("height_m = 1.78", "height_m = \"tall\""), "[user].height_m must be a number"),
        (("target_angle_deg = 30.0", "target_angle_deg = 120.0"),
         "[program].target_angle_deg = 120.0 is outside"),
        (("rock_period_s = 10.0", "rock_period_s = 2.0"), "[program].rock_period_s"),
        (("button = \"press\"", "button = \"push\""), "[[event]] #1.button = 'push'"),
        (("at_s = 30.0", "at_s = 99.0"), "[[event]] #2.at_s = 99.0 is outside"),
        (("seed = 1", "seed = 1\nspeed = 3"), "unknown key 'speed'"),
        (("hold_s = 5.0", "hold_s = 5.0\nturbo = true"), "[program]: unknown key 'turbo'"),
        (("[user]", "[person]"), "unknown key 'person'"),
        (("duration_s = 60.0", "duration_s = [1"), "not valid TOML"),
        (("target_angle_deg = 30.0", "target_angle_deg = 88.0\ndescent_rate_dps = 0.5"),
         "program: a session needs 505 s of actuator on-time; table.duty_on_max_s is 300 s "
         "(raise descent_rate_dps"),
    ],
)
def test_bad_scenario_is_rejected_naming_the_key_without_traceback(tmp_path, mutation, needle):
    text = SCENARIO.format(duration=60.0, extra="").replace(*mutation)
    proc, trace = run_cli(tmp_path, text)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not trace.exists()


def test_unknown_fault_name_lists_the_catalogue(tmp_path):
    extra = '[[event]]\nat_s = 10.0\nfault = "gremlins"\n'
    proc, _ = run_cli(tmp_path, SCENARIO.format(duration=60.0, extra=extra))
    assert proc.returncode == 2
    assert "'gremlins' is not in the fault catalogue" in proc.stderr
    assert "imu_freeze" in proc.stderr


def test_missing_scenario_file_is_a_clear_error(tmp_path):
    cmd = [sys.executable, "-m", "sim", "run", str(tmp_path / "nope.toml"),
           "--trace", str(tmp_path / "t.csv")]
    proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_imu_freeze_mid_descent_goes_home_without_the_imu(tmp_path):
    """The issue's example fault: the table gets home on the end switch."""
    extra = '[[event]]\nat_s = 12.0\nfault = "imu_freeze"\n'
    text = SCENARIO.format(duration=150.0, extra=extra).replace("at_s = 30.0", "at_s = 140.0")
    proc, trace = run_cli(tmp_path, text)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(trace) as f:
        rows = list(csv.DictReader(f))
    assert "imu_lost" in {r["fault"] for r in rows}
    assert rows[-1]["state"] == "HOME"
    assert float(rows[-1]["angle_deg"]) < -58.0
