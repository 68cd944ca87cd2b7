"""Reading the session program, limits and table parameters with bounds.

Like Klipper's configfile: every value is read with its type and allowed
range, unknown keys are rejected, and every error names the section, the key
and the allowed range. Limits can only tighten the hard caps in
firmware/limits.py. Runs once at start-up (floats are fine here); the results
are integers in the control tick's fixed-point units.
"""

from firmware import limits as L


class ConfigError(ValueError):
    """A bad value in a program, limits or table section."""


def _number(section, data, key, default, lo, hi, unit):
    if key not in data:
        if default is None:
            raise ConfigError(
                "%s.%s is missing (allowed %s .. %s %s)" % (section, key, lo, hi, unit)
            )
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            "%s.%s must be a number of %s, got %r" % (section, key, unit, value)
        )
    if not (lo <= value <= hi):  # also rejects NaN
        raise ConfigError(
            "%s.%s = %s is outside the allowed range %s .. %s %s"
            % (section, key, value, lo, hi, unit)
        )
    return value


def _integer(section, data, key, default, lo, hi, unit):
    value = _number(section, data, key, default, lo, hi, unit)
    if value != int(value):
        raise ConfigError(
            "%s.%s must be a whole number of %s, got %r" % (section, key, unit, value)
        )
    return int(value)


def _reject_unknown(section, data, allowed):
    if not isinstance(data, dict):
        raise ConfigError("%s must be a table of keys, got %r" % (section, data))
    for key in data:
        if key not in allowed:
            raise ConfigError(
                "%s: unknown key '%s' (allowed: %s)" % (section, key, ", ".join(allowed))
            )


def _m(value_deg):
    """Degrees (or deg/s ...) to the milli fixed-point unit, rounded."""
    return int(round(value_deg * 1000))


def release_stop_distance_mdeg(rate_mdps, accel_mdps2, jerk_mdps3):
    """Distance the release stop from `rate` covers (floats: config time only).

    The stop is planned at RELEASE_BRAKE_ACCEL_NUM/DEN of the accel limit and
    at the jerk limit (firmware/session.py emergency_return).
    """
    v = rate_mdps / 1000.0
    a = accel_mdps2 * L.RELEASE_BRAKE_ACCEL_NUM / L.RELEASE_BRAKE_ACCEL_DEN / 1000.0
    j = jerk_mdps3 / 1000.0
    if v >= a * a / j:
        d = v * (v / a + a / j) / 2.0
    else:
        d = v * (v / j) ** 0.5
    return d * 1000.0


RELEASE_STOP_BUDGET_MDEG = L.RELEASE_STOP_BUDGET_MDEG


class Limits:
    """The caps in force: the hard caps, possibly tightened by configuration."""

    KEYS = (
        "angle_max_deg",
        "head_down_rate_max_dps",
        "rate_max_dps",
        "accel_max_dps2",
        "jerk_max_dps3",
        "emergency_return_rate_dps",
    )

    def __init__(self, data=None):
        data = {} if data is None else data
        s = "limits"
        _reject_unknown(s, data, self.KEYS)
        self.setpoint_max_mdeg = _m(
            _number(s, data, "angle_max_deg", L.SETPOINT_MAX_MDEG / 1000, 0.0,
                    L.SETPOINT_MAX_MDEG / 1000, "deg")
        )
        self.head_down_rate_max_mdps = _m(
            _number(s, data, "head_down_rate_max_dps", L.HEAD_DOWN_RATE_MAX_MDPS / 1000, 0.2,
                    L.HEAD_DOWN_RATE_MAX_MDPS / 1000, "deg/s")
        )
        # Never so low that the table cannot come home in reasonable time.
        self.rate_max_mdps = _m(
            _number(s, data, "rate_max_dps", L.RATE_MAX_MDPS / 1000, 1.0,
                    L.RATE_MAX_MDPS / 1000, "deg/s")
        )
        self.accel_max_mdps2 = _m(
            _number(s, data, "accel_max_dps2", L.ACCEL_MAX_MDPS2 / 1000, 2.0,
                    L.ACCEL_MAX_MDPS2 / 1000, "deg/s^2")
        )
        self.jerk_max_mdps3 = _m(
            _number(s, data, "jerk_max_dps3", L.JERK_MAX_MDPS3 / 1000, 5.0,
                    L.JERK_MAX_MDPS3 / 1000, "deg/s^3")
        )
        self.emergency_rate_mdps = _m(
            _number(s, data, "emergency_return_rate_dps", L.DEFAULT_EMERGENCY_RATE_MDPS / 1000,
                    1.0, self.rate_max_mdps / 1000, "deg/s")
        )
        # The release stop's planned deceleration (firmware/session.py).
        self.release_brake_accel_mdps2 = (
            self.accel_max_mdps2 * L.RELEASE_BRAKE_ACCEL_NUM // L.RELEASE_BRAKE_ACCEL_DEN
        )
        stop_mdeg = release_stop_distance_mdeg(
            self.head_down_rate_max_mdps, self.accel_max_mdps2, self.jerk_max_mdps3
        )
        if stop_mdeg > RELEASE_STOP_BUDGET_MDEG:
            raise ConfigError(
                "limits: with head_down_rate_max_dps = %.2f, accel_max_dps2 = %.1f and "
                "jerk_max_dps3 = %.1f a release stop takes %.2f deg; it must fit in %.2f deg "
                "(lower the head-down rate or raise accel/jerk within their caps)"
                % (self.head_down_rate_max_mdps / 1000, self.accel_max_mdps2 / 1000,
                   self.jerk_max_mdps3 / 1000, stop_mdeg / 1000, RELEASE_STOP_BUDGET_MDEG / 1000)
            )


