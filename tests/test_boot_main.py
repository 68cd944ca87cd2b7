"""main.py on the simulated board: boot recovery after a power loss, and what
a failed self-test does (actuator off, buzzer + LED, reasons printed, no
session; home first when only the button or switches failed)."""

import errno
import hashlib
import json

import pytest

import main
from firmware.config import Program
from sim import checks
from sim.board import SimBoard
from sim.plant import User
from sim.runner import Run
from sim.scenario import Event, Scenario

USER = User(80.0, 1.78)
PROGRAM = dict(main.DEFAULT_CONFIG["program"])
RETURN_RATE_DPS = 2.0


def sim_config(board):
    """DEFAULT_CONFIG with the simulated table's geometry and IMU mounting."""
    table = dict(board.table_geometry)
    table["imu_mount_offset_deg"] = board.imu_mount_offset_mdeg / 1000.0
    return {"program": dict(PROGRAM), "limits": {}, "table": table}


def boot(board, **kwargs):
    return main.boot(board, config=sim_config(board), **kwargs)


class Log:
    """One row per 10 ms step of a booted App."""

    def __init__(self):
        self.rows = []

    def column(self, name):
        return [r[name] for r in self.rows]

    def states(self):
        seen = []
        for s in self.column("state"):
            if not seen or seen[-1] != s:
                seen.append(s)
        return seen


def run_app(board, app, seconds, log=None, actions=None):
    """Step plant and clock, then one App tick, every 10 ms."""
    log = log or Log()
    actions = dict(actions or {})
    start = len(log.rows)
    for k in range(int(round(seconds * 100))):
        t_ms = (start + k) * 10
        if t_ms in actions:
            actions.pop(t_ms)(board)
        board.step(10_000)
        app.tick()
        ctl = app.controller
        log.rows.append({
            "t_s": (start + k + 1) / 100,
            "mode": app.mode_name,
            "state": ctl.state_name if ctl is not None else "-",
            "angle": board.plant.angle_deg,
            "rate": board.plant.rate_dps,
            "duty": board.duty,
            "buzzer": board.buzzer.value(),
            "led": board.led.value(),
        })
    return log


# --- boot recovery after a power loss ------------------------------------------------


@pytest.mark.parametrize("imu, bridge", [("mpu6050", "pwm_dir"), ("lsm6dsox", "dual_pwm")])
def test_power_back_mid_session_brings_the_table_home_slowly_without_a_press(imu, bridge):
    board = SimBoard(USER, imu=imu, hbridge=bridge, angle_deg=40.0)
    app = boot(board)
    assert app.mode_name == "run" and app.selftest.ok
    log = run_app(board, app, 58.0)
    assert log.states() == ["STARTUP", "RECOVERING", "HOME"]
    rates = log.column("rate")
    assert max(rates) < 0.05  # never head-down
    assert min(rates) > -1.25 * RETURN_RATE_DPS  # slowly: the program's return rate
    assert log.column("angle")[-1] == pytest.approx(-60.0, abs=1.0)
    assert board.shoot_through_events == 0


def test_a_session_starts_only_after_recovery_and_a_fresh_press():
    board = SimBoard(USER, angle_deg=40.0)
    app = boot(board)
    # Pressed (and held) while the table is still recovering: no session at home.
    log = run_app(board, app, 60.0, actions={20_000: SimBoard.press_button})
    assert log.states() == ["STARTUP", "RECOVERING", "HOME"]
    assert max(log.column("rate")) < 0.05
    run_app(board, app, 2.0, log, actions={len(log.rows) * 10 + 500: SimBoard.release_button})
    run_app(board, app, 3.0, log, actions={len(log.rows) * 10 + 500: SimBoard.press_button})
    assert log.states()[-1] == "DESCENDING"
    assert log.column("rate")[-1] > 0.5


def test_runner_trace_of_a_power_loss_recovery_keeps_every_safety_check():
    """The same boot through sim.runner (the trace the CLI writes): STARTUP,
    RECOVERING, HOME with no press, then a session on the first press."""
    events = [Event(62_000, button="press")]
    scenario = Scenario(70_000, 4, USER, Program(PROGRAM), dict(PROGRAM), events)
    board = SimBoard(USER, seed=4, angle_deg=40.0)
    trace = Run(scenario, board=board).run()
    assert checks.all_violations(trace) == []
    seen = []
    for s in trace["state"]:
        if not seen or seen[-1] != s:
            seen.append(s)
    assert seen == ["STARTUP", "RECOVERING", "HOME", "DESCENDING"]
    home = trace["state"].index("HOME")
    assert trace["t_s"][home] < 62.0


