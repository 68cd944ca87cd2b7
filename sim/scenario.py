"""Scenario files: who is on the table, what session they run, what happens when.

TOML, every key checked; see README.md "Scenario format". Errors are
ScenarioError with a message naming the file, the key and the allowed range.
The [program] table is checked by the firmware's own config reader
(firmware/config.py), so the simulator accepts exactly what the firmware does.

[profile] (optional): the user's therapy profile (firmware/therapy.py, the
same keys as the board's profile.json), so that progression and its caps can
be simulated. Without it the run is the [program] as given. With it, the
programs come from the profile, session after session (sim/profile_driver.py
records each session and hands the controller the next program), and
[program] becomes optional: when given it is the ceiling, as config.json's
program is on the board (therapy.cap_program). Two keys are the simulator's:

    [profile]
    start_epoch_s = 1767600000  # wall clock at t = 0 (s since 1970); default
                                # DEFAULT_START_EPOCH_S (2026-01-05 08:00 UTC)
    clock_set = true            # false: the board's clock is not set (no dates:
                                # no daily cap, no full inversion)
    clearance = "cleared"       # shorthand: every clearance answer that clears;
                                # or a [profile.clearance] table of answers
    [profile.settings]          # optional, therapy.SETTINGS
    [profile.progress]          # optional, therapy.PROGRESS (+ first_s)
    [[profile.history]]         # optional, session records
"""

import math
import tomllib

from firmware import therapy
from firmware.config import ConfigError, Program
from firmware.device_config import CONSERVATIVE_PROGRAM
from sim.faults import CATALOGUE
from sim.plant import User

