"""Every fault in the catalogue (sim/faults.py), injected at a random moment of
a random session for a random user: the table keeps every limit and ends
upright at home, or (jam, runaway) stopped within the bound with the fault
reported. SAFETY.md lists each fault's detection, reaction and bound; the
bounds checked here are sim/checks.py's FAULT_HOME_BOUNDS, STOP_BOUND_S and
FAULT_OVERTRAVEL_MAX_DEG.

The injection time is drawn over the whole session (descent, hold, rocking,
return), so the state at injection is part of what hypothesis varies.
"""

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.config import Program
from sim import checks, faults
from sim.board import SimBoard
from sim.runner import Run
from sim.scenario import Event, Scenario
from tests.session_strategies import HOME_DEG, runnable, session_length_s, users

CI = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci"
EXAMPLES = 4 if CI else 60

# Short programs (holds of seconds): the properties do not depend on how long
# a hold lasts, and many sessions fit in the CI budget.
programs = st.fixed_dictionaries({
    "target_angle_deg": st.floats(-20.0, 90.0),
    "hold_s": st.floats(0.0, 6.0),
    "rock_amplitude_deg": st.sampled_from([0.0, 3.0, 8.0]),
    "rock_period_s": st.floats(8.0, 12.0),
    "rock_cycles": st.integers(1, 2),
    "rest_s": st.floats(0.0, 4.0),
    "descent_rate_dps": st.floats(0.8, 3.0),
    "return_rate_dps": st.floats(1.0, 6.0),
}).filter(runnable)


def fault_scenario(fault, user, pdata, frac, seed, press_s=1.0):
    """Press, hold through the session (let go at its end), fault at `frac`
    of the way through; long enough for the slowest way home."""
    length_s = session_length_s(pdata)
    at_s = press_s + 0.3 + frac * length_s
    release_s = press_s + length_s
    travel = max(0.0, pdata["target_angle_deg"] + 10.0 - HOME_DEG)
    slowest_dps = min(pdata["return_rate_dps"], 1.5)
    duration_s = max(at_s, release_s) + travel / slowest_dps + 30.0
    events = sorted(
        [Event(int(press_s * 1000), button="press"),
         Event(int(release_s * 1000), button="release"),
         Event(int(at_s * 1000), fault=fault)],
        key=lambda e: e.at_ms,
    )
    scenario = Scenario(int(duration_s * 1000), seed, user, Program(pdata), pdata, events,
                        name="%s@%.1f" % (fault, at_s))
    return scenario, at_s


def run_fault(fault, user, pdata, frac, seed, board_options=None):
    scenario, at_s = fault_scenario(fault, user, pdata, frac, seed)
    board = SimBoard(user, seed=seed, **(board_options or {}))
    run = Run(scenario, board=board)
    trace = run.run()
    problems = checks.all_violations(trace) + checks.fault_violations(
        trace, fault, at_s, HOME_DEG, pdata["return_rate_dps"])
    return run, trace, problems


def _assert_safe(fault, run, trace, problems):
    assert not problems, "%s: %s\n(states %s, faults %s)" % (
        run.scenario.name, problems, sorted(set(trace["state"])),
        sorted(set(trace["fault"]) - {""}))


FAULTS = sorted(faults.CATALOGUE)


