"""A hung control loop: the dead-man stops the motor, the watchdog resets the
firmware, which boots (STARTUP), finds the table away from home and brings it
home slowly (RECOVERING); the plant keeps its state through the reset.

The hang is a simulator fault (`loop_hang` in sim/faults.py: the CPU stops
running the firmware's tick), not a firmware branch.
"""

import csv

import pytest

from firmware.config import Program
from sim import checks, faults
from sim.board import SimBoard
from sim.plant import User
from sim.runner import TRACE_COLUMNS, Run, write_csv
from sim.scenario import Event, Scenario, parse

USER = User(mass_kg=80.0, height_m=1.78)
PROGRAM = {"target_angle_deg": 30.0, "hold_s": 5.0, "rock_amplitude_deg": 0.0,
           "rock_period_s": 10.0}
HANG_MS = 15_000  # mid-descent: about -37 deg, moving head-down at 2 deg/s
WDT_TIMEOUT_S = 1.0
RETURN_RATE_DPS = 2.0


def make_run(events, duration_s, bridge="pwm_dir", imu="mpu6050"):
    scenario = Scenario(int(duration_s * 1000), 1, USER, Program(PROGRAM), dict(PROGRAM),
                        events, name="loop-hang")
    return Run(scenario, board=SimBoard(USER, seed=1, imu=imu, hbridge=bridge))


def record_applied_duty(run):
    """Wrap the bridge's output stage: (clock µs, duty) for every change."""
    drive = run.controller.drive
    clock = run.board.clock
    applied = []
    inner = drive._apply

    def apply(duty):
        if not applied or applied[-1][1] != duty:
            applied.append((clock.elapsed_us, duty))
        inner(duty)

    drive._apply = apply
    return applied


def rows(trace, start_s, end_s=None):
    t = trace["t_s"]
    return [i for i in range(len(t)) if t[i] >= start_s and (end_s is None or t[i] < end_s)]


@pytest.fixture(scope="module", params=["pwm_dir", "dual_pwm"])
def hung(request):
    """Held descent, loop hang mid-descent; let go at 45 s and press again at 47 s."""
    events = [Event(1000, button="press"), Event(HANG_MS, fault="loop_hang"),
              Event(45_000, button="release"), Event(47_000, button="press")]
    run = make_run(events, 52.0, bridge=request.param)
    applied = record_applied_duty(run)
    trace = run.run()
    return run, trace, applied


def last_tick_before_hang_us(run):
    # The hang is applied at HANG_MS before that step's tick: the last tick,
    # and so the last refresh and watchdog feed, was one control period earlier.
    return (HANG_MS - 10) * 1000


def test_the_dead_man_zeroes_the_motor_50_to_70_ms_after_the_last_refresh(hung):
    run, _trace, applied = hung
    last_refresh = last_tick_before_hang_us(run)
    trips = [(t, d) for t, d in applied if t > last_refresh and d == 0]
    assert trips, applied[-5:]
    delay_ms = (trips[0][0] - last_refresh) / 1000
    assert 50 < delay_ms <= 70
    assert applied[-2][1] > 0  # it was driving head-down when the loop hung


def test_the_self_locking_table_stops_where_the_motor_stopped(hung):
    _run, trace, _applied = hung
    at_hang = rows(trace, HANG_MS / 1000)[0]
    stopped = rows(trace, HANG_MS / 1000 + 0.3, HANG_MS / 1000 + WDT_TIMEOUT_S)
    assert all(abs(trace["rate_dps"][i]) < 0.05 for i in stopped)
    drift = trace["angle_deg"][stopped[-1]] - trace["angle_deg"][at_hang]
    assert 0 <= drift < 0.25  # coasting at 2 deg/s for ~60 ms plus the motor's run-down
    assert all(trace["actuator_cmd"][i] == 0 for i in stopped)


def test_the_watchdog_resets_the_firmware_after_its_timeout(hung):
    run, trace, _applied = hung
    resets = [i for i, r in enumerate(trace["firmware_reset"]) if r]
    assert run.firmware_resets == 1 and len(resets) == 1
    reset_s = trace["t_s"][resets[0]]
    last_feed_s = last_tick_before_hang_us(run) / 1e6
    assert WDT_TIMEOUT_S < reset_s - last_feed_s <= WDT_TIMEOUT_S + 0.011
    assert trace["state"][resets[0] - 1] == "DESCENDING"  # frozen during the hang
    assert trace["state"][resets[0]] == "STARTUP"


def test_after_the_reset_it_recovers_home_slowly_then_needs_a_fresh_press(hung):
    _run, trace, _applied = hung
    reset = next(i for i, r in enumerate(trace["firmware_reset"]) if r)
    state = trace["state"]
    seen = []
    for s in state[reset:]:
        if not seen or seen[-1] != s:
            seen.append(s)
    assert seen == ["STARTUP", "RECOVERING", "HOME", "DESCENDING"]
    recovering = [i for i in range(reset, len(state)) if state[i] == "RECOVERING"]
    assert trace["angle_deg"][recovering[0]] > -40.0  # found away from home
    # Slowly: at the program's 2 deg/s return rate (the position loop's overshoot
    # stays within 25 %; the emergency return would be 4 deg/s), head-up only,
    # whatever the held button says.
    assert min(trace["rate_dps"][i] for i in recovering) > -1.25 * RETURN_RATE_DPS
    assert max(trace["rate_dps"][i] for i in recovering) < 0.05
    home = state.index("HOME", recovering[-1])
    assert trace["angle_deg"][home] == pytest.approx(-60.0, abs=1.0)
    # Held all along: home with the button held does not start a session ...
    assert all(trace["button_held"][i] for i in range(reset, home))
    descending = state.index("DESCENDING", home)
    # ... only the fresh press at 47 s does.
    assert trace["t_s"][descending] >= 47.0