MASS_RANGE_KG = (40.0, 150.0)
HEIGHT_RANGE_M = (1.45, 2.00)
DURATION_RANGE_S = (0.1, 7200.0)
TOP_KEYS = ("duration_s", "seed", "user", "program", "profile", "event")
PROFILE_SIM_KEYS = ("start_epoch_s", "clock_set")
DEFAULT_START_EPOCH_S = 1767600000  # 2026-01-05 08:00 UTC, a Monday morning
USER_KEYS = ("mass_kg", "height_m")
EVENT_KEYS = ("at_s", "button", "fault")
BUTTON_ACTIONS = ("press", "release")


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with a message saying why."""


class Event:
    """One timed event: a button action or an injected fault."""

    def __init__(self, at_ms, button=None, fault=None):
        self.at_ms = at_ms
        self.button = button
        self.fault = fault

    def __repr__(self):
        what = "button=%s" % self.button if self.button else "fault=%s" % self.fault
        return "Event(at_ms=%d, %s)" % (self.at_ms, what)


class Scenario:
    """program/program_data: what the firmware boots with. With a [profile]:
    profile (validated, therapy.validate_profile), profile_start_s (the wall
    clock at t = 0, None: clock not set), program_ceiling ([program] as
    given, or None); program is then the profile's first program (or, when
    the profile gives none, the conservative one, refused at once by the
    ProfileDriver)."""

    def __init__(self, duration_ms, seed, user, program, program_data, events, name="",
                 profile=None, profile_start_s=None, program_ceiling=None):
        self.duration_ms = duration_ms
        self.seed = seed
        self.user = user
        self.program = program
        self.program_data = program_data
        self.events = events
        self.name = name
        self.profile = profile
        self.profile_start_s = profile_start_s
        self.program_ceiling = program_ceiling


def _unknown(where, data, allowed):
    if not isinstance(data, dict):
        raise ScenarioError("%s must be a table, got %r" % (where, data))
    for key in data:
        if key not in allowed:
            raise ScenarioError(
                "%s: unknown key '%s' (allowed: %s)" % (where, key, ", ".join(allowed))
            )


def _number(where, data, key, lo, hi, unit):
    if key not in data:
        raise ScenarioError("%s.%s is missing (a number, %s .. %s %s)" % (where, key, lo, hi, unit))
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError("%s.%s must be a number of %s, got %r" % (where, key, unit, value))
    if math.isnan(value) or not lo <= value <= hi:
        raise ScenarioError(
            "%s.%s = %s is outside the allowed range %s .. %s %s"
            % (where, key, value, lo, hi, unit)
        )
    return float(value)


def parse(data, name="scenario"):
    """Build a Scenario from already-parsed TOML data."""
    _unknown(name, data, TOP_KEYS)
    duration_s = _number(name, data, "duration_s", *DURATION_RANGE_S, "s")
    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ScenarioError("%s.seed must be a whole number >= 0, got %r" % (name, seed))
    if "user" not in data:
        raise ScenarioError("%s: the [user] table is missing (mass_kg, height_m)" % name)
    user_data = data["user"]
    _unknown("[user]", user_data, USER_KEYS)
    user = User(
        mass_kg=_number("[user]", user_data, "mass_kg", *MASS_RANGE_KG, "kg"),
        height_m=_number("[user]", user_data, "height_m", *HEIGHT_RANGE_M, "m"),
    )
    profile = start_s = ceiling = None
    if "profile" in data:
        profile, start_s = parse_profile(data["profile"])
    if "program" not in data and profile is None:
        raise ScenarioError("%s: the [program] table is missing" % name)
    if "program" in data:
        try:
            program = Program(data["program"])
        except ConfigError as err:
            raise ScenarioError("[%s" % str(err).replace("program", "program]", 1)) from None
        program_data = dict(data["program"])
    if profile is not None:
        ceiling = program_data if "program" in data else None
        first, _reason = therapy.session_program(profile, start_s)
        program_data = therapy.cap_program(first or CONSERVATIVE_PROGRAM, ceiling)
        program = Program(program_data)
    raw_events = data.get("event", [])
    if not isinstance(raw_events, list):
        raise ScenarioError("%s: 'event' must be an array of tables ([[event]])" % name)
    events = []
    for i, ev in enumerate(raw_events):
        where = "[[event]] #%d" % (i + 1)
        _unknown(where, ev, EVENT_KEYS)
        at_ms = int(round(_number(where, ev, "at_s", 0.0, duration_s, "s") * 1000))
        has_button = "button" in ev
        has_fault = "fault" in ev
        if has_button == has_fault:
            raise ScenarioError("%s: give exactly one of 'button' or 'fault'" % where)
        if has_button:
            if ev["button"] not in BUTTON_ACTIONS:
                raise ScenarioError(
                    "%s.button = %r: allowed values are %s"
                    % (where, ev["button"], ", ".join('"%s"' % a for a in BUTTON_ACTIONS))
                )
            events.append(Event(at_ms, button=ev["button"]))
        else:
            if ev["fault"] not in CATALOGUE:
                raise ScenarioError(
                    "%s.fault = %r is not in the fault catalogue (known: %s)"
                    % (where, ev["fault"], ", ".join(sorted(CATALOGUE)))
                )
            events.append(Event(at_ms, fault=ev["fault"]))
    events.sort(key=lambda e: e.at_ms)  # stable: same-time events keep file order
    return Scenario(
        int(round(duration_s * 1000)), seed, user, program, program_data, events, name,
        profile=profile, profile_start_s=start_s, program_ceiling=ceiling,
    )


def parse_profile(data):
    """([profile] table) -> (validated profile, wall clock at t = 0 or None)."""
    if not isinstance(data, dict):
        raise ScenarioError("[profile] must be a table, got %r" % (data,))
    data = dict(data)
    start_s = DEFAULT_START_EPOCH_S
    if "start_epoch_s" in data:
        value = data.pop("start_epoch_s")
        if (isinstance(value, bool) or not isinstance(value, int)
                or not 0 <= value <= therapy.EPOCH_MAX_S):
            raise ScenarioError(
                "[profile].start_epoch_s must be a whole number of s since 1970, 0 .. %d, "
                "got %r" % (therapy.EPOCH_MAX_S, value))
        start_s = value
    clock_set = data.pop("clock_set", True)
    if not isinstance(clock_set, bool):
        raise ScenarioError("[profile].clock_set must be true or false, got %r" % (clock_set,))
    if data.get("clearance") == "cleared":
        data["clearance"] = dict(therapy.CLEARANCE)
    elif isinstance(data.get("clearance"), str):
        raise ScenarioError('[profile].clearance = %r: give "cleared" or a [profile.clearance] '
                            "table of answers" % (data["clearance"],))
    try:
        profile = therapy.validate_profile(data)
    except therapy.ProfileError as err:
        message = str(err)
        if message.startswith("profile"):
            message = "[profile]" + message[len("profile"):]
        if "unknown key" in message and message.startswith("[profile]:"):
            message = message.rstrip(")") + ", and the simulator's %s)" % ", ".join(
                PROFILE_SIM_KEYS)
        raise ScenarioError(message) from None
    return profile, (start_s if clock_set else None)


def load(path):
    """Read and check a scenario file; ScenarioError says what is wrong."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ScenarioError("%s: no such file" % path) from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError("%s: not valid TOML: %s" % (path, err)) from None
    try:
        return parse(data, name=str(path))
    except ScenarioError as err:
        raise ScenarioError("%s: %s" % (path, err)) from None
