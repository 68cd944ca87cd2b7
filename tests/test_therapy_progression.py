"""The therapy rules (firmware/therapy.py) over random session histories.

Properties, each against an oracle kept by the test from the records it
made (not from the profile's own counters):
- every program is one the firmware accepts, within the caps: angle <= the
  user's ceiling and 90, at most 2 deg/s, a rest near horizontal, no
  rocking below 35 deg, the whole session at most 30 minutes;
- nothing above 60 deg (full inversion) before the first completed dated
  session is 14 days old, and never with the clock unknown;
- at most 2 sessions on any local day (clock set);
- no program without a recorded, clearing medical clearance;
- released, fault and power-loss sessions never advance the progression;
  the level never goes down, moves at most 10 deg a step, and leaves 45 deg
  only after 4 completed sessions there with no letting go in between;
- more completed sessions never give a lower level (a released session
  turned into a completed one never lowers it).
Plus unit tests of validation messages, day boundaries, the clock-unknown
case, the ceiling, and the same results on MicroPython.
"""

import json
import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import therapy as T
from firmware.config import Program

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAY = 86400
T0 = 1767600000  # 2026-01-05 08:00 UTC
CLEAR = dict(T.CLEARANCE)


def cleared(**settings_):
    return T.new_profile(CLEAR, settings_)


def completed(now, peak=90.0, duration=300.0):
    return {"ended": "completed", "duration_s": duration, "peak_angle_deg": peak, "start_s": now}


def assert_program_within_caps(program, profile):
    Program(program)  # the firmware's own bounds accept it
    s = profile["settings"]
    assert set(program) == set(T.PROGRAM_KEYS)
    assert T.START_ANGLE_DEG <= program["target_angle_deg"] <= min(s["max_angle_deg"], 90)
    assert program["descent_rate_dps"] <= 2.0 and program["return_rate_dps"] <= 2.0
    assert program["rest_angle_deg"] == 0.0 and program["rest_s"] >= 30.0
    assert program["rock_amplitude_deg"] <= 5.0
    if program["target_angle_deg"] < 35:
        assert program["rock_amplitude_deg"] == 0.0
    assert program["hold_s"] >= T.HOLD_MIN_S
    assert T.program_duration_s(program) <= 30 * 60  # from the lowest home any table has
    assert T.program_duration_s(program) <= max(s["session_max_min"] * 60,
                                                 T.program_duration_s({**program, "hold_s": 10}))


# --- random histories ---------------------------------------------------------------------

SETTINGS = st.fixed_dictionaries({}, optional={
    "max_angle_deg": st.sampled_from([15, 30, 45, 60, 75, 90]),
    "session_max_min": st.integers(5, 30),
    "sessions_per_step": st.integers(1, 4),
    "rock_amplitude_deg": st.sampled_from([0, 2.5, 5]),
    "descent_rate_dps": st.sampled_from([0.5, 1.0, 2.0]),
    "return_rate_dps": st.sampled_from([0.5, 1.0, 2.0]),
    "rest_s": st.sampled_from([30, 60, 600]),
    "utc_offset_min": st.sampled_from([-300, 0, 60, 600]),
})
# One attempt: wait, then press the button; how the session ends if it runs.
ATTEMPT = st.tuples(
    st.sampled_from([60, 1800, 5 * 3600, 11 * 3600, DAY, 3 * DAY]),  # wait before it
    st.sampled_from((*T.ENDED, "completed", "completed")),  # completed more often
    st.booleans(),  # reached the level (completed ones)
    st.integers(0, 9),  # 0: the clock is not set for this one
)


def play(settings_, attempts):
    """Run the attempts on a fresh cleared profile; yield what each step saw."""
    profile = cleared(**settings_)
    t = T0
    for wait, ended, reached, clock in attempts:
        t += wait
        now = t if clock else None
        program, reason = T.session_program(profile, now)
        if program is None:
            yield now, profile, None, reason, None, profile
            continue
        level = profile["progress"]["level_deg"]
        peak = program["target_angle_deg"] + 1.0 if reached else level - 5.0
        record = {"ended": ended, "duration_s": 200.0, "peak_angle_deg": peak, "start_s": now}
        after = T.record_session(profile, record, now)
        yield now, profile, program, reason, record, after
        profile = after


