"""main.py with config.json and profile.json, as on a board (`main.start`).

A bad config.json leaves the firmware running on conservative defaults
(15 deg at most, limits within the hard caps) and says so on the console,
naming the key, and on the LED (two short flashes every 2 s). The therapy
profile decides each session: none without a profile or a clearance (one
flash), the profile's level capped by config.json's program, each session
recorded in profile.json when it ends (completed, released, a power loss
found at boot), at most two a day, and the decision renewed when the day
changes. A bad profile is never overwritten. SessionWatch (with its session
recorder), the therapy check and the telemetry line between ticks allocate
nothing on MicroPython."""

import json
import os
import subprocess

import pytest

import main
from firmware import limits as L
from firmware import therapy as T
from sim.board import SimBoard
from sim.plant import User

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = User(80.0, 1.78)
T0 = 1767600000  # 2026-01-05 08:00 UTC
DAY = 86400
PROGRAM = {"target_angle_deg": 30.0, "hold_s": 20.0, "rock_amplitude_deg": 0.0,
           "rock_period_s": 10.0}


def table_of(board):
    table = dict(board.table_geometry)
    table["imu_mount_offset_deg"] = board.imu_mount_offset_mdeg / 1000.0
    return table


class Bench:
    """A SimBoard in a folder holding the board's files; a wall clock that
    follows the board's virtual time (plus `days_later`)."""

    def __init__(self, tmp_path, monkeypatch, config="good", profile=None, angle_deg=None):
        monkeypatch.chdir(tmp_path)
        self.dir = tmp_path
        self.board = SimBoard(USER, angle_deg=angle_deg)
        self.days_later = 0
        (tmp_path / "manifest.json").write_text(json.dumps({"board": "sim", "files": {}}))
        if config == "good":
            config = {"table": table_of(self.board), "program": PROGRAM}
        if config is not None:
            text = config if isinstance(config, str) else json.dumps(config)
            (tmp_path / "config.json").write_text(text)
        if profile is not None:
            text = profile if isinstance(profile, str) else json.dumps(profile)
            (tmp_path / "profile.json").write_text(text)
        self.rows = []

    def now_s(self):
        return T0 + self.board.clock.elapsed_us // 1_000_000 + self.days_later * DAY

    def start(self):
        self.app = main.start(self.board, wall_clock=self.now_s)
        return self.app

    def run(self, seconds, actions=None):
        actions = dict(actions or {})
        for _ in range(int(round(seconds * 100))):
            t_ms = len(self.rows) * 10
            if t_ms in actions:
                actions.pop(t_ms)(self.board)
            self.board.step(10_000)
            self.app.tick()
            ctl = self.app.controller
            self.rows.append((ctl.state_name, self.board.plant.angle_deg,
                              ctl.estimator.angle_mdeg, self.board.led.value()))
        return self

    def at(self, seconds_from_now):
        return (len(self.rows) + int(round(seconds_from_now * 100))) * 10

    def states(self, since=0):
        seen = []
        for row in self.rows[since:]:
            if not seen or seen[-1] != row[0]:
                seen.append(row[0])
        return seen

    def profile(self):
        return json.loads((self.dir / "profile.json").read_text())

    def flashes(self, seconds=2.0):
        """LED rising edges in the last `seconds`."""
        led = [r[3] for r in self.rows[-int(seconds * 100):]]
        return sum(1 for i in range(1, len(led)) if led[i] and not led[i - 1])


def cleared_profile(**kwargs):
    p = T.new_profile(dict(T.CLEARANCE), kwargs.pop("settings", {}))
    p.update(kwargs)
    return p


def press_hold(bench, hold_s):
    return {bench.at(0.5): SimBoard.press_button, bench.at(0.5 + hold_s): SimBoard.release_button}


# --- config.json ---------------------------------------------------------------------------


