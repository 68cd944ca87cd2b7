"""Scenarios with a [profile] (sim/scenario.py) and the ProfileDriver
(sim/profile_driver.py) that runs them session after session.

Parsing: a scenario without [profile] is unchanged; with one, the first
program comes from the profile (capped by [program] if given), and every bad
key is named with its range. The driver, on a stand-in run: hands the
controller a program at boot and after each session, only while the table
is at home (or starting); records completed, released, fault and power-loss
sessions; refuses a third session on a day and gives one again the next
day; boots again after a firmware reset. On the real simulator: a whole
session, then a release, then a refusal, with every safety check passing."""

import tomllib

import pytest

from firmware import session as S
from firmware import therapy as T
from firmware.config import Program
from sim import checks
from sim.clock import VirtualClock
from sim.profile_driver import ProfileDriver
from sim.runner import Run
from sim.scenario import DEFAULT_START_EPOCH_S, ScenarioError, load, parse

BASE = """
duration_s = 100.0
[user]
mass_kg = 80.0
height_m = 1.78
"""
PROGRAM = """
[program]
target_angle_deg = 30.0
hold_s = 20.0
rock_amplitude_deg = 0.0
rock_period_s = 10.0
"""
CLEARED = """
[profile]
clearance = "cleared"
"""


def scenario(text):
    return parse(tomllib.loads(BASE + text), "s")


# --- parsing -------------------------------------------------------------------------------


def test_without_a_profile_the_program_runs_as_given():
    s = scenario(PROGRAM)
    assert s.profile is None and s.program_ceiling is None
    assert s.program.target_mdeg == 30000 and s.program_data["hold_s"] == 20.0


def test_with_a_profile_the_first_program_is_the_profiles():
    s = scenario(CLEARED)
    assert s.profile["progress"]["level_deg"] == 15
    assert s.profile_start_s == DEFAULT_START_EPOCH_S
    assert s.program.target_mdeg == 15000
    assert s.program_data == T.session_program(s.profile, DEFAULT_START_EPOCH_S)[0]
    assert s.program_ceiling is None


def test_program_with_a_profile_is_the_ceiling():
    s = scenario(CLEARED + "progress = {level_deg = 45}\n" + PROGRAM)
    assert s.program_ceiling["target_angle_deg"] == 30.0
    assert s.program.target_mdeg == 30000  # 45 from the profile, capped at 30
    assert s.program.hold_ms <= 20000
    assert s.program_data == T.cap_program(T.session_program(s.profile, s.profile_start_s)[0],
                                           s.program_ceiling)


def test_the_profile_section_in_full_and_the_simulators_keys():
    s = scenario("""
[profile]
start_epoch_s = 1800000000
[profile.clearance]
""" + "\n".join("%s = %s" % (k, str(v).lower()) for k, v in T.CLEARANCE) + """
[profile.settings]
max_angle_deg = 45
utc_offset_min = 60
[profile.progress]
level_deg = 25
completed = 3
first_s = 1799000000
[[profile.history]]
ended = "completed"
duration_s = 300.0
peak_angle_deg = 25.5
start_s = 1799990000
[[profile.history]]
ended = "released"
duration_s = 30.0
peak_angle_deg = 5.0
""")
    assert s.profile_start_s == 1800000000
    assert s.profile["settings"]["utc_offset_min"] == 60
    assert [r["start_s"] for r in s.profile["history"]] == [1799990000, None]
    assert s.program.target_mdeg == 25000
    assert scenario(CLEARED + "clock_set = false\n").profile_start_s is None


def test_an_uncleared_profile_boots_on_the_conservative_program():
    s = scenario('[profile]\n[profile.clearance]\n' + "\n".join(
        "%s = %s" % (k, "true") for k, _ in T.CLEARANCE))
    assert T.session_program(s.profile, s.profile_start_s)[0] is None
    assert s.program.target_mdeg == 15000  # refused at boot by the driver


