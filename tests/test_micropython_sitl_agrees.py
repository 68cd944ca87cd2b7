"""The firmware on the real MicroPython interpreter does exactly what it does on CPython.

`python -m sim run --runtime micropython` runs the same firmware files inside
the MicroPython unix port against the same simulated table
(sim/micropython_runtime.py, sim/mp/harness.py). The control tick is integer
fixed point and gets the same inputs at the same virtual times, so the two
traces must agree row for row, column for column: same state sequence, same
estimate and commands, hence the same plant angles (measured difference:
0.0 in every scenario here). Any difference means the two interpreters
compute differently (float, integer width, division or ordering semantics)
or the runtime feeds the firmware differently; both must be fixed, not
tolerated. The safety checks of sim/checks.py must pass on the MicroPython
trace as well.
"""

import os
import subprocess
import sys
import tomllib

import pytest

from sim import checks
from sim.board import SimBoard
from sim.micropython_runtime import MicroPythonRun, _restore, _save
from sim.mpu6050_model import ACCEL_XOUT_H
from sim.runner import Run, write_csv
from sim.scenario import parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCENARIO = """
duration_s = {duration}
seed = {seed}
[user]
mass_kg = {mass}
height_m = 1.78
[program]
target_angle_deg = {target}
hold_s = {hold}
rock_amplitude_deg = {rock}
rock_period_s = 8.0
rock_cycles = 1
rest_s = 2.0
[[event]]
at_s = 2.0
button = "press"
"""

# name: (scenario values, extra [[event]] tables, SimBoard options)
CASES = {
    # let go mid-descent: braking ramp, emergency return home
    "release_mid_descent": (
        {"duration": 35.0, "seed": 11, "mass": 80.0, "target": 30.0, "hold": 20.0, "rock": 0.0},
        [(14.0, "button", "release")], {}),
    # IMU stops answering while holding: IMU lost, blind return to the home switch
    "imu_disconnect_holding": (
        {"duration": 70.0, "seed": 12, "mass": 110.0, "target": -30.0, "hold": 30.0, "rock": 0.0},
        [(25.0, "fault", "imu_disconnect")], {}),
    # IMU data frozen mid-descent
    "imu_freeze_descent": (
        {"duration": 45.0, "seed": 13, "mass": 60.0, "target": 20.0, "hold": 10.0, "rock": 0.0},
        [(12.0, "fault", "imu_freeze")], {}),
    # descend, hold, rock, rest near horizontal, return, home
    "full_session": (
        {"duration": 75.0, "seed": 14, "mass": 80.0, "target": -20.0, "hold": 3.0, "rock": 3.0},
        [], {}),
    # the loop hangs while holding: the dead-man stops the motor, watchdog
    # reset, boot, recovery home; on the other bridge and IMU the firmware supports
    "watchdog_reset_dual_pwm_lsm6dsox": (
        {"duration": 55.0, "seed": 15, "mass": 80.0, "target": -20.0, "hold": 20.0, "rock": 0.0},
        [(28.0, "fault", "loop_hang")], {"hbridge": "dual_pwm", "imu": "lsm6dsox"}),
}


def _scenario(values, events):
    text = _SCENARIO.format(**values)
    for at_s, key, value in events:
        text += '[[event]]\nat_s = %s\n%s = "%s"\n' % (at_s, key, value)
    return parse(tomllib.loads(text), "test")


@pytest.mark.parametrize("name", sorted(CASES))
def test_micropython_trace_equals_cpython_trace(name):
    values, events, board_options = CASES[name]
    scenario = _scenario(values, events)
    cpython = Run(scenario, board=SimBoard(scenario.user, seed=scenario.seed, **board_options))
    expected = cpython.run()
    run = MicroPythonRun(scenario,
                         board=SimBoard(scenario.user, seed=scenario.seed, **board_options))
    got = run.run()

    assert len(got) == len(expected)
    assert got["state"] == expected["state"], "state sequences differ"
    worst = {
        col: max(abs(a - b) for a, b in zip(got[col], expected[col], strict=True))
        for col in ("angle_deg", "angle_est_deg", "rate_dps", "actuator_cmd", "plan_deg")
    }
    assert worst == dict.fromkeys(worst, 0.0), "largest differences: %r" % worst
    for col in expected.columns:
        assert got[col] == expected[col], "column %s differs" % col
    violations = checks.all_violations(
        got, home_deg=run.table.home_mdeg / 1000.0,
        emergency_rate_dps=run.limits.emergency_rate_mdps / 1000.0,
    )
    assert violations == []


