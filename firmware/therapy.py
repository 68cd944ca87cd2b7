"""The user's profile on the board (profile.json) and the progression rules.

From the inversion guidance (../shared/seeds, ../shared/REFERENCE.md):

- No inversion at all until the medical-clearance questions are answered in
  the profile: a doctor's approval and none of the contraindications
  (CLEARANCE: heart disease, high blood pressure, glaucoma, pregnancy, ...).
- Start at 15 deg and add 10 deg per step; a step is `sessions_per_step`
  completed sessions at the current level. Stay at 45 deg until comfortable:
  COMFORT_SESSIONS completed sessions there with no letting go in between.
- Full inversion (anything above 60 deg, the usual working angle) only after
  at least 14 days of history: the first completed session with a known
  date is 14 days old. With the clock unknown that can never be shown, so
  the cap stays at 60 deg.
- Sessions start at about 5 minutes and grow by a minute every two completed
  sessions, up to the profile's `session_max_min`, never more than 30
  minutes (the whole session: way down, hold, rocking, way up, rest).
- At most 2 sessions a day (local day, `utc_offset_min`) when the clock is
  set; every session counts, however it ended.
- Slow: descent and return at most 2 deg/s (default 1); a rest at horizontal
  (at least 30 s) on the way up; rocking only from 35 deg, at most 5 deg.
- Progression advances only after COMPLETED sessions that reached the
  current level; a session the user ended by letting go resets the count at
  that level; a fault or a power loss changes nothing. The level never
  goes down.

API (start-up and end-of-session code: floats and allocation are fine; no
clock import, the time comes in as an argument, epoch seconds or None when
the board's clock is not set):

    validate_profile(data) -> profile (a normalized copy)   ProfileError
    session_program(profile, now_s) -> (program, None) | (None, reason)
    record_session(profile, record, now_s) -> new profile   ProfileError
    cap_program(program, ceiling) -> program tightened to `ceiling`

A program is a dict with the keys of a scenario's [program]
(firmware.config.Program). A session record is
{"ended": "completed"|"released"|"fault"|"power_loss", "duration_s": s,
 "peak_angle_deg": deg, "start_s": epoch s or None (None or absent: the
clock was not set)}, optionally "target_angle_deg" (the program's).
"""

PROFILE_PATH = "profile.json"
VERSION = 1

DAY_S = 86400
START_ANGLE_DEG = 15
STEP_DEG = 10
PLATEAU_DEG = 45  # stay here until comfortable
COMFORT_SESSIONS = 4  # completed sessions at the plateau, none let go in between
FULL_INVERSION_ABOVE_DEG = 60
FULL_INVERSION_MIN_DAYS = 14
ANGLE_MAX_DEG = 90
START_MINUTES = 5
SESSIONS_PER_MINUTE_STEP = 2  # one more minute every two completed sessions
SESSION_MAX_MIN = 30
SESSIONS_PER_DAY = 2
HISTORY_MAX = 60  # records kept in the profile (a month at two a day)
REACHED_TOLERANCE_DEG = 3.0  # a session "reached" its level within this
HOLD_MIN_S = 10.0
FULL_HOLD_MAX_S = 60.0  # above 60 deg: short holds (Lifegear: full inversion briefly)
ROCK_FROM_DEG = 35
ROCK_PERIOD_S = 12.0
ROCK_CYCLES = 3
REST_ANGLE_DEG = 0.0
RATE_MAX_DPS = 2.0
# The longest way down: the lowest home a table may have (firmware/limits.py
# HOME_MIN_MDEG), so session times hold for every table.
HOME_WORST_DEG = -70.0
PLAN_MARGIN_S = 10.0  # acceleration phases, settling at the ends
EPOCH_MAX_S = 4102444800  # 2100-01-01

ENDED = ("completed", "released", "fault", "power_loss")