@pytest.mark.parametrize("text, expected", [
    ("[profile]\ncolour = 1\n", "[profile]: unknown key 'colour' (allowed: version, clearance, "
     "settings, progress, history, and the simulator's start_epoch_s, clock_set)"),
    (CLEARED + "[profile.settings]\nmax_angle_deg = 100\n",
     "[profile].settings.max_angle_deg = 100 is outside the allowed range 15 .. 90 deg"),
    (CLEARED + "[profile.progress]\nlevel_deg = 5\n",
     "[profile].progress.level_deg = 5 is outside the allowed range 15 .. 90 deg"),
    ('[profile]\nclearance = "yes"\n', '[profile].clearance = \'yes\': give "cleared" or a'),
    ("[profile]\n[profile.clearance]\ndoctor_approved = true\n",
     "[profile].clearance.heart_disease is not answered (true or false)"),
    (CLEARED + "start_epoch_s = -5\n", "[profile].start_epoch_s must be a whole number"),
    (CLEARED + "start_epoch_s = 1.5e9\n", "[profile].start_epoch_s must be a whole number"),
    (CLEARED + 'clock_set = "no"\n', "[profile].clock_set must be true or false"),
    (CLEARED + '[[profile.history]]\nended = "done"\nduration_s = 1\npeak_angle_deg = 0\n',
     "[profile].history[0].ended = 'done': allowed values are completed, released"),
    ("", "s: the [program] table is missing"),
])  # fmt: skip
def test_a_bad_profile_section_names_the_key(text, expected):
    with pytest.raises(ScenarioError) as err:
        scenario(text)
    assert str(err.value).startswith(expected), str(err.value)


def test_a_profile_that_is_not_a_table_is_refused():
    with pytest.raises(ScenarioError, match=r"^\[profile\] must be a table, got 3"):
        parse(tomllib.loads("profile = 3\n" + BASE + PROGRAM), "s")


