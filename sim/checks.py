"""Safety properties checked on a trace (the test suite and `sim run` use them).

Each check reads only the trace: the true plant state the simulator recorded,
the firmware's reported state and the user's button. The numbers are the
hard caps of firmware/limits.py and the issue's bounds; the allowed state
transitions are written out here independently of the firmware.
"""

from firmware import limits as L
from sim import faults

ANGLE_CAP_DEG = L.ANGLE_MAX_MDEG / 1000.0
RATE_CAP_DPS = L.RATE_MAX_MDPS / 1000.0
ACCEL_CAP_DPS2 = L.ACCEL_MAX_MDPS2 / 1000.0
RELEASE_OVERTRAVEL_MAX_DEG = L.RELEASE_OVERTRAVEL_MAX_MDEG / 1000.0
# After a release the table must be still or moving head-up once this long
# has passed (the braking ramp takes under 0.4 s).
RELEASE_SETTLE_S = 0.6
STILL_DPS = 0.05
# Home within (angle at release - home) / emergency rate + this margin.
HOME_MARGIN_S = 6.0

ALLOWED_TRANSITIONS = frozenset(
    [
        ("STARTUP", "HOME"),
        ("STARTUP", "RECOVERING"),
        ("RECOVERING", "HOME"),
        ("HOME", "DESCENDING"),
        ("DESCENDING", "HOLDING"),
        ("HOLDING", "ROCKING"),
        ("HOLDING", "RETURNING"),
        ("ROCKING", "RETURNING"),
        ("RETURNING", "HOME"),
        ("DESCENDING", "EMERGENCY_RETURN"),
        ("HOLDING", "EMERGENCY_RETURN"),
        ("ROCKING", "EMERGENCY_RETURN"),
        ("RETURNING", "EMERGENCY_RETURN"),
        ("EMERGENCY_RETURN", "HOME"),
        ("BLIND_RETURN", "HOME"),
    ]
    # A STOP fault (jam, runaway, overspeed, dead drive, blind-return
    # timeout) stops the table in any state (a bridge stuck on at power-up:
    # in STARTUP).
    + [
        (s, "SAFE_STOP")
        for s in ("STARTUP", "HOME", "RECOVERING", "DESCENDING", "HOLDING", "ROCKING", "RETURNING",
                  "EMERGENCY_RETURN", "BLIND_RETURN")
    ]
    + [
        (s, "BLIND_RETURN")
        for s in ("STARTUP", "HOME", "RECOVERING", "DESCENDING", "HOLDING", "ROCKING",
                  "RETURNING", "EMERGENCY_RETURN")
    ]
)


# A watchdog reset restarts the firmware from any state: X -> STARTUP is
# allowed only on a row where the runner recorded the reset (trace column
# firmware_reset = 1). Nothing else may enter STARTUP.
RESET_STATE = "STARTUP"


def _firmware_resets(trace):
    """The firmware_reset column, or None for a trace without one."""
    try:
        return trace["firmware_reset"]
    except KeyError:
        return None


def angle_never_past_cap(trace):
    worst = max(trace["angle_deg"])
    if worst > ANGLE_CAP_DEG:
        return ["angle reached %.3f deg, cap %.1f" % (worst, ANGLE_CAP_DEG)]
    return []


def rate_never_past_cap(trace):
    """|rate| within the cap, except while a STOP fault (a runaway: the
    bridge drives on whatever the firmware says) is being stopped: there the
    bound is fault_violations' stop time and extra travel."""
    rates = trace["rate_dps"]
    rows = [k for k in range(len(rates)) if not _stopping(trace, k)]
    if not rows:
        return []
    i = max(rows, key=lambda k: abs(rates[k]))
    if abs(rates[i]) > RATE_CAP_DPS:
        return ["|rate| reached %.3f deg/s at t=%.2f s, cap %.1f"
                % (abs(rates[i]), trace["t_s"][i], RATE_CAP_DPS)]
    return []


def accel_within_cap(trace):
    """|acceleration| within the cap during controlled motion.

    The cap is a comfort limit on the motion the firmware plans. From the
    first injected fault on it is not checked: a fault reaction may be a bare
    stop (the H-bridge dead-man after a hung loop, a jam), which is the safe
    reaction when motion itself is the hazard. Angle, rate, overtravel and
    transitions are checked on the whole trace, faults or not.
    """
    acc = trace["accel_dps2"]
    injected = trace["injected_fault"]
    end = next((k for k in range(len(acc)) if injected[k]), len(acc))
    if end == 0:
        return []
    i = max(range(end), key=lambda k: abs(acc[k]))
    if abs(acc[i]) > ACCEL_CAP_DPS2:
        return ["|accel| reached %.2f deg/s^2 at t=%.2f s, cap %.1f"
                % (abs(acc[i]), trace["t_s"][i], ACCEL_CAP_DPS2)]
    return []