@settings(max_examples=150)
@given(SETTINGS, st.lists(ATTEMPT, min_size=1, max_size=70))
def test_random_histories_keep_every_rule(settings_, attempts):
    first_completed = None  # oracle: the first dated completed session
    per_day = {}
    streak_at_45 = 0
    completed_count = 0
    for now, before, program, reason, record, after in play(settings_, attempts):
        if program is None:
            assert reason
            # Refused only for the daily cap here (the profile is cleared).
            assert now is not None and "at most 2 a day" in reason
            continue
        assert_program_within_caps(program, before)
        target = program["target_angle_deg"]
        if target > 60:
            assert now is not None and first_completed is not None
            assert now - first_completed >= 14 * DAY
        if now is not None:
            day = (now + before["settings"]["utc_offset_min"] * 60) // DAY
            per_day[day] = per_day.get(day, 0) + 1
            assert per_day[day] <= 2
        lv0 = before["progress"]["level_deg"]
        lv1 = after["progress"]["level_deg"]
        assert lv0 <= lv1 <= lv0 + 10
        if record["ended"] != "completed":
            assert after["progress"] == before["progress"] or (
                record["ended"] == "released" and after["progress"]
                == {**before["progress"], "at_level": 0})
            assert T.target_angle_deg(after, now) == T.target_angle_deg(before, now)
        else:
            if record["peak_angle_deg"] >= lv0 - T.REACHED_TOLERANCE_DEG:
                completed_count += 1
                if now is not None and first_completed is None:
                    first_completed = now
        # Stay at 45 until comfortable.
        if lv0 == 45:
            if record["ended"] == "released":
                streak_at_45 = 0
            elif record["ended"] == "completed" and record["peak_angle_deg"] >= 42:
                streak_at_45 += 1
            if lv1 > 45:
                assert streak_at_45 >= T.COMFORT_SESSIONS
        assert after["progress"]["completed"] == completed_count
        assert len(after["history"]) <= T.HISTORY_MAX


@settings(max_examples=100)
@given(SETTINGS, st.lists(ATTEMPT, min_size=1, max_size=40), st.data())
def test_more_completed_sessions_never_give_a_lower_level(settings_, attempts, data):
    steps = list(play(settings_, attempts))
    records = [(now, rec) for now, _, program, _, rec, _ in steps if program is not None]
    flippable = [i for i, (_, rec) in enumerate(records) if rec["ended"] != "completed"]
    if not flippable:
        return
    i = data.draw(st.sampled_from(flippable))

    def level(recs):
        p = cleared(**settings_)
        for now, rec in recs:
            p = T.record_session(p, rec, now)
        return p["progress"]["level_deg"]

    flipped = list(records)
    now, rec = flipped[i]
    flipped[i] = (now, {**rec, "ended": "completed", "peak_angle_deg": 90.0})
    assert level(flipped) >= level(records)


@given(st.fixed_dictionaries({key: st.booleans() for key, _ in T.CLEARANCE}),
       st.one_of(st.none(), st.integers(T0, T0 + 100 * DAY)))
def test_no_program_without_a_clearing_medical_clearance(answers, now):
    profile = T.new_profile(answers)
    program, reason = T.session_program(profile, now)
    clears = all(answers[key] == ok for key, ok in T.CLEARANCE)
    assert (program is not None) == clears
    if not clears:
        assert "no inversion" in reason
        bad = [k for k, ok in T.CLEARANCE if answers[k] != ok and k != "doctor_approved"]
        if answers["doctor_approved"]:
            assert all(k in reason for k in bad)


def test_no_clearance_recorded_means_no_program():
    profile = T.validate_profile({})
    program, reason = T.session_program(profile, T0)
    assert program is None and "no medical clearance recorded" in reason


# --- the guidance, step by step ----------------------------------------------------------


def test_a_new_user_starts_at_15_deg_for_about_5_minutes_and_climbs_10_deg_a_step():
    p = cleared()
    program, _ = T.session_program(p, T0)
    assert program["target_angle_deg"] == 15.0
    assert T.program_duration_s(program) == pytest.approx(300.0, abs=1.0)
    assert program["rock_amplitude_deg"] == 0.0
    seen = []
    t = T0
    for _ in range(24):
        program, _ = T.session_program(p, t)
        seen.append(program["target_angle_deg"])
        p = T.record_session(p, completed(t, peak=program["target_angle_deg"]), t)
        t += DAY // 2
    # two sessions a step; four at 45 (comfortable); 60 is the default ceiling.
    assert seen[:12] == [15, 15, 25, 25, 35, 35, 45, 45, 45, 45, 55, 55]
    assert set(seen[12:]) == {60.0}
    assert T.session_minutes(p) > 5


def test_full_inversion_waits_for_14_days_of_history():
    p = cleared(max_angle_deg=90, sessions_per_step=1)
    t = T0
    targets = []
    while t < T0 + 20 * DAY:
        program, _ = T.session_program(p, t)
        targets.append((t, program["target_angle_deg"]))
        p = T.record_session(p, completed(t), t)
        t += DAY // 2
    early = [a for when, a in targets if when - T0 < 14 * DAY]
    late = [a for when, a in targets if when - T0 >= 14 * DAY]
    assert max(early) == 60.0 and max(late) == 90.0
    # Whatever the profile says, an unknown clock never allows more than 60.
    assert T.target_angle_deg(p, None) == 60.0
    program, _ = T.session_program(p, None)
    assert program["target_angle_deg"] == 60.0
    assert program["hold_s"] <= 60.0 or program["target_angle_deg"] <= 60