def test_a_healthy_boot_at_home_runs_sessions():
    board = SimBoard(USER)
    app = boot(board)
    assert app.mode_name == "run"
    log = run_app(board, app, 6.0, actions={4000: SimBoard.press_button})
    assert log.states() == ["STARTUP", "HOME", "DESCENDING"]


# --- a failed self-test -----------------------------------------------------------------


def test_failed_self_test_at_home_keeps_the_actuator_off_signals_and_runs_no_session(capsys):
    board = SimBoard(USER)
    board.far_switch.level_fn = lambda: 1  # broken wire to the far switch
    app = boot(board)
    out = capsys.readouterr().out
    assert app.mode_name == "halted" and app.controller is None
    assert "SELF-TEST FAILED" in out and "far end switch reads engaged" in out
    log = run_app(board, app, 12.0, actions={1000: SimBoard.press_button,
                                             6000: SimBoard.release_button,
                                             7000: SimBoard.press_button})
    assert set(log.column("duty")) == {0.0}
    assert max(abs(a + 60.0) for a in log.column("angle")) < 1e-9
    assert set(log.column("buzzer")) == {0, 1} and set(log.column("led")) == {0, 1}
    # Three beeps every 2 s, LED at 2 Hz (the first 1.9 s of the pattern).
    buzz = log.column("buzzer")[:190]
    assert sum(1 for i in range(1, 190) if buzz[i] and not buzz[i - 1]) + buzz[0] == 3
    led = log.column("led")[:190]
    assert sum(1 for i in range(1, 190) if led[i] != led[i - 1]) == 7
    assert not board.wdt.expired  # the halt loop feeds the watchdog
    assert "far end switch" in capsys.readouterr().out  # reported again after 10 s


def test_button_held_at_boot_away_from_home_goes_home_then_halts(capsys):
    board = SimBoard(USER, angle_deg=20.0)
    board.press_button()
    app = boot(board)
    assert app.mode_name == "recover_only"
    assert "held at boot" in capsys.readouterr().out
    log = run_app(board, app, 50.0)
    assert log.states() == ["STARTUP", "RECOVERING", "HOME"]
    assert app.mode_name == "halted"
    assert log.column("angle")[-1] == pytest.approx(-60.0, abs=1.0)
    assert max(log.column("rate")) < 0.05
    assert "table home" in capsys.readouterr().out
    # Halted for good: a fresh press does nothing.
    run_app(board, app, 6.0, log, actions={len(log.rows) * 10 + 500: SimBoard.release_button,
                                           len(log.rows) * 10 + 2000: SimBoard.press_button})
    assert set(log.column("duty")[-500:]) == {0.0}
    assert log.column("angle")[-1] == pytest.approx(-60.0, abs=1.0)


def test_imu_dead_at_boot_leaves_the_table_where_it_is(capsys):
    board = SimBoard(USER, angle_deg=20.0)
    board.imu.nack = True
    app = boot(board)
    assert app.mode_name == "halted"
    assert "imu: mpu6050 at 0x68 does not answer" in capsys.readouterr().out
    log = run_app(board, app, 3.0, actions={500: SimBoard.press_button})
    assert set(log.column("duty")) == {0.0}
    assert log.column("angle")[-1] == pytest.approx(20.0, abs=1e-9)


def test_a_file_hash_mismatch_halts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_bytes(b"edited on the device\n")
    manifest = {"board": "sim", "files": {"main.py": hashlib.sha256(b"deployed\n").hexdigest()}}
    board = SimBoard(USER, angle_deg=20.0)
    app = boot(board, manifest=manifest)
    assert app.mode_name == "halted"  # firmware that is not what was deployed: not even recovery
    assert "files: main.py has SHA-256" in capsys.readouterr().out


def test_a_missing_manifest_halts_naming_it(tmp_path):
    manifest, error = main.read_manifest(str(tmp_path / "manifest.json"))
    assert manifest is None and error.startswith("files: ") and "cannot be read" in error
    board = SimBoard(USER)
    app = boot(board, manifest=manifest, manifest_error=error)
    assert app.mode_name == "halted" and app.reasons == [error]


def test_read_manifest(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"board": "rpi_pico", "files": {"main.py": "ab" * 32}}))
    manifest, error = main.read_manifest(str(path))
    assert error is None and manifest["board"] == "rpi_pico"
    path.write_text("{not json")
    manifest, error = main.read_manifest(str(path))
    assert manifest is None and "not valid JSON" in error


def test_a_bad_config_halts_naming_the_key(capsys):
    board = SimBoard(USER)
    config = sim_config(board)
    config["program"]["target_angle_deg"] = 120.0
    app = main.boot(board, config=config)
    assert app.mode_name == "halted"
    assert "config: program.target_angle_deg = 120.0 is outside" in capsys.readouterr().out