@pytest.mark.parametrize("config, named", [
    (None, "config.json: no such file on the board"),
    ('{"table": {', "config.json is not valid JSON"),
    ({"table": "reference", "program": PROGRAM}, "table must be an object of keys"),
    ({"program": {**PROGRAM, "target_angle_deg": 120.0}},
     "program.target_angle_deg = 120.0 is outside the allowed range -30.0 .. 90.0 deg"),
    ({"limits": {"head_down_rate_max_dps": 5.0}},
     "limits.head_down_rate_max_dps = 5.0 is outside the allowed range 0.2 .. 3.0 deg/s"),
    ({"motor": {}}, "config.json: unknown section 'motor'"),
])  # fmt: skip
def test_a_bad_config_runs_on_conservative_defaults_and_says_so(
        tmp_path, monkeypatch, capsys, config, named):
    if isinstance(config, dict) and "table" not in config:
        config = {"table": table_of(SimBoard(USER)), "program": PROGRAM, **config}
    bench = Bench(tmp_path, monkeypatch, config=config, profile=cleared_profile())
    app = bench.start()
    out = capsys.readouterr().out
    assert app.mode_name == "run"
    assert "config: PROBLEM in config.json; running on conservative defaults" in out
    assert "  - config: " + named in out
    limits = app.controller.limits
    assert limits.head_down_rate_max_mdps <= L.HEAD_DOWN_RATE_MAX_MDPS
    assert limits.rate_max_mdps <= L.RATE_MAX_MDPS
    assert app.therapy.program["target_angle_deg"] == 15.0
    bench.run(4.0)
    assert bench.flashes() == 2  # the config code: two short flashes every 2 s


def test_the_conservative_ceiling_holds_in_a_session(tmp_path, monkeypatch):
    # The profile would allow 45 deg; the bad config caps it at 15.
    profile = cleared_profile(progress={"level_deg": 45})
    bad = {"table": table_of(SimBoard(USER)), "program": {**PROGRAM, "hold_s": -1}}
    bench = Bench(tmp_path, monkeypatch, config=bad, profile=profile)
    bench.start()
    bench.run(150.0, press_hold(bench, 140.0))
    assert "HOLDING" in bench.states()
    assert max(r[1] for r in bench.rows) < 16.5


def test_a_good_config_caps_the_profile_and_shows_no_code(tmp_path, monkeypatch, capsys):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(progress={"level_deg": 45}))
    app = bench.start()
    assert app.config_problems == [] and "PROBLEM" not in capsys.readouterr().out
    assert app.therapy.program["target_angle_deg"] == 30.0  # config.json's program: the ceiling
    bench.run(4.0)
    assert bench.flashes(4.0) == 0



def test_a_program_the_duty_budget_never_covers_means_no_session_and_says_why(
        tmp_path, monkeypatch, capsys):
    """Every key in range, but a session needs more actuator on-time than the
    actuator's rating allows even rested (duty_on_max_s 30 s): the table stays
    home when pressed, the console names the keys, the LED says no session."""
    bench = Bench(tmp_path, monkeypatch, config=None, profile=cleared_profile())
    config = {"table": {**table_of(bench.board), "duty_on_max_s": 30.0}, "program": PROGRAM}
    (tmp_path / "config.json").write_text(json.dumps(config))
    app = bench.start()
    out = capsys.readouterr().out
    assert "NO SESSION: program: a session needs" in out
    assert "table.duty_on_max_s is 30 s (raise descent_rate_dps" in out
    assert app.config_problems == []  # each section read cleanly
    assert app.therapy.program is None and app.controller.program_ok is False
    bench.run(12.0, press_hold(bench, 10.0))
    assert bench.states() == ["STARTUP", "HOME"]  # pressed: nothing moves
    assert max(abs(r[1] + 60.0) for r in bench.rows) < 0.5
    assert bench.flashes() == 1


# --- the profile decides -------------------------------------------------------------------


@pytest.mark.parametrize("profile, reason", [
    (None, "NO SESSION: no profile.json on the board"),
    (T.new_profile({**dict(T.CLEARANCE), "glaucoma": True}),
     "NO SESSION: contraindication recorded (glaucoma): no inversion"),
    (T.new_profile({**dict(T.CLEARANCE), "doctor_approved": False}),
     "NO SESSION: no doctor's approval recorded"),
    ({"version": 1}, "NO SESSION: no medical clearance recorded in the profile"),
    ({"settings": {"max_angle_deg": 200}}, "profile.settings.max_angle_deg = 200 is outside"),
    ("{not json", "profile.json is not valid JSON"),
])  # fmt: skip
def test_no_profile_or_no_clearance_means_no_session(
        tmp_path, monkeypatch, capsys, profile, reason):
    bench = Bench(tmp_path, monkeypatch, profile=profile)
    before = (tmp_path / "profile.json").read_bytes() if profile is not None else None
    app = bench.start()
    assert reason in capsys.readouterr().out
    assert app.therapy.program is None and app.controller.program_ok is False
    bench.run(12.0, press_hold(bench, 10.0))
    assert bench.states() == ["STARTUP", "HOME"]  # pressed: nothing moves
    assert max(abs(r[1] + 60.0) for r in bench.rows) < 0.5
    assert bench.flashes() == 1
    after = (tmp_path / "profile.json").read_bytes() if profile is not None else None
    assert after == before  # a bad profile is left as it was