def test_above_60_holds_are_short():
    p = cleared(max_angle_deg=90, session_max_min=30)
    p["progress"].update(level_deg=90, completed=100, first_s=T0 - 30 * DAY)
    program, _ = T.session_program(p, T0)
    assert program["target_angle_deg"] == 90.0 and program["hold_s"] == T.FULL_HOLD_MAX_S


def test_two_sessions_a_local_day_counting_every_ending():
    p = cleared(utc_offset_min=60)  # UTC+1: the local day starts at 23:00 UTC
    morning = T0  # 09:00 local
    p = T.record_session(p, completed(morning, peak=15), morning)
    p = T.record_session(p, {"ended": "released", "duration_s": 20, "peak_angle_deg": 0,
                             "start_s": morning + 3600}, morning + 3600)
    program, reason = T.session_program(p, morning + 7200)
    assert program is None and "2 sessions today already" in reason
    late = morning + 13 * 3600 + 1800  # 22:30 local, same day
    assert T.session_program(p, late)[0] is None
    after_midnight = morning + 15 * 3600  # 00:00 local, the next day
    assert T.session_program(p, after_midnight)[0] is not None
    # Unknown clock: the daily cap cannot be applied (dates unknown).
    assert T.session_program(p, None)[0] is not None
    # The refusal ends at the next local midnight (23:00 UTC), and only then.
    assert T.next_change_s(p, morning + 7200) == after_midnight
    assert T.next_change_s(p, after_midnight) is None
    assert T.next_change_s(p, None) is None


def test_a_session_that_did_not_reach_the_level_does_not_count():
    p = cleared(sessions_per_step=1)
    p = T.record_session(p, completed(T0, peak=10.0), T0)  # level 15, peak 10
    assert p["progress"]["level_deg"] == 15 and p["progress"]["completed"] == 0
    p = T.record_session(p, completed(T0, peak=13.0), T0)  # within 3 deg
    assert p["progress"]["level_deg"] == 25


def test_letting_go_resets_the_count_at_the_level_and_faults_do_not():
    p = cleared(sessions_per_step=2)
    p = T.record_session(p, completed(T0), T0)
    assert p["progress"]["at_level"] == 1
    fault = {"ended": "fault", "duration_s": 50, "peak_angle_deg": 10, "start_s": T0}
    assert T.record_session(p, fault, T0)["progress"] == p["progress"]
    released = {**fault, "ended": "released"}
    after = T.record_session(p, released, T0)
    assert after["progress"]["at_level"] == 0 and after["progress"]["level_deg"] == 15
    assert len(after["history"]) == 2


def test_record_session_leaves_its_input_alone():
    p = cleared()
    frozen = json.dumps(p, sort_keys=True)
    T.record_session(p, completed(T0), T0)
    assert json.dumps(p, sort_keys=True) == frozen


def test_the_history_is_bounded():
    p = cleared()
    for i in range(T.HISTORY_MAX + 5):
        p = T.record_session(p, {"ended": "fault", "duration_s": 1, "peak_angle_deg": 0,
                                 "start_s": T0 + i}, None)
    assert len(p["history"]) == T.HISTORY_MAX
    assert p["history"][-1]["start_s"] == T0 + T.HISTORY_MAX + 4


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    ({"colour": 1}, "profile: unknown key 'colour' (allowed: version, clearance,"),
    ({"version": 2}, "profile.version = 2: this firmware reads version 1"),
    ({"settings": {"max_angle_deg": 120}},
     "profile.settings.max_angle_deg = 120 is outside the allowed range 15 .. 90 deg"),
    ({"settings": {"session_max_min": 45}},
     "profile.settings.session_max_min = 45 is outside the allowed range 5 .. 30 min"),
    ({"settings": {"descent_rate_dps": 3}},
     "profile.settings.descent_rate_dps = 3 is outside the allowed range 0.5 .. 2.0 deg/s"),
    ({"settings": {"sessions_per_step": 1.5}},
     "profile.settings.sessions_per_step must be a whole number of sessions"),
    ({"settings": {"speed": 1}}, "profile.settings: unknown key 'speed'"),
    ({"progress": {"level_deg": "high"}}, "profile.progress.level_deg must be a number of deg"),
    ({"progress": {"first_s": -5}}, "profile.progress.first_s = -5 is outside the allowed range"),
    ({"clearance": {"doctor_approved": True}}, "profile.clearance.heart_disease is not answered"),
    ({"clearance": {**CLEAR, "glaucoma": "no"}},
     "profile.clearance.glaucoma must be true or false, got 'no'"),
    ({"clearance": {**CLEAR, "mood": True}}, "profile.clearance: unknown key 'mood'"),
    ({"history": {}}, "profile.history must be a list of session records"),
    ({"history": [{"ended": "crashed", "duration_s": 1, "peak_angle_deg": 0}]},
     "profile.history[0].ended = 'crashed': allowed values are completed, released, fault,"),
    ({"history": [{"ended": "fault", "duration_s": -1, "peak_angle_deg": 0}]},
     "profile.history[0].duration_s = -1 is outside the allowed range 0 .. 86400 s"),
    ({"history": [{"ended": "fault", "duration_s": 1, "peak_angle_deg": 0}] * 61},
     "profile.history holds 61 records; at most 60 are kept"),
    ([], "profile must be an object of keys"),
])  # fmt: skip
def test_a_bad_profile_names_the_key_and_the_range(data, expected):
    with pytest.raises(T.ProfileError) as err:
        T.validate_profile(data)
    assert str(err.value).startswith(expected), str(err.value)
    # session_program never raises: it refuses, naming the same problem.
    program, reason = T.session_program(data, T0)
    assert program is None and expected in reason


