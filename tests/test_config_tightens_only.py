"""Configuration can only tighten the hard caps; bad values name key and range."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware import limits as L
from firmware.config import ConfigError, Limits, Program, Table, release_stop_distance_mdeg

GOOD_PROGRAM = {
    "target_angle_deg": 30.0,
    "hold_s": 60.0,
    "rock_amplitude_deg": 5.0,
    "rock_period_s": 10.0,
}
CAPS = {
    "angle_max_deg": L.SETPOINT_MAX_MDEG / 1000,
    "head_down_rate_max_dps": L.HEAD_DOWN_RATE_MAX_MDPS / 1000,
    "rate_max_dps": L.RATE_MAX_MDPS / 1000,
    "accel_max_dps2": L.ACCEL_MAX_MDPS2 / 1000,
    "jerk_max_dps3": L.JERK_MAX_MDPS3 / 1000,
}


def test_default_limits_are_the_hard_caps():
    lim = Limits()
    assert lim.setpoint_max_mdeg == L.SETPOINT_MAX_MDEG
    assert lim.head_down_rate_max_mdps == L.HEAD_DOWN_RATE_MAX_MDPS
    assert lim.rate_max_mdps == L.RATE_MAX_MDPS
    assert lim.accel_max_mdps2 == L.ACCEL_MAX_MDPS2
    assert lim.jerk_max_mdps3 == L.JERK_MAX_MDPS3


@pytest.mark.parametrize("key", sorted(CAPS))
def test_limit_above_hard_cap_is_rejected_naming_key_and_range(key):
    with pytest.raises(ConfigError) as err:
        Limits({key: CAPS[key] * 1.01 + 0.01})
    msg = str(err.value)
    assert "limits.%s" % key in msg and "allowed range" in msg


@given(
    angle=st.floats(0.0, CAPS["angle_max_deg"]),
    rate=st.floats(1.0, CAPS["rate_max_dps"]),
    accel=st.floats(2.0, CAPS["accel_max_dps2"]),
    jerk=st.floats(5.0, CAPS["jerk_max_dps3"]),
    head_down=st.floats(0.2, CAPS["head_down_rate_max_dps"]),
)
def test_any_accepted_limits_are_no_looser_than_the_caps(angle, rate, accel, jerk, head_down):
    data = {
        "angle_max_deg": angle,
        "rate_max_dps": rate,
        "accel_max_dps2": accel,
        "jerk_max_dps3": jerk,
        "head_down_rate_max_dps": head_down,
        "emergency_return_rate_dps": max(1.0, min(rate, 4.0) - 0.001),
    }
    try:
        lim = Limits(data)
    except ConfigError as err:
        # The only other reason to refuse: the release stop would not fit.
        assert "release stop" in str(err)
        return
    assert lim.setpoint_max_mdeg <= L.SETPOINT_MAX_MDEG
    assert lim.rate_max_mdps <= L.RATE_MAX_MDPS
    assert lim.head_down_rate_max_mdps <= L.HEAD_DOWN_RATE_MAX_MDPS
    assert lim.accel_max_mdps2 <= L.ACCEL_MAX_MDPS2
    assert lim.jerk_max_mdps3 <= L.JERK_MAX_MDPS3
    assert lim.emergency_rate_mdps <= lim.rate_max_mdps
    stop = release_stop_distance_mdeg(lim.head_down_rate_max_mdps, lim.accel_max_mdps2,
                                      lim.jerk_max_mdps3)
    assert stop <= L.RELEASE_STOP_BUDGET_MDEG


def test_hard_caps_fit_the_release_stop_budget():
    stop = release_stop_distance_mdeg(
        L.HEAD_DOWN_RATE_MAX_MDPS, L.ACCEL_MAX_MDPS2, L.JERK_MAX_MDPS3
    )
    assert stop <= L.RELEASE_STOP_BUDGET_MDEG


def test_soft_accel_that_breaks_the_release_stop_is_rejected():
    with pytest.raises(ConfigError, match="release stop"):
        Limits({"accel_max_dps2": 2.0, "jerk_max_dps3": 5.0})


def test_unknown_limit_key_is_rejected():
    with pytest.raises(ConfigError, match="unknown key 'rate_max'"):
        Limits({"rate_max": 3})


def test_program_reads_into_fixed_point():
    p = Program(GOOD_PROGRAM)
    assert p.target_mdeg == 30000
    assert p.hold_ms == 60000
    assert p.rock_amplitude_mdeg == 5000
    assert p.rock_period_ms == 10000
    assert p.descent_rate_mdps == L.DEFAULT_DESCENT_RATE_MDPS
    assert p.rock_cycles == 3


@pytest.mark.parametrize(
    "key,value,needle",
    [
        ("target_angle_deg", 95.0, "program.target_angle_deg = 95.0 is outside the allowed range"),
        ("hold_s", -1.0, "program.hold_s"),
        ("hold_s", 4000.0, "program.hold_s"),
        ("rock_amplitude_deg", 12.0, "0.0 .. 10.0 deg"),
        ("rock_period_s", 5.0, "8.0 .. 120.0 s"),
        ("descent_rate_dps", 4.0, "program.descent_rate_dps"),
        ("return_rate_dps", 7.0, "program.return_rate_dps"),
        ("target_angle_deg", "thirty", "must be a number"),
        ("target_angle_deg", True, "must be a number"),
        ("target_angle_deg", math.nan, "outside the allowed range"),
        ("rock_cycles", 2.5, "whole number"),
    ],
)
def test_bad_program_value_is_rejected_with_key_and_range(key, value, needle):
    data = dict(GOOD_PROGRAM)
    data[key] = value
    with pytest.raises(ConfigError) as err:
        Program(data)
    assert needle in str(err.value)


def test_program_missing_key_is_named():
    data = dict(GOOD_PROGRAM)
    del data["hold_s"]
    with pytest.raises(ConfigError, match=r"program\.hold_s is missing"):
        Program(data)


def test_program_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown key 'speed'"):
        Program(dict(GOOD_PROGRAM, speed=3))


def test_table_home_must_be_near_upright():
    base = {"lever_m": 0.2, "base_m": 0.5, "phi_offset_deg": 80.0, "noload_speed_mps": 0.03}
    Table(dict(base, home_deg=-60.0))
    with pytest.raises(ConfigError, match=r"table\.home_deg"):
        Table(dict(base, home_deg=-20.0))