def _releases(trace):
    """Indices where the user lets go (held 1 -> 0)."""
    held = trace["button_held"]
    return [i for i in range(1, len(held)) if held[i - 1] and not held[i]]


def no_head_down_motion_while_released(trace):
    """Released (and past the braking ramp) means still or going head-up."""
    t = trace["t_s"]
    held = trace["button_held"]
    rate = trace["rate_dps"]
    released_since = t[0] if not held[0] else None
    for i in range(len(t)):
        if held[i]:
            released_since = None
            continue
        if released_since is None:
            released_since = t[i]
        if t[i] - released_since >= RELEASE_SETTLE_S and rate[i] > STILL_DPS \
                and not _stopping(trace, i):  # a runaway pushes whatever the button says
            return ["head-down motion %.3f deg/s at t=%.2f s, %.2f s after release"
                    % (rate[i], t[i], t[i] - released_since)]
    return []


def release_overtravel_within_bound(trace):
    """After a release at most 1 deg further head-down (until the next press)."""
    out = []
    angle = trace["angle_deg"]
    held = trace["button_held"]
    for r in _releases(trace):
        start = angle[r - 1]
        peak = start
        i = r
        while i < len(angle) and not held[i]:
            peak = max(peak, angle[i])
            i += 1
        if peak - start > RELEASE_OVERTRAVEL_MAX_DEG:
            out.append("after the release at t=%.2f s the table went %.3f deg further head-down"
                       % (trace["t_s"][r], peak - start))
    return out


SESSION_STATES = ("DESCENDING", "HOLDING", "ROCKING", "RETURNING")

# --- injected faults (sim/faults.py; SAFETY.md states these bounds) ----------
# At most this much further head-down than where the table was when the fault
# was injected (or, for a latent fault, first reported).
FAULT_OVERTRAVEL_MAX_DEG = 1.0
# STOP faults: still (|rate| < STILL_DPS) this long after injection, SAFE_STOP,
# the fault named in the trace.
STOP_BOUND_S = 0.5
STOP_FAULT_NAMES = ("jam", "runaway", "rate_cap", "drive_dead")
# Faults noticed only once the table is away from where they hide: the
# reference point is the first report, not the injection.
LATENT_FAULTS = ("end_switch_stuck", "far_switch_stuck", "button_contact_disagree")
# RETURN faults: home within (angle at reference - home) / rate + margin.
# Rate: the reaction's (emergency return 4 dps, blind return on the pot
# 2 dps, boot recovery at the program's return rate, "program").
FAULT_HOME_BOUNDS = {
    "imu_freeze": (2.0, 8.0),
    "imu_disconnect": (2.0, 8.0),
    "imu_implausible": (2.0, 8.0),
    "button_wire_break": (4.0, 7.0),
    "button_contact_disagree": (4.0, 7.0),  # noticed at the release: its emergency return
    "position_sensor_disagree": (4.0, 7.0),
    "end_switch_stuck": (4.0, 7.0),
    "far_switch_stuck": (4.0, 7.0),
    "ankle_unlock": (4.0, 7.0),
    "power_loss": ("program", 10.0 + faults.POWER_LOSS_MS / 1000.0),
    "loop_hang": ("program", 10.0 + faults.LOOP_HANG_MS / 1000.0),
    "exception_in_loop": ("program", 11.0),
}


def _stopping(trace, k):
    """Row k lies within STOP_BOUND_S after an injected STOP-kind fault."""
    names = trace["injected_fault"]
    if not names[k] or faults.kind(names[k]) != "stop":
        return False
    t = trace["t_s"]
    j = k
    while j > 0 and names[j - 1] == names[k]:
        j -= 1
    return t[k] - t[j] <= STOP_BOUND_S


