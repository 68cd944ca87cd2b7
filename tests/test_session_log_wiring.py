"""main.py writes the session log and prints telemetry, as on a board (`main.start`).

What these tests protect:
- a session that ends appends one record to sessions.log (firmware/session_log.py,
  CRC-checked), with the program, peak angle, time inverted, the 5 s series,
  how it ended and the faults; the profile's history gets the same figures
  (the progression is fed from that record); a session ended by letting go is
  logged as "released" and does not advance the progression;
- a boot away from home is logged as "power_loss" once the table is home;
- a session log that cannot be written costs the log line only: the profile
  is still updated;
- SessionWatch tells a session cut short by the duty budget from a completed
  one (logged "fault" with faults ["duty_budget"]), and names a latched fault;
  its copy of the controller's budget margin matches the controller's;
- the telemetry main.py prints at about 10 Hz is what `host_tools monitor`
  parses: every line a valid @T1 record, shown as status lines.
"""

import io
import types

import pytest

import main
from firmware import session as S
from firmware import session_log as SL
from host_tools.monitor import Display, Monitor
from host_tools.telemetry import parse_line
from sim.clock import VirtualClock
from tests.test_boot_config_profile import T0, Bench, cleared_profile, press_hold


def log_records(bench):
    records, problems = SL.read_records(str(bench.dir))
    assert problems == []
    return records


def test_a_completed_session_is_logged_and_the_profile_gets_the_same_record(
        tmp_path, monkeypatch, capsys):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(settings={"sessions_per_step": 1}))
    bench.start()
    bench.run(320.0, press_hold(bench, 315.0))
    assert bench.states() == ["STARTUP", "HOME", "DESCENDING", "HOLDING", "RETURNING", "HOME"]
    [rec] = log_records(bench)
    SL.check_record(rec)
    assert rec["ended"] == "completed" and rec["faults"] == []
    assert rec["program"]["target_angle_deg"] == 15.0  # the profile's program, capped
    assert rec["peak_angle_deg"] == pytest.approx(15.0, abs=1.0)
    assert T0 <= rec["start_s"] <= T0 + 5
    assert 150 < rec["duration_s"] < 320
    assert 0 < rec["inverted_s"] < rec["duration_s"]
    series = rec["angle_series_deg"]
    assert abs(len(series) - (rec["duration_s"] // 5 + 1)) <= 1  # one sample every 5 s
    assert max(series) == pytest.approx(rec["peak_angle_deg"], abs=0.2)
    [hist] = bench.profile()["history"]
    assert hist["ended"] == "completed"
    assert hist["peak_angle_deg"] == rec["peak_angle_deg"]
    assert hist["duration_s"] == rec["duration_s"] and hist["start_s"] == rec["start_s"]
    assert bench.profile()["progress"]["level_deg"] == 25
    assert "log: session written (completed)" in capsys.readouterr().out


def test_letting_go_is_logged_as_released_and_does_not_advance(tmp_path, monkeypatch):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(settings={"sessions_per_step": 1}))
    bench.start()
    bench.run(60.0, press_hold(bench, 20.0))
    assert "EMERGENCY_RETURN" in bench.states() and bench.states()[-1] == "HOME"
    [rec] = log_records(bench)
    assert rec["ended"] == "released" and rec["faults"] == []
    profile = bench.profile()
    assert [r["ended"] for r in profile["history"]] == ["released"]
    assert profile["progress"]["level_deg"] == 15 and profile["progress"]["completed"] == 0


def test_a_boot_away_from_home_is_logged_as_a_power_loss(tmp_path, monkeypatch):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(), angle_deg=30.0)
    bench.start()
    bench.run(110.0)
    assert bench.states() == ["STARTUP", "RECOVERING", "HOME"]
    [rec] = log_records(bench)
    assert rec["ended"] == "power_loss" and rec["program"] == {}
    assert rec["peak_angle_deg"] == pytest.approx(30.0, abs=1.5)
    assert rec["inverted_s"] > 0  # the way home from 30 deg, head-down part
    [hist] = bench.profile()["history"]
    assert hist["ended"] == "power_loss" and hist["duration_s"] == 0.0