def test_expected_paths_were_taken():
    """The cases above reach the states they are there for (on CPython: the
    MicroPython traces equal these)."""
    reached = {}
    for name, (values, events, board_options) in CASES.items():
        scenario = _scenario(values, events)
        board = SimBoard(scenario.user, seed=scenario.seed, **board_options)
        run = Run(scenario, board=board)
        trace = run.run()
        reached[name] = (set(trace["state"]), run.firmware_resets)
    assert "EMERGENCY_RETURN" in reached["release_mid_descent"][0]
    assert {"BLIND_RETURN", "HOME"} <= reached["imu_disconnect_holding"][0]
    assert "BLIND_RETURN" in reached["imu_freeze_descent"][0]
    assert {"HOLDING", "ROCKING", "RETURNING"} <= reached["full_session"][0]
    assert "RECOVERING" in reached["watchdog_reset_dual_pwm_lsm6dsox"][0]
    assert reached["watchdog_reset_dual_pwm_lsm6dsox"][1] == 1


def test_cli_runtime_micropython_writes_the_same_csv(tmp_path):
    values, _events, _ = CASES["release_mid_descent"]
    text = _SCENARIO.format(**dict(values, duration=20.0))
    text += '[[event]]\nat_s = 12.0\nbutton = "release"\n'
    path = tmp_path / "s.toml"
    path.write_text(text)
    out = {}
    for runtime in ("cpython", "micropython"):
        out[runtime] = tmp_path / ("%s.csv" % runtime)
        proc = subprocess.run(
            [sys.executable, "-m", "sim", "run", str(path), "--trace", str(out[runtime]),
             "--runtime", runtime],
            cwd=ROOT, capture_output=True, text=True, check=False,
            env=dict(os.environ, PYTHONPATH=ROOT),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out["micropython"].read_bytes() == out["cpython"].read_bytes()


def test_reading_the_bridge_between_steps_changes_nothing(tmp_path):
    """Pending timer firings are delivered when the board's duty is read
    (here after every step, as a test or a plot might): same trace."""
    values, _events, _ = CASES["release_mid_descent"]
    scenario = _scenario(dict(values, duration=20.0), [(12.0, "button", "release")])
    expected = Run(scenario).run()
    run = MicroPythonRun(scenario)
    duties = []
    try:
        while run.t_ms < scenario.duration_ms:
            run.step()
            duties.append(run.board.duty)
    finally:
        run.close()
    write_csv(run.trace, tmp_path / "mp.csv")
    write_csv(expected, tmp_path / "cp.csv")
    assert (tmp_path / "mp.csv").read_bytes() == (tmp_path / "cp.csv").read_bytes()
    assert any(d > 0 for d in duties) and any(d < 0 for d in duties)


def test_an_unused_read_ahead_leaves_the_imu_model_as_it_was():
    """The runtime reads the IMU burst before the tick; if the firmware does
    not read it, the model (registers, pointer, noise generator) is put back,
    so the next samples are those the CPython runtime would see."""
    scenario = _scenario(CASES["full_session"][0], [])
    reference = SimBoard(scenario.user, seed=3)
    board = SimBoard(scenario.user, seed=3)
    for b in (reference, board):
        b.i2c.writeto_mem(b.imu_addr, 0x6B, b"\x01")  # wake up
    buf = bytearray(14)
    snapshot = _save(board.imu)
    for _ in range(3):
        board.step(2000)
        board.i2c.readfrom_mem_into(board.imu_addr, ACCEL_XOUT_H, buf)
    _restore(snapshot)
    reference.step(6000)
    want, got = bytearray(14), bytearray(14)
    reference.i2c.readfrom_mem_into(reference.imu_addr, ACCEL_XOUT_H, want)
    board.i2c.readfrom_mem_into(board.imu_addr, ACCEL_XOUT_H, got)
    assert got == want