def test_a_bad_record_is_refused_and_the_profile_kept():
    p = cleared()
    with pytest.raises(T.ProfileError, match=r"record.peak_angle_deg is missing"):
        T.record_session(p, {"ended": "completed", "duration_s": 1}, T0)
    with pytest.raises(T.ProfileError, match=r"record: unknown key 'mood'"):
        T.record_session(p, {**completed(T0), "mood": 1}, T0)


# --- programs and the ceiling ---------------------------------------------------------------


def test_the_ceiling_tightens_every_key_the_gentle_way():
    program, _ = T.session_program(cleared(rock_amplitude_deg=5), T0)
    program = {**program, "target_angle_deg": 45.0, "rock_amplitude_deg": 5.0}
    ceiling = {"target_angle_deg": 30.0, "hold_s": 20.0, "rock_amplitude_deg": 2.0,
               "rock_period_s": 20.0, "rock_cycles": 1, "descent_rate_dps": 0.6,
               "return_rate_dps": 3.0, "rest_s": 120.0, "rest_angle_deg": 5.0}
    capped = T.cap_program(program, ceiling)
    assert capped == {**program, "target_angle_deg": 30.0, "hold_s": 20.0,
                      "rock_amplitude_deg": 2.0, "rock_period_s": 20.0, "rock_cycles": 1,
                      "descent_rate_dps": 0.6, "rest_s": 120.0}
    assert T.cap_program(program, None) == program
    assert T.cap_program(program, {"target_angle_deg": 90.0}) == program


def test_program_dict_is_the_inverse_of_the_firmware_reader():
    program, _ = T.session_program(cleared(), T0)
    assert T.program_dict(Program(program)) == program


# --- the same on MicroPython -------------------------------------------------------------------

MP_SCRIPT = """
import json
from firmware import therapy as T
steps = json.loads(%r)
p = T.new_profile(dict(T.CLEARANCE), {"sessions_per_step": 1, "max_angle_deg": 90})
for now, ended in steps:
    prog, why = T.session_program(p, now)
    print("@@" + json.dumps([prog, why]))
    if prog is not None:
        rec = {"ended": ended, "duration_s": 100.5, "start_s": now,
               "peak_angle_deg": prog["target_angle_deg"]}
        p = T.record_session(p, rec, now)
print("@@" + json.dumps(p["progress"]))
"""


def _reference(steps):
    p = T.new_profile(CLEAR, {"sessions_per_step": 1, "max_angle_deg": 90})
    out = []
    for now, ended in steps:
        prog, why = T.session_program(p, now)
        out.append([prog, why])
        if prog is not None:
            rec = {"ended": ended, "duration_s": 100.5, "start_s": now,
                   "peak_angle_deg": prog["target_angle_deg"]}
            p = T.record_session(p, rec, now)
    out.append(p["progress"])
    return out


def test_micropython_gives_the_same_programs_and_progress():
    from host_tools.virtual_board import find_micropython

    endings = ["completed", "completed", "released", "completed", "fault", "completed"]
    steps = [[T0 + i * 9 * 3600, endings[i % len(endings)]] for i in range(50)]
    steps[7][0] = None  # the clock not set for one
    out = subprocess.run(
        [find_micropython(), "-X", "heapsize=256K", "-c", MP_SCRIPT % json.dumps(steps)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env=dict(os.environ, MICROPYPATH=ROOT),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    got = [json.loads(x[2:]) for x in out.stdout.splitlines() if x.startswith("@@")]
    assert got == json.loads(json.dumps(_reference(steps)))