class Program:
    """One inversion session: descend, hold, rock, return with a rest near flat.

    Keys are those of a scenario's [program] table; all but the first four
    are optional. Rates are further capped by the Limits in force.
    """

    KEYS = (
        "target_angle_deg",
        "hold_s",
        "rock_amplitude_deg",
        "rock_period_s",
        "rock_cycles",
        "descent_rate_dps",
        "return_rate_dps",
        "rest_angle_deg",
        "rest_s",
    )

    def __init__(self, data):
        s = "program"
        _reject_unknown(s, data, self.KEYS)
        # Full inversion (90) is accepted; the planner aims at most at
        # SETPOINT_MAX so the true angle stays under the 90 deg cap.
        self.target_mdeg = _m(_number(s, data, "target_angle_deg", None, -30.0, 90.0, "deg"))
        self.hold_ms = _m(_number(s, data, "hold_s", None, 0.0, L.SESSION_MAX_MS / 1000, "s"))
        self.rock_amplitude_mdeg = _m(
            _number(s, data, "rock_amplitude_deg", None, 0.0, L.ROCK_AMPLITUDE_MAX_MDEG / 1000,
                    "deg")
        )
        self.rock_period_ms = _m(
            _number(s, data, "rock_period_s", None, L.ROCK_PERIOD_MIN_MS / 1000, 120.0, "s")
        )
        self.rock_cycles = _integer(s, data, "rock_cycles", 3, 1, L.ROCK_CYCLES_MAX, "cycles")
        self.descent_rate_mdps = _m(
            _number(s, data, "descent_rate_dps", L.DEFAULT_DESCENT_RATE_MDPS / 1000, 0.2,
                    L.HEAD_DOWN_RATE_MAX_MDPS / 1000, "deg/s")
        )
        self.return_rate_mdps = _m(
            _number(s, data, "return_rate_dps", L.DEFAULT_RETURN_RATE_MDPS / 1000, 0.2,
                    L.RATE_MAX_MDPS / 1000, "deg/s")
        )
        self.rest_mdeg = _m(
            _number(s, data, "rest_angle_deg", 0.0, L.REST_ANGLE_MIN_MDEG / 1000,
                    L.REST_ANGLE_MAX_MDEG / 1000, "deg")
        )
        self.rest_ms = _m(_number(s, data, "rest_s", 20.0, 0.0, 600.0, "s"))


class Table:
    """Table parameters: home angle, actuator geometry, IMU calibration.

    Geometry (for the position loop's feed-forward): the actuator runs from a
    frame anchor `base_m` from the pivot to a lever `lever_m` on the table;
    the angle between them is angle + phi_offset_deg; `noload_speed_mps` is
    the actuator's speed at full duty without load.
    """

    KEYS = (
        "home_deg",
        "lever_m",
        "base_m",
        "phi_offset_deg",
        "noload_speed_mps",
        "imu_mount_offset_deg",
        "pot_retracted_deg",
        "pot_stroke_m",
        "jam_current_a",
        "duty_on_max_s",
        "duty_cycle_percent",
    )

    def __init__(self, data):
        s = "table"
        _reject_unknown(s, data, self.KEYS)
        self.home_mdeg = _m(
            _number(s, data, "home_deg", None, L.HOME_MIN_MDEG / 1000, L.HOME_MAX_MDEG / 1000,
                    "deg")
        )
        self.lever_m = _number(s, data, "lever_m", None, 0.05, 1.0, "m")
        self.base_m = _number(s, data, "base_m", None, 0.05, 2.0, "m")
        self.phi_offset_deg = _number(s, data, "phi_offset_deg", None, -180.0, 180.0, "deg")
        self.noload_speed_mps = _number(s, data, "noload_speed_mps", None, 0.002, 0.2, "m/s")
        self.imu_mount_offset_mdeg = _m(
            _number(s, data, "imu_mount_offset_deg", 0.0, -10.0, 10.0, "deg")
        )
        # Actuator position potentiometer (optional): read_u16 0 at the
        # retracted end of the stroke (that angle), 65535 after pot_stroke_m.
        # Both or neither: a half-calibrated pot would be trusted wrongly.
        has_a = "pot_retracted_deg" in data
        if has_a != ("pot_stroke_m" in data):
            raise ConfigError(
                "table: pot_retracted_deg and pot_stroke_m go together (the position "
                "potentiometer's calibration); give both or neither"
            )
        self.pot_retracted_mdeg = None
        self.pot_stroke_m = None
        if has_a:
            self.pot_retracted_mdeg = _m(
                _number(s, data, "pot_retracted_deg", None, -90.0, 0.0, "deg"))
            self.pot_stroke_m = _number(s, data, "pot_stroke_m", None, 0.02, 1.5, "m")
        # Jam: driven at full duty and not moving, the motor draws more than
        # this (pro rata at a lower duty: the stall current follows the voltage).
        self.jam_current_ma = _m(_number(s, data, "jam_current_a", 12.0, 0.5, 60.0, "A"))
        # Duty budget (actuator rating, like a care-bed control box): at most
        # duty_on_max_s of motor on-time in a row, refilled at the rated duty.
        self.duty_on_max_ms = _m(_number(s, data, "duty_on_max_s", 300.0, 30.0, 1200.0, "s"))
        self.duty_cycle_percent = _integer(s, data, "duty_cycle_percent", 10, 1, 50, "%")