def test_a_completed_session_is_recorded_and_the_progression_advances(tmp_path, monkeypatch,
                                                                      capsys):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(settings={"sessions_per_step": 1}))
    app = bench.start()
    assert app.therapy.program["target_angle_deg"] == 15.0
    bench.run(320.0, press_hold(bench, 315.0))
    assert bench.states() == ["STARTUP", "HOME", "DESCENDING", "HOLDING", "RETURNING", "HOME"]
    profile = bench.profile()
    assert len(profile["history"]) == 1
    record = profile["history"][0]
    assert record["ended"] == "completed"
    assert T0 <= record["start_s"] <= T0 + 5  # pressed at 0.5 s, descending once settled
    assert record["peak_angle_deg"] == pytest.approx(15.0, abs=1.0)
    assert 150 < record["duration_s"] < 320
    assert profile["progress"]["level_deg"] == 25 and profile["progress"]["completed"] == 1
    assert app.therapy.program["target_angle_deg"] == 25.0  # the next session's
    assert "therapy: session recorded: completed" in capsys.readouterr().out
    assert not (tmp_path / "profile.json.tmp").exists()


def test_letting_go_is_recorded_and_then_the_daily_cap_refuses(tmp_path, monkeypatch, capsys):
    earlier = {"ended": "completed", "duration_s": 300, "peak_angle_deg": 15.2,
               "start_s": T0 - 3600}
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(history=[earlier]))
    app = bench.start()
    assert app.therapy.program is not None  # one session today so far
    bench.run(60.0, press_hold(bench, 20.0))
    assert "EMERGENCY_RETURN" in bench.states()
    assert bench.states()[-1] == "HOME"
    profile = bench.profile()
    assert [r["ended"] for r in profile["history"]] == ["completed", "released"]
    assert profile["progress"]["at_level"] == 0  # letting go: not comfortable yet
    out = capsys.readouterr().out
    assert "NO SESSION: 2 sessions today already (at most 2 a day)" in out
    mark = len(bench.rows)
    bench.run(8.0, press_hold(bench, 6.0))
    assert bench.states(mark) == ["HOME"]
    assert bench.flashes() == 1
    # The next day, at home, the decision is renewed within a minute.
    bench.days_later = 1
    bench.run(62.0)
    assert app.therapy.program is not None
    assert "therapy: next session 15 deg" in capsys.readouterr().out
    mark = len(bench.rows)
    bench.run(6.0, press_hold(bench, 5.0))
    assert "DESCENDING" in bench.states(mark)
    assert bench.flashes(4.0) == 0 and bench.rows[-1][3] == 0  # the code is over: LED off


def test_a_boot_away_from_home_is_recorded_as_a_power_loss(tmp_path, monkeypatch):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(), angle_deg=30.0)
    bench.start()
    bench.run(110.0)  # home at the profile's return rate, 1 deg/s
    assert bench.states() == ["STARTUP", "RECOVERING", "HOME"]
    history = bench.profile()["history"]
    assert len(history) == 1 and history[0]["ended"] == "power_loss"
    assert history[0]["peak_angle_deg"] == pytest.approx(30.0, abs=1.5)
    assert history[0]["start_s"] is not None  # counts toward today's two


def test_a_profile_that_cannot_be_written_is_kept_in_ram(tmp_path, monkeypatch, capsys):
    bench = Bench(tmp_path, monkeypatch, profile=cleared_profile(), angle_deg=30.0)
    app = bench.start()

    def broken(path, data):
        raise OSError(28, "ENOSPC")

    monkeypatch.setattr(main, "_write_json_safely", broken)
    bench.run(110.0)
    assert "profile.json could not be written" in capsys.readouterr().out
    assert len(app.therapy.profile["history"]) == 1  # the caps still count it
    assert bench.profile()["history"] == []


