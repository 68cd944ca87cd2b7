"""Plant: self-locking actuator, hard stops, switch positions, speed/force
sizing for every user, current and energy sanity, cost per step."""

import itertools
import math
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sim.plant import (
    Plant,
    TableParams,
    User,
    actuator_length_m,
    geometry_for_firmware,
    lever_arm_m,
)

TABLE = TableParams()
EXTREME_USERS = [User(m, h) for m in (40, 150) for h in (1.45, 2.00)]
HOME_STOP_DEG = TABLE.home_deg - 2.0
FAR_STOP_DEG = 92.0

masses = st.floats(min_value=40, max_value=150)
heights = st.floats(min_value=1.45, max_value=2.00)
angles = st.floats(min_value=HOME_STOP_DEG, max_value=FAR_STOP_DEG)
duties = st.floats(min_value=-1.0, max_value=1.0)


def angle_grid(step_deg=0.25):
    n = int((FAR_STOP_DEG - HOME_STOP_DEG) / step_deg)
    return [HOME_STOP_DEG + i * step_deg for i in range(n + 1)]


def run(plant, duty, seconds, dt_s=0.01):
    for _ in range(round(seconds / dt_s)):
        plant.step(dt_s, duty)


# --- users and parameters ------------------------------------------------------


@pytest.mark.parametrize("mass_kg, height_m", [(39.9, 1.7), (150.1, 1.7), (80, 1.44), (80, 2.01)])
def test_users_outside_the_rated_range_are_refused(mass_kg, height_m):
    with pytest.raises(ValueError):
        User(mass_kg, height_m)


def test_table_params_refuse_unknown_fields():
    assert TableParams(home_deg=-55.0).home_deg == -55.0
    with pytest.raises(TypeError):
        TableParams(home_angle=-55.0)


def test_start_angle_defaults_to_home_and_must_lie_in_the_stroke():
    assert Plant(TABLE, User(80, 1.75)).angle_deg == pytest.approx(TABLE.home_deg, abs=1e-9)
    with pytest.raises(ValueError):
        Plant(TABLE, User(80, 1.75), angle_deg=95.0)


# --- geometry -------------------------------------------------------------------


def test_actuator_length_rises_monotonically_over_the_whole_range():
    lengths = [actuator_length_m(TABLE, a) for a in angle_grid(0.1)]
    assert all(b > a for a, b in itertools.pairwise(lengths))
    assert min(lever_arm_m(TABLE, a) for a in angle_grid(0.1)) > 0.02


def test_firmware_geometry_reproduces_the_plant_lever_arm():
    geo = geometry_for_firmware(TABLE)
    assert set(geo) == {"lever_m", "base_m", "phi_offset_deg", "noload_speed_mps", "home_deg"}
    for angle in (-61.0, -30.0, 0.0, 45.0, 89.0):
        # What the firmware will compute: dL/dtheta from the law of cosines.
        phi = math.radians(angle + geo["phi_offset_deg"])
        r, b = geo["lever_m"], geo["base_m"]
        length = math.sqrt(r * r + b * b - 2 * r * b * math.cos(phi))
        assert r * b * math.sin(phi) / length == pytest.approx(lever_arm_m(TABLE, angle), rel=1e-12)


@given(angle=angles)
def test_angle_always_matches_the_actuator_length(angle):
    plant = Plant(TABLE, User(80, 1.8), angle_deg=angle)
    assert plant.angle_deg == pytest.approx(angle, abs=1e-9)
    length = actuator_length_m(TABLE, HOME_STOP_DEG) + plant.stroke_m
    assert length == pytest.approx(actuator_length_m(TABLE, angle), abs=1e-12)


def test_gravity_torque_pulls_a_tall_user_head_down_and_a_short_one_head_up_when_flat():
    assert Plant(TABLE, User(80, 2.0), angle_deg=0.0).gravity_torque_nm(0.0) > 0
    assert Plant(TABLE, User(80, 1.45), angle_deg=0.0).gravity_torque_nm(0.0) < 0
    # Head-down vertical: the body hangs with its centre of mass off the pivot
    # line by the perpendicular offset, pulling further head-down.
    assert Plant(TABLE, User(80, 1.75), angle_deg=0.0).gravity_torque_nm(90.0) > 0