def test_the_trace_keeps_the_angle_rate_and_transition_checks(hung):
    _run, trace, _applied = hung
    assert checks.angle_never_past_cap(trace) == []
    assert checks.rate_never_past_cap(trace) == []
    assert checks.no_head_down_motion_while_released(trace) == []
    assert checks.release_overtravel_within_bound(trace) == []
    assert checks.home_after_release_within_bound(trace, -60.0, 4.0) == []
    assert checks.only_allowed_transitions(trace) == []  # DESCENDING -> STARTUP: the reset


def test_the_only_acceleration_past_the_cap_is_the_dead_man_stop(hung):
    """The dead-man cuts the drive at once (not a planned ramp): the motor
    runs down in its time constant, about 45 deg/s^2 from 2 deg/s for a few
    ticks. Everything else stays within the 20 deg/s^2 cap."""
    _run, trace, applied = hung
    stop_s = next(t for t, d in applied if t > (HANG_MS - 10) * 1000 and d == 0) / 1e6
    over = [trace["t_s"][i] for i, a in enumerate(trace["accel_dps2"])
            if abs(a) > checks.ACCEL_CAP_DPS2]
    assert over and all(stop_s <= t <= stop_s + 0.1 for t in over)


def test_the_reset_puts_the_outputs_in_their_reset_state():
    events = [Event(1000, button="press"), Event(HANG_MS, fault="loop_hang")]
    run = make_run(events, 20.0, bridge="dual_pwm")
    while not run.firmware_resets:
        run.step()
    board = run.board
    assert board.motor_pwm.duty_u16() == 0 and board.motor_pwm_retract.duty_u16() == 0
    assert board.motor_enable.value() == 0
    assert not board.cpu_hung  # the reset ended the hang
    assert run.controller.state_name == "STARTUP"


def test_a_hang_shorter_than_the_watchdog_timeout_is_a_tick_overrun_that_returns_home():
    """No reset (the watchdog was fed in time), the dead-man stopped the motor
    during the hang, and the supervisor saw the late tick: a loop that lost
    300 ms is not trusted with the rest of the session, the table comes home."""
    run = make_run([Event(1000, button="press")], 60.0)
    while run.t_ms < HANG_MS:
        run.step()
    run.board.hang_cpu(300)
    trace = run.run()
    assert run.firmware_resets == 0 and not any(trace["firmware_reset"])
    during = rows(trace, HANG_MS / 1000 + 0.1, HANG_MS / 1000 + 0.3)
    assert all(trace["actuator_cmd"][i] == 0 for i in during)  # the dead-man stopped it
    after = rows(trace, HANG_MS / 1000 + 0.3)[0]
    assert "STARTUP" not in trace["state"][after:]
    assert "tick_overrun" in trace["fault"][after:after + 10]
    assert "EMERGENCY_RETURN" in trace["state"][after:after + 10]
    assert "HOLDING" not in trace["state"][after:]
    assert trace["state"][-1] == "HOME"
    assert checks.angle_never_past_cap(trace) == []
    assert checks.rate_never_past_cap(trace) == []
    assert checks.only_allowed_transitions(trace) == []


def test_a_hang_at_home_reboots_to_home_without_moving():
    run = make_run([Event(5000, fault="loop_hang")], 12.0)
    trace = run.run()
    assert run.firmware_resets == 1
    assert max(abs(r) for r in trace["rate_dps"]) < 1e-6
    assert trace["state"][-1] == "HOME"
    assert checks.only_allowed_transitions(trace) == []


def test_entering_startup_is_a_violation_unless_the_runner_recorded_a_reset():
    trace = {"t_s": [0.0, 0.01, 0.02, 0.03], "state": ["STARTUP", "HOME", "DESCENDING", "STARTUP"],
             "firmware_reset": [0, 0, 0, 0]}
    assert checks.only_allowed_transitions(trace) == [
        "transition DESCENDING -> STARTUP at t=0.03 s is not allowed"]
    trace["firmware_reset"][3] = 1
    assert checks.only_allowed_transitions(trace) == []
    trace["firmware_reset"] = ["0", "0", "0", "1"]  # as read back from a CSV
    assert checks.only_allowed_transitions(trace) == []
    del trace["firmware_reset"]  # an older trace without the column
    assert len(checks.only_allowed_transitions(trace)) == 1


def test_firmware_reset_is_the_last_trace_column_and_reaches_the_csv(tmp_path):
    assert TRACE_COLUMNS[-1] == "firmware_reset"
    assert TRACE_COLUMNS[:14] == (
        "t_s", "state", "button_held", "angle_deg", "angle_est_deg", "rate_dps",
        "actuator_cmd", "actuator_current_a", "fault", "accel_dps2", "target_deg", "plan_deg",
        "head_down_permitted", "injected_fault")
    run = make_run([Event(2000, fault="loop_hang")], 5.0)
    trace = run.run()
    path = tmp_path / "trace.csv"
    write_csv(trace, path)
    with open(path) as f:
        data = list(csv.DictReader(f))
    assert [r["firmware_reset"] for r in data].count("1") == 1
    assert {r["injected_fault"] for r in data} == {"", "loop_hang"}


def test_loop_hang_is_in_the_fault_catalogue_and_scenario_files_accept_it():
    assert "loop_hang" in faults.CATALOGUE
    assert faults.LOOP_HANG_MS > 1000  # longer than the watchdog timeout
    scenario = parse({"duration_s": 10.0, "user": {"mass_kg": 80.0, "height_m": 1.78},
                      "program": dict(PROGRAM), "event": [{"at_s": 3.0, "fault": "loop_hang"}]})
    assert scenario.events[0].fault == "loop_hang"