def test_load_names_the_file(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(BASE + CLEARED + "[profile.settings]\nrest_s = 5\n")
    with pytest.raises(ScenarioError, match=r"p\.toml: \[profile\]\.settings\.rest_s = 5 is "
                                            r"outside the allowed range 30 \.\. 600 s"):
        load(path)


# --- the driver on a stand-in run ------------------------------------------------------------


class FakeController:
    """What the driver reads, and set_program refusing outside HOME/STARTUP."""

    def __init__(self):
        self.session = type("Session", (), {})()
        self.session.state = S.STARTUP
        self.session.hold_target_mdeg = 15000
        self.estimator = type("Estimator", (), {})()
        self.estimator.angle_mdeg = -60000
        self.fault = 0
        self.programs = []
        self.program_ok = False  # as the controller: a program its duty budget covers
        self.budget = type("DutyBudget", (), {})()
        self.budget.cuts = 0  # sessions the budget cut short (the session log reads it)

    def set_program(self, program):
        state = self.session.state
        if state != S.HOME and state != S.STARTUP:
            raise ValueError("set_program: only at home (state is %s)" % S.STATE_NAMES[state])
        assert program is None or isinstance(program, Program)
        self.programs.append(program)
        self.program_ok = program is not None


class FakeBoard:
    def __init__(self):
        self.clock = VirtualClock()
        self.wdt = None


class FakeRun:
    def __init__(self):
        self.board = FakeBoard()
        self.controller = FakeController()
        self.t_ms = 0

    def wait(self, driver, seconds, state=None, angle_mdeg=None, step_ms=10):
        if state is not None:
            self.controller.session.state = state
        if angle_mdeg is not None:
            self.controller.estimator.angle_mdeg = angle_mdeg
        for _ in range(int(seconds * 1000 / step_ms)):
            self.t_ms += step_ms
            self.board.clock.advance_us(step_ms * 1000)
            driver.between_ticks(self)


def session(run, driver, states, peak_mdeg=15200):
    run.wait(driver, 1.0, S.HOME)
    run.wait(driver, 5.0, S.DESCENDING, peak_mdeg - 3000)
    run.wait(driver, 5.0, states[0], peak_mdeg)
    for state in states[1:]:
        run.wait(driver, 5.0, state, 0)
    run.wait(driver, 1.0, S.HOME, -60000)


def targets(programs):
    return [None if p is None else p.target_mdeg // 1000 for p in programs]


def test_the_driver_hands_over_programs_and_records_sessions():
    s = scenario(CLEARED + "[profile.settings]\nsessions_per_step = 1\n")
    driver = ProfileDriver(s)
    run = FakeRun()
    run.wait(driver, 0.5)  # STARTUP: the first program is handed over at boot
    assert targets(run.controller.programs) == [15]
    session(run, driver, [S.HOLDING, S.RETURNING])
    assert [r["ended"] for _, r in driver.records] == ["completed"]
    record = driver.records[0][1]
    assert record["peak_angle_deg"] == 15.2 and record["duration_s"] == pytest.approx(15.0)
    assert record["start_s"] == DEFAULT_START_EPOCH_S + 1
    assert driver.profile["progress"]["level_deg"] == 25
    assert targets(run.controller.programs) == [15, 25]
    # Let go: recorded, no progress; the second of the day: then none.
    session(run, driver, [S.EMERGENCY_RETURN], peak_mdeg=20000)
    assert [r["ended"] for _, r in driver.records] == ["completed", "released"]
    assert driver.profile["progress"]["level_deg"] == 25
    assert targets(run.controller.programs)[-1] is None
    assert "2 sessions today already" in driver.decisions[-1][2]
    # A day later (scenario time) the check at home gives a program again.
    run.wait(driver, 86400 - run.t_ms / 1000 + 61, S.HOME, step_ms=1000)
    assert targets(run.controller.programs)[-1] == 25
    assert any("therapy: next session 25 deg" in line for _, line in driver.messages)


def test_faults_resets_and_power_losses_are_recorded_without_progress():
    s = scenario(CLEARED)
    driver = ProfileDriver(s)
    run = FakeRun()
    run.wait(driver, 0.5)
    run.wait(driver, 1.0, S.HOME)
    run.wait(driver, 2.0, S.DESCENDING, 0)
    run.controller.fault = 1  # e.g. the IMU lost: home without it
    run.wait(driver, 2.0, S.BLIND_RETURN)
    run.wait(driver, 1.0, S.HOME, -60000)
    assert [r["ended"] for _, r in driver.records] == ["fault"]
    # A firmware reset mid-session: a new controller boots away from home.
    run.controller = FakeController()
    run.controller.estimator.angle_mdeg = 20000
    run.wait(driver, 0.5)
    assert targets(run.controller.programs) == [15]  # the new controller gets one too
    run.wait(driver, 3.0, S.RECOVERING)
    run.wait(driver, 1.0, S.HOME, -60000)
    assert [r["ended"] for _, r in driver.records] == ["fault", "power_loss"]
    assert driver.records[1][1]["peak_angle_deg"] == 20.0
    assert driver.profile["progress"] == T.validate_profile({})["progress"]
    # Two sessions today (both count): none for now.
    assert run.controller.programs[-1] is None


def test_without_clearance_the_controller_is_refused_at_boot():
    s = scenario("[profile]\nversion = 1\n")
    driver = ProfileDriver(s)
    run = FakeRun()
    run.wait(driver, 0.1)
    assert run.controller.programs == [None]
    assert "no medical clearance recorded" in driver.decisions[0][2]


def test_with_the_clock_unset_there_are_no_dates():
    s = scenario(CLEARED + "clock_set = false\n")
    driver = ProfileDriver(s)
    run = FakeRun()
    run.wait(driver, 0.1)
    for _ in range(3):  # no daily cap without dates
        session(run, driver, [S.HOLDING, S.RETURNING])
    assert [r["start_s"] for _, r in driver.records] == [None, None, None]
    assert run.controller.programs[-1] is not None


def test_a_scenario_without_a_profile_has_no_driver():
    with pytest.raises(ValueError, match="no \\[profile\\] section"):
        ProfileDriver(scenario(PROGRAM))


# --- the driver on the real simulator ----------------------------------------------------------

REAL = BASE.replace("100.0", "420.0") + CLEARED + """
[[event]]
at_s = 2.0
button = "press"
[[event]]
at_s = 300.0
button = "release"
[[event]]
at_s = 302.0
button = "press"
[[event]]
at_s = 340.0
button = "release"
[[event]]
at_s = 400.0
button = "press"
"""


def _states(trace, t0=0.0):
    seen = []
    for t, s in zip(trace["t_s"], trace["state"], strict=True):
        if t >= t0 and (not seen or seen[-1] != s):
            seen.append(s)
    return seen


def test_a_profile_scenario_on_the_simulator(capsys):
    s = parse(tomllib.loads(REAL), "real")
    run = Run(s)
    driver = ProfileDriver(s, echo=True)
    while run.t_ms < s.duration_ms:
        run.step()
        driver.between_ticks(run)
    trace = run.trace
    assert checks.all_violations(trace) == []
    assert _states(trace, 0.0)[:6] == ["STARTUP", "HOME", "DESCENDING", "HOLDING", "RETURNING",
                                       "HOME"]
    assert "EMERGENCY_RETURN" in _states(trace, 302.0)
    assert _states(trace, 360.0) == ["HOME"]  # the third press of the day: refused
    assert max(trace["angle_deg"]) < 16.5  # the first level: 15 deg
    assert [r["ended"] for _, r in driver.records] == ["completed", "released"]
    out = capsys.readouterr().out
    assert "therapy: NO SESSION: 2 sessions today already" in out


def test_a_profile_scenario_on_the_micropython_runtime_is_refused_cleanly(tmp_path):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = tmp_path / "p.toml"
    path.write_text(BASE + PROGRAM + CLEARED)
    out = subprocess.run(
        [sys.executable, "-m", "sim", "run", str(path), "--trace", str(tmp_path / "t.csv"),
         "--runtime", "micropython"],
        capture_output=True, text=True, timeout=60, check=False, cwd=root,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert "[profile]" in out.stderr and "--runtime micropython" in out.stderr
    assert "set_program" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "t.csv").exists()