# --- self-locking -----------------------------------------------------------------


@settings(max_examples=60)
@given(mass=masses, height=heights, angle=angles)
def test_no_motion_at_all_with_duty_zero_for_any_user_and_angle(mass, height, angle):
    plant = Plant(TABLE, User(mass, height), angle_deg=angle)
    stroke = plant.stroke_m
    run(plant, 0.0, 2.0)
    assert plant.stroke_m == stroke
    assert plant.rate_dps == 0.0
    assert plant.current_a == 0.0


@settings(max_examples=30)
@given(mass=masses, height=heights, angle=st.floats(min_value=-50, max_value=80), duty=duties)
def test_after_drive_stops_the_actuator_coasts_less_than_speed_times_tau_then_holds(
    mass, height, angle, duty
):
    plant = Plant(TABLE, User(mass, height), angle_deg=angle)
    run(plant, duty, 0.5)
    speed = abs(plant.stroke_speed_mps)
    stroke_at_cut = plant.stroke_m
    run(plant, 0.0, 0.5)
    coast_m = abs(plant.stroke_m - stroke_at_cut)
    assert coast_m <= speed * TABLE.motor_time_constant_s * 1.001 + 1e-12
    assert plant.stroke_speed_mps == 0.0
    held = plant.stroke_m
    run(plant, 0.0, 2.0)
    assert plant.stroke_m == held


@settings(max_examples=40)
@given(mass=masses, height=heights, angle=angles, duty=duties)
def test_an_assisting_load_never_drives_faster_than_duty_times_noload_speed(
    mass, height, angle, duty
):
    plant = Plant(TABLE, User(mass, height), angle_deg=angle)
    limit = abs(duty) * TABLE.noload_speed_mps * (1 + 1e-12)
    for _ in range(150):
        plant.step(0.01, duty)
        assert abs(plant.stroke_speed_mps) <= limit
        if duty:
            assert plant.stroke_speed_mps * duty >= 0  # never runs backwards


def test_speed_settles_with_the_motor_time_constant_when_drive_is_cut():
    plant = Plant(TABLE, User(80, 1.75), angle_deg=0.0)
    run(plant, 0.5, 1.0)
    v0 = plant.stroke_speed_mps
    plant.step(TABLE.motor_time_constant_s, 0.0)
    assert plant.stroke_speed_mps == pytest.approx(v0 * math.exp(-1), rel=1e-9)


# --- hard stops and switches ------------------------------------------------------


@pytest.mark.parametrize("user", EXTREME_USERS, ids=repr)
def test_full_duty_ends_stalled_at_the_far_hard_stop(user):
    plant = Plant(TABLE, user, angle_deg=80.0)
    run(plant, 1.0, 3.0)
    assert plant.angle_deg == pytest.approx(FAR_STOP_DEG, abs=1e-6)
    assert plant.at_hard_stop
    assert plant.far_switch and not plant.home_switch
    assert plant.rate_dps == 0.0
    assert plant.current_a == TABLE.stall_current_a
    run(plant, 0.0, 0.1)
    assert plant.current_a == 0.0
    run(plant, -0.5, 0.5)
    assert plant.angle_deg < FAR_STOP_DEG - 1.0  # drives away from the stop


@pytest.mark.parametrize("user", EXTREME_USERS, ids=repr)
def test_full_reverse_duty_ends_stalled_at_the_home_side_hard_stop(user):
    plant = Plant(TABLE, user, angle_deg=-40.0)
    run(plant, -1.0, 4.0)
    assert plant.angle_deg == pytest.approx(HOME_STOP_DEG, abs=1e-6)
    assert plant.at_hard_stop and plant.home_switch and not plant.far_switch
    assert plant.current_a == TABLE.stall_current_a


@given(angle=angles)
def test_end_switches_engage_half_a_degree_past_home_and_at_89_5_deg(angle):
    plant = Plant(TABLE, User(80, 1.8), angle_deg=angle)
    true_angle = plant.angle_deg
    assert plant.home_switch == (true_angle <= TABLE.home_deg - 0.5)
    assert plant.far_switch == (true_angle >= 89.5)