# Medical clearance: (key, the answer that clears). Question texts: host_tools/profile_cmd.py.
CLEARANCE = (
    ("doctor_approved", True),
    ("heart_disease", False),  # heart or circulatory disorders
    ("high_blood_pressure", False),
    ("glaucoma", False),
    ("eye_disorder", False),  # retinal detachment, conjunctivitis
    ("pregnancy", False),
    ("recent_surgery", False),
    ("bone_weakness", False),  # osteoporosis, recent fractures, skeletal implants
    ("hernia", False),  # hiatal or ventral hernia
    ("ear_infection", False),  # middle-ear infection
    ("anticoagulants", False),
    ("blood_clots", False),  # blood clots, stroke
    ("spinal_injury", False),
    ("extreme_obesity", False),
)

# (key, default, lo, hi, unit, whole number)
SETTINGS = (
    ("max_angle_deg", 60, START_ANGLE_DEG, ANGLE_MAX_DEG, "deg", False),
    ("session_max_min", 15, START_MINUTES, SESSION_MAX_MIN, "min", False),
    ("sessions_per_step", 2, 1, 10, "sessions", True),
    ("rock_amplitude_deg", 0, 0, 5, "deg", False),
    ("descent_rate_dps", 1.0, 0.5, RATE_MAX_DPS, "deg/s", False),
    ("return_rate_dps", 1.0, 0.5, RATE_MAX_DPS, "deg/s", False),
    ("rest_s", 60, 30, 600, "s", False),
    ("utc_offset_min", 0, -720, 840, "min", True),
)
PROGRESS = (
    ("level_deg", START_ANGLE_DEG, START_ANGLE_DEG, ANGLE_MAX_DEG, "deg", False),
    ("at_level", 0, 0, 100000, "sessions", True),
    ("completed", 0, 0, 10000000, "sessions", True),
)
TOP_KEYS = ("version", "clearance", "settings", "progress", "history")
RECORD_KEYS = ("ended", "duration_s", "peak_angle_deg", "start_s", "target_angle_deg")
PROGRAM_KEYS = ("target_angle_deg", "hold_s", "rock_amplitude_deg", "rock_period_s",
                "rock_cycles", "descent_rate_dps", "return_rate_dps", "rest_angle_deg", "rest_s")


class ProfileError(ValueError):
    """A bad profile or session record; the message names the key and the range."""


# --- reading with bounds ---------------------------------------------------------


def _reject_unknown(where, data, allowed):
    if not isinstance(data, dict):
        raise ProfileError("%s must be an object of keys, got %r" % (where, data))
    for key in data:
        if key not in allowed:
            raise ProfileError("%s: unknown key '%s' (allowed: %s)"
                               % (where, key, ", ".join(allowed)))


def _number(where, data, key, default, lo, hi, unit, whole=False, nullable=False):
    name = "%s.%s" % (where, key)
    if key not in data:
        if default is None and not nullable:
            raise ProfileError("%s is missing (a number, %s .. %s %s)" % (name, lo, hi, unit))
        return default
    value = data[key]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError("%s must be a number of %s, got %r" % (name, unit, value))
    if not (lo <= value <= hi):  # also rejects NaN
        raise ProfileError("%s = %r is outside the allowed range %s .. %s %s"
                           % (name, value, lo, hi, unit))
    if whole:
        if value != int(value):
            raise ProfileError("%s must be a whole number of %s, got %r" % (name, unit, value))
        return int(value)
    return value


def _epoch(where, data, key, required):
    value = _number(where, data, key, None, 0, EPOCH_MAX_S, "s since 1970",
                    nullable=not required)
    return None if value is None else int(value)


def _bool(where, data, key):
    if key not in data:
        raise ProfileError("%s.%s is not answered (true or false)" % (where, key))
    value = data[key]
    if not isinstance(value, bool):
        raise ProfileError("%s.%s must be true or false, got %r" % (where, key, value))
    return value


def _section(where, data, spec, extra=()):
    data = {} if data is None else data
    allowed = [s[0] for s in spec]
    allowed.extend(extra)
    _reject_unknown(where, data, allowed)
    out = {}
    for key, default, lo, hi, unit, whole in spec:
        out[key] = _number(where, data, key, default, lo, hi, unit, whole)
    return out