def test_the_default_config_is_valid_and_gentle():
    program, limits, table = main.load_config(main.DEFAULT_CONFIG)
    assert program.target_mdeg == 30000 and program.rock_amplitude_mdeg == 0
    assert program.descent_rate_mdps == 2000 and table.home_mdeg == -60000
    assert limits.rate_max_mdps == 6000


def test_an_exception_in_the_control_loop_switches_the_motor_off_and_ends_main():
    board = SimBoard(USER)
    app = boot(board)
    ctl = app.controller
    ticks = []
    inner = ctl.tick

    def tick():
        ticks.append(1)
        if len(ticks) == 600:
            board.motor_pwm.duty_u16(30000)  # whatever the bridge was doing
            raise OSError(errno.EIO, "EIO")
        inner()

    ctl.tick = tick
    with pytest.raises(OSError):
        app.run()  # Controller.run() never returns; only the exception ends it
    assert board.motor_pwm.duty_u16() == 0  # the watchdog resets the board next


# --- Ctrl-C (mpremote attaching for a deploy) -------------------------------------------


def _interrupt_after(app, target, ticks):
    """Make `target.tick` raise KeyboardInterrupt on its `ticks`-th call (Ctrl-C)."""
    inner = target.tick
    calls = []

    def tick():
        calls.append(1)
        if len(calls) == ticks:
            raise KeyboardInterrupt
        inner()

    target.tick = tick
    return calls


def _idle_at_the_repl(board, seconds):
    """The board at the REPL: time passes, nothing runs but the timers."""
    for _ in range(int(round(seconds * 100))):
        board.step(10_000)


def test_ctrl_c_at_home_stops_the_motor_and_the_timer_keeps_the_watchdog_fed(capsys):
    board = SimBoard(USER)
    app = boot(board)
    assert app.mode_name == "run"
    _interrupt_after(app, app.controller, 50)
    app.run()  # returns to the REPL instead of raising
    out = capsys.readouterr().out
    assert "interrupted (Ctrl-C): motor off, watchdog fed by a timer" in out
    assert "WARNING" not in out  # at home: a deploy is a service action there
    assert board.duty == 0.0
    _idle_at_the_repl(board, 5.0)  # 5 x the watchdog's timeout, no control tick
    assert not board.wdt.expired and board.wdt.late_feeds == 0
    assert board.duty == 0.0


@pytest.mark.parametrize("bridge", ["pwm_dir", "dual_pwm"])
def test_ctrl_c_mid_descent_switches_the_motor_off_at_once_and_warns(capsys, bridge):
    board = SimBoard(USER, hbridge=bridge)
    app = boot(board)
    log = run_app(board, app, 8.0, actions={1000: SimBoard.press_button})
    assert log.states()[-1] == "DESCENDING" and board.duty > 0.1
    assert board.motor_power.value() == 1  # the controller closed the power relay
    capsys.readouterr()
    _interrupt_after(app, app.controller, 1)
    app.run()
    out = capsys.readouterr().out
    assert board.duty == 0.0 and board.motor_pwm.duty_u16() == 0
    assert board.motor_power.value() == 0  # and the relay is open again
    if bridge == "dual_pwm":
        assert board.motor_pwm_retract.duty_u16() == 0 and board.motor_enable.value() == 0
    assert board.buzzer.value() == 0 and board.led.value() == 0
    assert "WARNING: table at" in out and "not at home (-60.0 deg)" in out
    angle = board.plant.angle_deg
    _idle_at_the_repl(board, 3.0)
    assert not board.wdt.expired and board.wdt.late_feeds == 0
    assert board.duty == 0.0
    assert board.plant.angle_deg == pytest.approx(angle, abs=0.5)  # stopped, not driven
    assert board.shoot_through_events == 0


def test_ctrl_c_in_the_halt_loop_silences_the_signal_and_keeps_the_watchdog_fed(capsys):
    board = SimBoard(USER)
    board.far_switch.level_fn = lambda: 1  # a failed self-test: the halt loop runs
    app = boot(board)
    assert app.mode_name == "halted"
    calls = _interrupt_after(app, app, 120)
    app.run()  # the halt loop ticks on the board's own (virtual) clock
    assert len(calls) == 120
    out = capsys.readouterr().out
    assert "interrupted (Ctrl-C)" in out and "WARNING" not in out
    assert board.buzzer.value() == 0 and board.led.value() == 0 and board.duty == 0.0
    assert board.motor_power.value() == 0  # halted: the actuator's power is cut too
    _idle_at_the_repl(board, 5.0)
    assert not board.wdt.expired and board.wdt.late_feeds == 0