def test_switches_trip_on_the_way_through_a_full_stroke():
    """Both switches are over-travel protection: past home, and past 88.5 before 90."""
    plant = Plant(TABLE, User(80, 1.8), angle_deg=TABLE.home_deg - 1.5)
    assert plant.home_switch
    seen_far_at = None
    left_home_at = None
    for _ in range(4000):
        plant.step(0.01, 0.5)
        if left_home_at is None and not plant.home_switch:
            left_home_at = plant.angle_deg
        if seen_far_at is None and plant.far_switch:
            seen_far_at = plant.angle_deg
    assert left_home_at == pytest.approx(TABLE.home_deg - 0.5, abs=0.2)
    assert seen_far_at == pytest.approx(89.5, abs=0.2)


def test_home_switch_is_not_engaged_at_the_home_angle():
    assert not Plant(TABLE, User(80, 1.8)).home_switch


# --- speed and force sizing --------------------------------------------------------


@pytest.mark.parametrize("user", EXTREME_USERS, ids=repr)
def test_stall_force_is_at_least_1_5_times_the_worst_load_over_the_range(user):
    plant = Plant(TABLE, user)
    worst_n = max(abs(plant.static_load_force_n(a)) for a in angle_grid())
    assert TABLE.stall_force_n >= 1.5 * worst_n


@pytest.mark.parametrize("user", EXTREME_USERS, ids=repr)
def test_full_duty_reaches_8_dps_at_every_angle_in_both_directions(user):
    plant = Plant(TABLE, user)
    for angle in angle_grid():
        assert plant.steady_rate_dps(angle, 1.0) >= 8.0
        assert plant.steady_rate_dps(angle, -1.0) <= -8.0


@pytest.mark.parametrize("user", EXTREME_USERS, ids=repr)
@pytest.mark.parametrize("duty", [1.0, -1.0])
def test_a_full_duty_stroke_runs_above_8_dps_once_up_to_speed(user, duty):
    start = HOME_STOP_DEG if duty > 0 else FAR_STOP_DEG
    plant = Plant(TABLE, user, angle_deg=start)
    plant.step(0.01, duty)
    steps = 0
    while not plant.at_hard_stop:
        steps += 1
        if steps > 20:  # 0.2 s to get up to speed
            assert abs(plant.rate_dps) >= 8.0
        plant.step(0.01, duty)
    assert steps < 2000


@settings(max_examples=40)
@given(mass=masses, height=heights, angle=st.floats(min_value=-55, max_value=85), duty=duties)
def test_settled_speed_follows_the_load_line(mass, height, angle, duty):
    plant = Plant(TABLE, User(mass, height), angle_deg=angle)
    run(plant, duty, 0.6)  # several (inertia-stretched) time constants
    assume(not plant.at_hard_stop)
    load_n = plant.static_load_force_n(plant.angle_deg)
    opposing_n = max(0.0, load_n if duty > 0 else -load_n)
    expected = duty * TABLE.noload_speed_mps * max(0.0, 1 - opposing_n / TABLE.stall_force_n)
    assert plant.stroke_speed_mps == pytest.approx(expected, rel=0.02, abs=2e-5)


def test_a_weak_actuator_stalls_against_a_load_it_cannot_lift():
    user = User(150, 1.45)
    plant = Plant(TABLE, user, angle_deg=0.0)
    load_n = plant.static_load_force_n(0.0)
    assert load_n > 0  # short user: head-up torque, the actuator must push
    plant.force_scale = 0.9 * load_n / TABLE.stall_force_n
    stroke = plant.stroke_m
    run(plant, 1.0, 1.0)
    assert plant.stroke_m == stroke
    assert plant.current_a == TABLE.stall_current_a
    run(plant, -1.0, 0.5)  # with the load it still moves
    assert plant.stroke_m < stroke


def test_resting_force_is_the_static_load_and_accel_is_the_rate_derivative():
    plant = Plant(TABLE, User(100, 1.9), angle_deg=20.0)
    plant.step(0.01, 0.0)
    assert plant.force_n == pytest.approx(plant.static_load_force_n(20.0), rel=1e-9)
    previous = plant.rate_dps
    plant.step(0.01, 0.6)
    assert plant.accel_dps2 == pytest.approx((plant.rate_dps - previous) / 0.01, rel=1e-9)
    assert plant.rate_dps > 0