def validate_clearance(data, where="profile.clearance"):
    allowed = [k for k, _ in CLEARANCE]
    allowed.append("answered_s")
    _reject_unknown(where, data, allowed)
    out = {}
    for key, _ in CLEARANCE:
        out[key] = _bool(where, data, key)
    out["answered_s"] = _epoch(where, data, "answered_s", False)
    return out


def validate_record(data, where="record"):
    """A session record, checked and normalized (a copy)."""
    _reject_unknown(where, data, RECORD_KEYS)
    if "ended" not in data:
        raise ProfileError("%s.ended is missing (one of %s)" % (where, ", ".join(ENDED)))
    if data["ended"] not in ENDED:
        raise ProfileError("%s.ended = %r: allowed values are %s"
                           % (where, data["ended"], ", ".join(ENDED)))
    out = {
        "ended": data["ended"],
        "duration_s": _number(where, data, "duration_s", None, 0, DAY_S, "s"),
        "peak_angle_deg": _number(where, data, "peak_angle_deg", None, -90, 90, "deg"),
        "start_s": _epoch(where, data, "start_s", False),
    }
    if "target_angle_deg" in data:
        out["target_angle_deg"] = _number(where, data, "target_angle_deg", None, -30, 90,
                                          "deg", nullable=True)
    return out


def validate_profile(data):
    """The profile checked and normalized (a new dict, defaults filled in).

    ProfileError names the key and the allowed range. A profile without a
    clearance section is valid (and gets no sessions).
    """
    _reject_unknown("profile", data, TOP_KEYS)
    version = data.get("version", VERSION)
    if version != VERSION or isinstance(version, bool):
        raise ProfileError("profile.version = %r: this firmware reads version %d"
                           % (version, VERSION))
    clearance = data.get("clearance")
    progress_data = data.get("progress")
    progress = _section("profile.progress", progress_data, PROGRESS, ("first_s",))
    progress["first_s"] = _epoch("profile.progress", progress_data or {}, "first_s", False)
    history = data.get("history", [])
    if not isinstance(history, list):
        raise ProfileError("profile.history must be a list of session records, got %r"
                           % (history,))
    if len(history) > HISTORY_MAX:
        raise ProfileError("profile.history holds %d records; at most %d are kept"
                           % (len(history), HISTORY_MAX))
    return {
        "version": VERSION,
        "clearance": None if clearance is None else validate_clearance(clearance),
        "settings": _section("profile.settings", data.get("settings"), SETTINGS),
        "progress": progress,
        "history": [validate_record(r, "profile.history[%d]" % i)
                    for i, r in enumerate(history)],
    }


def new_profile(clearance, settings=None, answered_s=None):
    """A fresh profile: level 15 deg, no history. `clearance`: {key: bool}."""
    answers = dict(clearance)
    if answered_s is not None:
        answers["answered_s"] = answered_s
    return validate_profile({"version": VERSION, "clearance": answers,
                             "settings": settings or {}})


# --- the rules ---------------------------------------------------------------------


def clearance_problem(profile):
    """None when cleared for inversion, else why not."""
    c = profile["clearance"]
    if c is None:
        return ("no medical clearance recorded in the profile: answer the questions "
                "(python -m host_tools profile new)")
    if not c["doctor_approved"]:
        return "no doctor's approval recorded: no inversion without it"
    found = [key for key, clears in CLEARANCE if c[key] != clears]
    if found:
        return "contraindication recorded (%s): no inversion" % ", ".join(found)
    return None


def local_day(t_s, profile):
    return (t_s + profile["settings"]["utc_offset_min"] * 60) // DAY_S


def sessions_on_day(profile, now_s):
    """Sessions (any ending) that started on now_s's local day."""
    today = local_day(now_s, profile)
    n = 0
    for r in profile["history"]:
        if r["start_s"] is not None and local_day(r["start_s"], profile) == today:
            n += 1
    return n