def test_write_json_safely_replaces_the_file_in_one_rename(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text('{"old": 1}')
    main._write_json_safely(str(path), {"new": [1, 2.5, None]})
    assert json.loads(path.read_text()) == {"new": [1, 2.5, None]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.json"]
    # A rename cut short leaves the .tmp: the next boot reads it.
    path.rename(tmp_path / "profile.json.tmp")
    th = main.Therapy(str(path))
    assert th._read() == '{"new": [1, 2.5, null]}'


# --- the wall clock ------------------------------------------------------------------------


class FakeClock:
    def __init__(self, t, epoch_year=1970):
        self.t = t
        self.epoch_year = epoch_year

    def time(self):
        return self.t

    def gmtime(self, secs):
        return (self.epoch_year, 1, 1, 0, 0, 0, 3, 1)


class FakeBoard:
    def __init__(self, clock):
        self.clock = clock


def test_the_wall_clock_is_unknown_until_set():
    assert main.wall_clock_s(FakeBoard(FakeClock(T0))) == T0
    assert main.wall_clock_s(FakeBoard(FakeClock(T0 - 946684800, 2000))) == T0  # 2000 epoch
    assert main.wall_clock_s(FakeBoard(FakeClock(1609459200))) is None  # 2021: never set
    assert main.wall_clock_s(FakeBoard(FakeClock(0, 2000))) is None
    assert main.wall_clock_s(FakeBoard(object())) is None  # no time() at all (the simulator)


# --- no allocation between ticks, on MicroPython -------------------------------------------

MP_SCRIPT = """
import time, micropython
import main
from firmware import session as S

class Est:
    angle_mdeg = -60000
    rate_mdps = -120
class Button:
    held = False
class Drive:
    duty = 0
class Ses:
    state = S.HOME
    hold_target_mdeg = 30000
class Budget:
    cuts = 0
class Ctl:
    fault = 0
    budget = Budget()
    current_ma = 1200
    estimator = Est()
    session = Ses()
    button = Button()
    drive = Drive()
    def set_program(self, p):
        pass
class Led:
    level = 0
    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v
class Board:
    clock = time
    wdt = None
    led = Led()

ctl = Ctl()
ctl.estimator.angle_mdeg = -60000  # instance attributes exist before the lock
ctl.session.state = S.HOME
th = main.Therapy(None)
th.start(ctl, None, time)
board = Board()
th.between_ticks(ctl, board)  # the first update (allocates: a state change)

def steady(n):
    i = 0
    while i < n:
        ctl.estimator.angle_mdeg = -60000 + i * 7
        th.between_ticks(ctl, board)
        i += 1

micropython.heap_lock()
try:
    steady(500)
    print("@@home ok")
finally:
    micropython.heap_unlock()
ctl.session.state = S.DESCENDING
th.between_ticks(ctl, board)  # a session starts (allocates)
micropython.heap_lock()
try:
    steady(500)
    print("@@descending ok")
finally:
    micropython.heap_unlock()
print("@@peak", th.watch.peak_mdeg)
print("@@recorded", th.watch.recorder.peak_mdeg)  # the recorder ran under the lock too

# The App's work after each tick: fault report, telemetry (10 Hz), watch, LED code
# (config + no session).
board.led.level = 0
app = main.App(board, ctl, main.RUN, [], config_problems=["limits.x"], therapy=th,
               telemetry=True)
th.program = None
ctl.session.state = S.HOME
app._after_tick(ctl)
i = 0
lit = 0  # globals exist before the lock (a new name would grow the dict)
micropython.heap_lock()
try:
    while i < 3000:
        app._after_tick(ctl)
        lit += board.led.level
        time.sleep_ms(1)
        i += 1
finally:
    micropython.heap_unlock()
print("@@app ok", lit > 0)
"""


def test_the_watch_between_ticks_allocates_nothing_on_micropython():
    from host_tools.virtual_board import find_micropython

    out = subprocess.run(
        [find_micropython(), "-c", MP_SCRIPT], capture_output=True, text=True, timeout=60,
        check=False, cwd=ROOT, env=dict(os.environ, MICROPYPATH=ROOT + ":" + ROOT + "/.frozen"),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "@@home ok" in out.stdout and "@@descending ok" in out.stdout
    assert "@@peak %d" % (-60000 + 499 * 7) in out.stdout
    assert "@@recorded %d" % (-60000 + 499 * 7) in out.stdout
    assert "@@app ok True" in out.stdout  # the LED code ran, under the lock
    # Telemetry was printed under the lock (3000 ticks of >= 1 ms: >= 3 s at 10 Hz),
    # and is what host_tools monitor parses.
    from host_tools.telemetry import parse_line

    tele = [parse_line(ln) for ln in out.stdout.splitlines() if ln.startswith("@T")]
    assert len(tele) >= 25
    assert all(r.state == "HOME" and r.current_ma == 1200 and r.rate_mdps == -120
               and r.fault is None for r in tele)