def test_a_long_step_equals_the_same_time_in_10ms_steps():
    one = Plant(TABLE, User(70, 1.7), angle_deg=10.0)
    many = Plant(TABLE, User(70, 1.7), angle_deg=10.0)
    one.step(0.05, 0.7)
    run(many, 0.7, 0.05)
    assert one.angle_deg == pytest.approx(many.angle_deg, abs=1e-9)
    assert one.stroke_speed_mps == pytest.approx(many.stroke_speed_mps, rel=1e-9)


def test_duty_outside_plus_minus_one_is_refused():
    with pytest.raises(ValueError):
        Plant(TABLE, User(70, 1.7)).step(0.01, 1.01)


# --- current and energy -------------------------------------------------------------


def test_starting_from_rest_draws_an_inrush_near_stall_that_dies_away():
    plant = Plant(TABLE, User(80, 1.75), angle_deg=0.0)
    plant.step(0.01, 1.0)
    inrush_a = plant.current_a
    run(plant, 1.0, 0.5)
    assert inrush_a > 0.7 * TABLE.stall_current_a
    assert plant.current_a < 0.5 * inrush_a
    assert plant.current_a >= TABLE.noload_current_a


@settings(max_examples=40)
@given(mass=masses, height=heights, angle=angles, duty=duties)
def test_motor_current_never_exceeds_what_the_bridge_voltage_lets_through(
    mass, height, angle, duty
):
    """(duty x V - back-EMF) / R <= duty x the stall current, whatever the
    load: a trim of a few per mille draws a few per mille of the stall current."""
    plant = Plant(TABLE, User(mass, height), angle_deg=angle)
    for _ in range(100):
        plant.step(0.01, duty)
        assert 0.0 <= plant.current_a <= abs(duty) * TABLE.stall_current_a + 1e-12


# Known plant defect (found 2026-11-24, open): since the current became limited
# by the bridge's voltage (10a2bd3), the speed law (duty x no-load speed x
# (1 - load / stall force): full stall force at any duty) lets the rod move
# below noload/stall duty (8.3 %) on less than the motor's friction current and
# with more mechanical output than electrical input (duty -0.031, 40 kg, 2 m,
# 0 deg: 0.42 W in, 0.44 W out). Mechanical output also passes the input near
# 90 deg at high duty (gravity's sign). A real actuator stalls there: a dead
# band the firmware does not yet compensate. strict: this fails CI once fixed.
@pytest.mark.xfail(strict=True, reason="plant moves below noload/stall duty (known defect)")
@settings(max_examples=40)
@given(mass=masses, height=heights, angle=st.floats(min_value=-58, max_value=88), duty=duties)
def test_electrical_power_covers_mechanical_output_and_current_stays_in_range(
    mass, height, angle, duty
):
    plant = Plant(TABLE, User(mass, height), angle_deg=angle)
    for _ in range(100):
        plant.step(0.01, duty)
        assert 0.0 <= plant.current_a <= TABLE.stall_current_a
        if duty == 0.0:
            assert plant.current_a == 0.0
            continue
        if plant.at_hard_stop:
            continue
        assert plant.current_a >= TABLE.noload_current_a
        electrical_w = TABLE.supply_v * abs(duty) * plant.current_a
        mechanical_w = plant.force_n * plant.stroke_speed_mps
        assert electrical_w >= mechanical_w


# --- cost -------------------------------------------------------------------------


def test_a_10ms_plant_step_costs_well_under_the_budget():
    # Budget ~20 µs per step (sim >= 100x real time); assert a loose bound so a
    # loaded CI machine does not flake, but an accidental 10x slowdown fails.
    plant = Plant(TABLE, User(90, 1.8), angle_deg=0.0)
    n = 5000
    start = time.perf_counter()
    for i in range(n):
        plant.step(0.01, 0.4 if (i // 400) % 2 else -0.4)
    per_step_us = (time.perf_counter() - start) / n * 1e6
    assert per_step_us < 60.0