def next_change_s(profile, now_s):
    """When a refusal for the daily cap ends (the next local midnight, epoch
    s); None when the day is not what refuses (or the clock is unknown).
    `profile` as validate_profile returns it."""
    if now_s is None or sessions_on_day(profile, now_s) < SESSIONS_PER_DAY:
        return None
    return (local_day(now_s, profile) + 1) * DAY_S - profile["settings"]["utc_offset_min"] * 60


def full_inversion_allowed(profile, now_s):
    """Above 60 deg only after 14 days of history (a known clock needed)."""
    first = profile["progress"]["first_s"]
    if now_s is None or first is None:
        return False
    return now_s - first >= FULL_INVERSION_MIN_DAYS * DAY_S


def target_angle_deg(profile, now_s):
    """The next session's angle: the level, within the user's and the 14-day caps."""
    cap = profile["settings"]["max_angle_deg"]
    if not full_inversion_allowed(profile, now_s) and cap > FULL_INVERSION_ABOVE_DEG:
        cap = FULL_INVERSION_ABOVE_DEG
    level = profile["progress"]["level_deg"]
    return float(min(cap, level))


def session_minutes(profile):
    minutes = START_MINUTES + profile["progress"]["completed"] // SESSIONS_PER_MINUTE_STEP
    cap = profile["settings"]["session_max_min"]
    return min(minutes, cap, SESSION_MAX_MIN)


def program_duration_s(program, home_deg=HOME_WORST_DEG):
    """Estimated whole-session time of a program from a table homed at home_deg."""
    target = program["target_angle_deg"]
    travel = target - home_deg
    if travel < 0:
        travel = 0.0
    t = travel / program.get("descent_rate_dps", 2.0) + program["hold_s"]
    t += travel / program.get("return_rate_dps", 2.0)
    if program["rock_amplitude_deg"] > 0:
        t += program.get("rock_cycles", 3) * program["rock_period_s"]
    if target > program.get("rest_angle_deg", 0.0) + 2.0:
        t += program.get("rest_s", 20.0)
    return t + PLAN_MARGIN_S


def session_program(profile, now_s):
    """(program, None) for the next session, or (None, reason) when there is none."""
    try:
        p = validate_profile(profile)
    except ProfileError as err:
        return None, "profile: %s" % err
    reason = clearance_problem(p)
    if reason is not None:
        return None, reason
    if now_s is not None:
        n = sessions_on_day(p, now_s)
        if n >= SESSIONS_PER_DAY:
            return None, ("%d sessions today already (at most %d a day): the next one "
                          "tomorrow" % (n, SESSIONS_PER_DAY))
    s = p["settings"]
    target = target_angle_deg(p, now_s)
    rock = float(s["rock_amplitude_deg"]) if target >= ROCK_FROM_DEG else 0.0
    program = {
        "target_angle_deg": target,
        "hold_s": 0.0,
        "rock_amplitude_deg": rock,
        "rock_period_s": ROCK_PERIOD_S,
        "rock_cycles": ROCK_CYCLES,
        "descent_rate_dps": float(s["descent_rate_dps"]),
        "return_rate_dps": float(s["return_rate_dps"]),
        "rest_angle_deg": REST_ANGLE_DEG,
        "rest_s": float(s["rest_s"]),
    }
    hold = session_minutes(p) * 60 - program_duration_s(program)
    if target > FULL_INVERSION_ABOVE_DEG and hold > FULL_HOLD_MAX_S:
        hold = FULL_HOLD_MAX_S
    if hold < HOLD_MIN_S:
        hold = HOLD_MIN_S
    program["hold_s"] = float(int(hold))
    return program, None