def fault_violations(trace, fault, at_s, home_deg, return_rate_dps):
    """What the firmware must do about a fault injected at `at_s` (sim/faults.py
    kinds): "stop" -> still within STOP_BOUND_S, SAFE_STOP, fault reported;
    "return" -> at most FAULT_OVERTRAVEL_MAX_DEG further head-down, then HOME
    within FAULT_HOME_BOUNDS; "ride" -> nothing more than every other check
    (all_violations) plus ending at home."""
    t = trace["t_s"]
    angle = trace["angle_deg"]
    state = trace["state"]
    reported = trace["fault"]
    n = len(t)
    i0 = next((i for i in range(n) if t[i] >= at_s - 1e-9), None)
    if i0 is None:
        return []
    kind = faults.kind(fault)
    out = []
    if kind == "ride":
        if state[-1] != "HOME":
            out.append("%s at %.2f s (ridden through): ends in %s, not HOME"
                       % (fault, at_s, state[-1]))
        return out
    ref = i0
    if fault in LATENT_FAULTS:
        ref = next((i for i in range(i0, n) if reported[i]), None)
        if ref is None:
            if state[-1] != "HOME":
                out.append("%s at %.2f s: never reported, ends in %s" % (fault, at_s, state[-1]))
            return out
    start = angle[max(ref - 1, 0)]
    peak = max(angle[ref:])
    if peak - start > FAULT_OVERTRAVEL_MAX_DEG:
        out.append("%s at %.2f s: %.3f deg further head-down (bound %.1f)"
                   % (fault, t[ref], peak - start, FAULT_OVERTRAVEL_MAX_DEG))
    if kind == "stop":
        if all(abs(r) < STILL_DPS for r in trace["rate_dps"][i0:]) and state[-1] == "HOME":
            # The table never moved after the fault and is home: a jam or a
            # dead drive (at home, or driven below the check's duty) did no
            # harm. (A runaway moves the table: the checks below.)
            return out
        end = t[i0] + STOP_BOUND_S
        moving = [i for i in range(i0, n) if t[i] >= end and abs(trace["rate_dps"][i]) > STILL_DPS]
        if moving:
            out.append("%s at %.2f s: still moving %.3f deg/s at t=%.2f s (bound %.1f s)"
                       % (fault, at_s, trace["rate_dps"][moving[0]], t[moving[0]], STOP_BOUND_S))
        if state[-1] != "SAFE_STOP" or reported[-1] not in STOP_FAULT_NAMES:
            out.append("%s at %.2f s: ends in %s with fault %r, not SAFE_STOP with %s"
                       % (fault, at_s, state[-1], reported[-1], "/".join(STOP_FAULT_NAMES)))
        return out
    rate, margin = FAULT_HOME_BOUNDS[fault]
    if rate == "program":
        rate = return_rate_dps
    bound_s = max(0.0, start - home_deg) / rate + margin
    home = next((i for i in range(ref, n) if state[i] == "HOME"), None)
    if home is None or t[home] - t[ref] > bound_s:
        out.append("%s at %.2f s from %.1f deg: not home within %.1f s (%s)"
                   % (fault, t[ref], start, bound_s,
                      "never" if home is None else "%.1f s" % (t[home] - t[ref])))
    elif state[-1] != "HOME":
        out.append("%s: home at %.1f s but ends in %s" % (fault, t[home], state[-1]))
    return out


def home_after_release_within_bound(trace, home_deg, emergency_rate_dps):
    """After a release during a session: HOME within the stated bound.

    A release in a session state starts EMERGENCY_RETURN at the emergency
    rate. Elsewhere a release changes nothing the bound speaks of: at home the
    table stays, and RECOVERING / BLIND_RETURN are already on their way home
    at their own (slower) rates, each with its own bound.
    """
    out = []
    t = trace["t_s"]
    state = trace["state"]
    angle = trace["angle_deg"]
    for r in _releases(trace):
        if state[r - 1] not in SESSION_STATES:
            continue
        bound_s = max(0.0, angle[r - 1] - home_deg) / emergency_rate_dps + HOME_MARGIN_S
        deadline = t[r] + bound_s
        i = r
        while i < len(t) and t[i] <= deadline and state[i] != "HOME":
            i += 1
        if i < len(t) and state[i] != "HOME":
            out.append("released at t=%.2f s from %.1f deg: not home within %.1f s"
                       % (t[r], angle[r - 1], bound_s))
    return out


def only_allowed_transitions(trace):
    out = []
    state = trace["state"]
    resets = _firmware_resets(trace)
    for i in range(1, len(state)):
        if state[i] == RESET_STATE and resets is not None and int(resets[i]):
            continue  # the firmware was reset on this tick: it boots into STARTUP
        if state[i] != state[i - 1] and (state[i - 1], state[i]) not in ALLOWED_TRANSITIONS:
            out.append("transition %s -> %s at t=%.2f s is not allowed"
                       % (state[i - 1], state[i], trace["t_s"][i]))
    return out


def all_violations(trace, home_deg=-60.0, emergency_rate_dps=L.DEFAULT_EMERGENCY_RATE_MDPS / 1000):
    return (
        angle_never_past_cap(trace)
        + rate_never_past_cap(trace)
        + accel_within_cap(trace)
        + no_head_down_motion_while_released(trace)
        + release_overtravel_within_bound(trace)
        + home_after_release_within_bound(trace, home_deg, emergency_rate_dps)
        + only_allowed_transitions(trace)
    )