def test_a_log_that_cannot_be_written_still_updates_the_profile(tmp_path, monkeypatch, capsys):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(), angle_deg=30.0)
    app = bench.start()

    def full(self, record):
        raise OSError(28, "ENOSPC")

    monkeypatch.setattr(SL.SessionLog, "append", full)
    bench.run(110.0)
    assert "log: session not written to the session log" in capsys.readouterr().out
    assert isinstance(app.therapy.log_error, OSError)
    assert len(bench.profile()["history"]) == 1
    assert not (tmp_path / SL.DEFAULT_NAME).exists()


# --- SessionWatch: how a session ended ------------------------------------------------


def fake_controller():
    ctl = types.SimpleNamespace(fault=0, budget=types.SimpleNamespace(cuts=0))
    ctl.estimator = types.SimpleNamespace(angle_mdeg=-60000)
    ctl.session = types.SimpleNamespace(state=S.HOME, hold_target_mdeg=30000,
                                        home_mdeg=-60000, return_rate_mdps=1000)
    return ctl


def run_session(ctl, watch, states, at_returning=None):
    clock = watch._clock
    assert watch.update(ctl) is None
    out = None
    for state in states:
        for _ in range(50):
            clock.advance_us(10_000)
            if state in (S.HOLDING, S.ROCKING):
                ctl.estimator.angle_mdeg = 30000
            if state == S.RETURNING and at_returning is not None:
                at_returning(ctl)
                at_returning = None
            ctl.session.state = state
            rec = watch.update(ctl)
            if rec is not None:
                out = rec
    return out


def test_the_watch_tells_budget_cuts_faults_and_completions_apart():
    normal = (S.DESCENDING, S.HOLDING, S.RETURNING, S.HOME)

    def cut(ctl):  # the controller's _check_budget ends the session early
        ctl.budget.cuts += 1

    def latch(ctl):
        ctl.fault = 5

    for at, ended, faults in ((None, "completed", []), (cut, "fault", ["duty_budget"]),
                              (latch, "fault", [main.FAULT_NAMES[5]])):
        watch = main.SessionWatch(VirtualClock(), lambda: None)
        watch.set_program({"target_angle_deg": 30.0})
        rec = run_session(fake_controller(), watch, normal, at)
        assert rec["ended"] == ended and rec["faults"] == faults
        assert rec["program"] == {"target_angle_deg": 30.0} and rec["peak_angle_deg"] == 30.0
        SL.check_record(rec)
        assert main.therapy_record(rec)["ended"] == ended


# --- telemetry --------------------------------------------------------------------------


def test_main_prints_telemetry_at_10_hz_that_monitor_parses(tmp_path, monkeypatch, capsys):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile())
    bench.start()
    capsys.readouterr()
    bench.run(30.0, press_hold(bench, 10.0))
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("@T")]
    assert 295 <= len(lines) <= 301  # 10 Hz over 30 s
    recs = [parse_line(ln) for ln in lines]
    states = {r.state for r in recs}
    assert {"HOME", "DESCENDING"} <= states
    assert any(r.button for r in recs) and not recs[-1].button
    assert all(r.fault is None for r in recs)
    gaps = {(recs[i + 1].ticks_ms - recs[i].ticks_ms) % 2**30 for i in range(len(recs) - 1)}
    assert gaps == {100}  # across the ticks wrap of the simulator's clock
    shown = io.StringIO()
    mon = Monitor(Display(shown, live=False), err=io.StringIO())
    mon.feed(out.encode())
    mon.flush()
    assert mon.records == len(lines) and mon.bad == 0
    status = shown.getvalue().splitlines()
    assert sum(ln.startswith(("HOME ", "DESCENDING ")) for ln in status) >= len(lines) // 2
    assert "bad telemetry" not in shown.getvalue()


def test_no_telemetry_unless_asked(tmp_path, monkeypatch, capsys):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile())
    bench.app = main.start(bench.board, wall_clock=bench.now_s, telemetry=False)
    bench.run(2.0)
    assert "@T1" not in capsys.readouterr().out