def _advance(p, now_s):
    """One step up if the sessions at this level are enough (never down)."""
    prog = p["progress"]
    s = p["settings"]
    level = prog["level_deg"]
    need = s["sessions_per_step"]
    if level == PLATEAU_DEG and need < COMFORT_SESSIONS:
        need = COMFORT_SESSIONS
    if prog["at_level"] < need:
        return
    if level < PLATEAU_DEG:
        nxt = min(level + STEP_DEG, PLATEAU_DEG)
    else:
        nxt = min(level + STEP_DEG, ANGLE_MAX_DEG)
    if nxt > s["max_angle_deg"]:
        nxt = s["max_angle_deg"]
    if nxt > FULL_INVERSION_ABOVE_DEG and not full_inversion_allowed(p, now_s):
        nxt = FULL_INVERSION_ABOVE_DEG
    if nxt <= level:
        return
    prog["level_deg"] = nxt
    prog["at_level"] = 0


def record_session(profile, record, now_s):
    """The profile after one session (a new dict; `profile` is not changed).

    A completed session that reached the level counts toward the next step;
    a released one resets the count at this level; faults and power losses
    are only kept in the history.
    """
    p = validate_profile(profile)
    r = validate_record(record)
    prog = p["progress"]
    if r["ended"] == "completed":
        if r["peak_angle_deg"] >= prog["level_deg"] - REACHED_TOLERANCE_DEG:
            prog["completed"] += 1
            prog["at_level"] += 1
            if prog["first_s"] is None and r["start_s"] is not None:
                prog["first_s"] = r["start_s"]
            _advance(p, now_s if now_s is not None else r["start_s"])
    elif r["ended"] == "released":
        prog["at_level"] = 0
    history = p["history"]
    history.append(r)
    if len(history) > HISTORY_MAX:
        p["history"] = history[len(history) - HISTORY_MAX:]
    return p


# --- programs ----------------------------------------------------------------------

# How a ceiling tightens a program, per key: the gentler of the two values.
_LOWER = ("target_angle_deg", "hold_s", "rock_amplitude_deg", "rock_cycles",
          "descent_rate_dps", "return_rate_dps")
_HIGHER = ("rock_period_s", "rest_s")


def session_too_long(need_ms, on_max_ms):
    """Why the controller refuses a program (program_ok False with a program):
    a session needs more actuator on-time than even a full duty budget holds."""
    return ("program: a session needs %d s of actuator on-time; table.duty_on_max_s is %d s "
            "(raise descent_rate_dps or return_rate_dps, or lower target_angle_deg, "
            "rock_cycles or rock_period_s)" % (need_ms // 1000, on_max_ms // 1000))


def cap_program(program, ceiling):
    """`program` tightened to `ceiling` (config.json's program): a new dict.

    Lower angle, hold, rocking and rates, longer rocking period and rest;
    keys the ceiling does not give are not limited.
    """
    out = dict(program)
    if ceiling is None:
        return out
    for key in _LOWER:
        if key in ceiling and (key not in out or ceiling[key] < out[key]):
            out[key] = ceiling[key]
    for key in _HIGHER:
        if key in ceiling and (key not in out or ceiling[key] > out[key]):
            out[key] = ceiling[key]
    return out


def program_dict(program):
    """A firmware.config.Program back as a program dict (units of a scenario)."""
    return {
        "target_angle_deg": program.target_mdeg / 1000,
        "hold_s": program.hold_ms / 1000,
        "rock_amplitude_deg": program.rock_amplitude_mdeg / 1000,
        "rock_period_s": program.rock_period_ms / 1000,
        "rock_cycles": program.rock_cycles,
        "descent_rate_dps": program.descent_rate_mdps / 1000,
        "return_rate_dps": program.return_rate_mdps / 1000,
        "rest_angle_deg": program.rest_mdeg / 1000,
        "rest_s": program.rest_ms / 1000,
    }


def drop():
    """Forget this module (start-up / end-of-session code): frees its RAM."""
    import sys

    sys.modules.pop("firmware.therapy", None)
    package = sys.modules.get("firmware")
    if package is not None:
        try:
            delattr(package, "therapy")
        except AttributeError:
            pass