@pytest.mark.parametrize("fault", FAULTS)
@settings(max_examples=EXAMPLES)
@given(user=users, pdata=programs, frac=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_any_single_fault_keeps_the_caps_and_ends_home_or_safely_stopped(
        fault, user, pdata, frac, seed):
    """Safety property, per fault: never past the angle or rate cap, at most
    1 deg further head-down after the fault, then home within its bound, or
    (jam, runaway) stopped within STOP_BOUND_S with the fault reported;
    faults a good controller rides through keep every limit and end home."""
    run, trace, problems = run_fault(fault, user, pdata, frac, seed)
    _assert_safe(fault, run, trace, problems)


@pytest.mark.parametrize("fault", ["imu_freeze", "imu_disconnect", "imu_implausible"])
@settings(max_examples=max(2, EXAMPLES // 2))
@given(user=users, pdata=programs, frac=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_imu_lost_without_a_position_pot_still_ends_home_or_stopped_by_timeout(
        fault, user, pdata, frac, seed):
    """Safety property: with no position pot the second way home is open loop
    to the home end switch, slow, with a timeout: the caps hold, the table
    goes at most 1 deg further head-down, and it ends HOME or (timeout)
    SAFE_STOP with blind_return_timeout."""
    run, trace, _ = run_fault(fault, user, pdata, frac, seed, {"position_pot": False})
    trace = run.finish_blind_return()  # it creeps: minutes, beyond the timeline
    problems = checks.all_violations(trace)
    i0 = next(i for i, name in enumerate(trace["injected_fault"]) if name)
    if max(trace["angle_deg"][i0:]) - trace["angle_deg"][i0 - 1] > 1.0:
        problems.append("more than 1 deg further head-down after %s" % fault)
    end = (trace["state"][-1], trace["fault"][-1])
    if end[0] != "HOME" and end != ("SAFE_STOP", "blind_return_timeout"):
        problems.append("ends in %s with fault %r" % end)
    _assert_safe(fault, run, trace, problems)


def test_every_catalogue_fault_is_noticed_or_ridden_as_its_kind_says():
    """The catalogue's kinds are what the firmware does: each "return" or
    "stop" fault injected mid-hold is reported (fault column or a reset),
    each "ride" fault in the middle of a hold is not a STOP."""
    from sim.plant import User

    pdata = {"target_angle_deg": 30.0, "hold_s": 30.0, "rock_amplitude_deg": 0.0,
             "rock_period_s": 10.0, "rock_cycles": 1, "rest_s": 2.0,
             "descent_rate_dps": 2.0, "return_rate_dps": 2.0}
    for fault in FAULTS:
        if fault == "button_contact_disagree":
            continue  # latent until the release: its own test below
        run, trace, problems = run_fault(fault, User(80.0, 1.78), pdata, 0.55, 7)
        assert not problems, (fault, problems)
        noticed = any(trace["fault"]) or run.firmware_resets or fault == "button_wire_break"
        kind = faults.kind(fault)
        if kind in ("return", "stop"):
            assert noticed, "%s was not noticed" % fault
        if kind == "stop":
            assert trace["state"][-1] == "SAFE_STOP"
        else:
            assert "SAFE_STOP" not in trace["state"], fault


def test_a_welded_contact_is_noticed_at_the_release_and_blocks_the_next_session():
    from sim.plant import User

    pdata = {"target_angle_deg": 20.0, "hold_s": 5.0, "rock_amplitude_deg": 0.0,
             "rock_period_s": 10.0, "rock_cycles": 1, "rest_s": 0.0}
    user = User(75.0, 1.75)
    events = [Event(1000, button="press"), Event(20_000, fault="button_contact_disagree"),
              Event(40_000, button="release"), Event(75_000, button="press"),
              Event(90_000, button="release")]
    scenario = Scenario(100_000, 3, user, Program(pdata), pdata, events)
    run = Run(scenario, board=SimBoard(user, seed=3))
    trace = run.run()
    assert not checks.all_violations(trace)
    i_release = int(40.0 * 100)
    assert "EMERGENCY_RETURN" in trace["state"][i_release:i_release + 5]
    assert trace["fault"][-1] == "button_fault"
    assert "DESCENDING" not in trace["state"][i_release:]
    assert trace["state"][-1] == "HOME"


def test_the_duty_budget_refuses_a_descent_it_could_not_bring_back():
    """Back-to-back full-inversion sessions: once the on-time left does not
    cover a whole session the next press is refused, at home."""
    from sim.plant import User

    pdata = {"target_angle_deg": 90.0, "hold_s": 1.0, "rock_amplitude_deg": 10.0,
             "rock_period_s": 12.0, "rock_cycles": 3, "rest_s": 0.0,
             "descent_rate_dps": 2.0, "return_rate_dps": 2.0}
    user = User(80.0, 1.78)
    events = []
    t = 1000
    for _ in range(3):
        events += [Event(t, button="press"), Event(t + 260_000, button="release")]
        t += 262_000
    scenario = Scenario(t + 5000, 4, user, Program(pdata), pdata, events)
    run = Run(scenario, board=SimBoard(user, seed=4))
    trace = run.run()
    assert not checks.all_violations(trace)
    starts = [i for i in range(1, len(trace["state"]))
              if trace["state"][i] == "DESCENDING" and trace["state"][i - 1] == "HOME"]
    assert len(starts) == 1, "sessions started: %d" % len(starts)
    assert run.controller.budget.left_ms < run.controller.budget.need_ms
    assert trace["state"][-1] == "HOME"


def test_no_descent_while_the_ankle_lock_is_open():
    from sim.plant import User

    pdata = {"target_angle_deg": 30.0, "hold_s": 5.0, "rock_amplitude_deg": 0.0,
             "rock_period_s": 10.0}
    user = User(70.0, 1.70)
    scenario = Scenario(20_000, 5, user, Program(pdata), pdata,
                        [Event(4000, button="press"), Event(18_000, button="release")])
    board = SimBoard(user, seed=5)
    board.ankle_locked = False
    trace = Run(scenario, board=board).run()
    assert set(trace["state"]) <= {"STARTUP", "HOME"}
    assert max(trace["angle_deg"]) < HOME_DEG + 0.5


@pytest.mark.parametrize("pot", [True, False])
def test_a_boot_away_from_home_with_a_broken_imu_comes_home_blind(pot):
    """Safety property: the firmware starts (power back, watchdog reset) with
    the table at 25 deg and the accelerometer reading 1.6 g: the estimate
    never settles, so the supervisor latches imu_implausible in STARTUP, and
    the table still comes home, blind (on the pot, or slowly to the home
    switch), never head-down, within the caps."""
    from sim.plant import User

    pdata = {"target_angle_deg": 30.0, "hold_s": 5.0, "rock_amplitude_deg": 0.0,
             "rock_period_s": 10.0}
    user = User(80.0, 1.78)
    # Without a pot the blind duty is the one that is slow enough at the
    # stroke's fastest point: about 0.22 deg/s mid-stroke, 5 minutes from 25.
    scenario = Scenario(150_000 if pot else 400_000, 6, user, Program(pdata), pdata, [])
    board = SimBoard(user, seed=6, angle_deg=25.0, position_pot=pot)
    faults.inject(board, "imu_implausible")
    trace = Run(scenario, board=board).run()
    assert not checks.all_violations(trace)
    assert trace["fault"][-1] == "imu_implausible"
    assert "BLIND_RETURN" in trace["state"]
    assert trace["state"][-1] == "HOME"
    assert abs(trace["angle_deg"][-1] - HOME_DEG) < 3.0
    angles = trace["angle_deg"]
    assert all(b <= a + 0.01 for a, b in itertools.pairwise(angles)), "moved head-down"


def test_a_session_is_cut_short_while_the_duty_budget_still_covers_the_way_home():
    """The actuator ran hotter than planned (here: its budget drained to what
    the way home needs plus a little, mid-hold): the session ends early by
    the normal return, rest included, and the cut is counted for the log."""
    from sim.plant import User

    pdata = {"target_angle_deg": 40.0, "hold_s": 60.0, "rock_amplitude_deg": 0.0,
             "rock_period_s": 10.0, "rest_s": 2.0}
    user = User(80.0, 1.78)
    scenario = Scenario(200_000, 8, user, Program(pdata), pdata,
                        [Event(1000, button="press"), Event(190_000, button="release")])
    run = Run(scenario, board=SimBoard(user, seed=8))
    run.step_until_state("HOLDING", 120_000)
    budget = run.controller.budget
    budget.level = budget.capacity // 10  # 30 s of on-time: less than the way home needs
    trace = run.run()
    assert not checks.all_violations(trace)
    assert run.controller.budget.cuts == 1
    assert "EMERGENCY_RETURN" not in trace["state"]
    i = trace["state"].index("HOLDING")
    assert "RETURNING" in trace["state"][i:i + 200]  # within 2 s of the cut
    assert trace["state"][-1] == "HOME"


def test_safety_md_lists_every_catalogue_fault_and_every_supervisor_fault():
    """SAFETY.md's FMEA has a row for each fault the simulator can inject and
    names each fault the supervisor can latch (its detection, reaction,
    bound and test are in that row)."""
    from pathlib import Path

    from firmware.supervisor import FAULT_NAMES

    text = (Path(__file__).resolve().parent.parent / "SAFETY.md").read_text()
    rows = {line.split("|")[1].strip() for line in text.splitlines()
            if line.startswith("| `")}
    missing = [f for f in FAULTS if not any(r.startswith("`%s`" % f) for r in rows)]
    assert not missing, "no FMEA row for %s" % missing
    unnamed = [f for f in FAULT_NAMES[1:] if "`%s`" % f not in text]
    assert not unnamed, "SAFETY.md does not name %s" % unnamed


def test_an_accelerometer_reading_steadily_off_scale_is_noticed_within_about_2_s():
    """Safety property: an accelerometer reading 0.85 g at rest (plausible, but
    outside the estimator's gate, so the tilt would come from the gyro alone
    and drift) latches imu_implausible about 2 s after it starts, and the
    table comes home blind within the caps, at most 1 deg further head-down."""
    from sim.plant import User

    pdata = {"target_angle_deg": 40.0, "hold_s": 60.0, "rock_amplitude_deg": 0.0,
             "rock_period_s": 10.0}
    user = User(80.0, 1.78)
    scenario = Scenario(120_000, 9, user, Program(pdata), pdata,
                        [Event(1000, button="press"), Event(110_000, button="release")])
    board = SimBoard(user, seed=9)
    run = Run(scenario, board=board)
    run.step_until_state("HOLDING", 120_000)
    t0_ms = run.t_ms
    board.imu.accel_scale = 0.85
    trace = run.run()
    assert not checks.all_violations(trace)
    i0 = trace["t_s"].index(next(t for t in trace["t_s"] if t * 1000 >= t0_ms))
    i1 = next(i for i in range(i0, len(trace["fault"])) if trace["fault"][i])
    assert trace["fault"][i1] == "imu_implausible"
    assert 1.9 <= trace["t_s"][i1] - trace["t_s"][i0] <= 2.5
    assert max(trace["angle_deg"][i0:]) - trace["angle_deg"][i0 - 1] <= 1.0
    assert trace["state"][-1] == "HOME"
