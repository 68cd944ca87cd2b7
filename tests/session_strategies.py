"""Random users, programs and button timelines for the property tests.

Users span the product's range (40-150 kg, 1.45-2.00 m). Sessions are kept
short (holds of seconds, not minutes) so that many fit in the CI budget; the
properties do not depend on how long a hold lasts.
"""

from hypothesis import strategies as st

from firmware.config import Limits, Program
from sim.board import SimBoard
from sim.plant import User
from sim.runner import firmware_table_config, program_refusal
from sim.scenario import Event, Scenario

HOME_DEG = -60.0
_TABLE = firmware_table_config(SimBoard(User(80.0, 1.78)))  # the simulated table's config


def runnable(pdata):
    """A program whose session the actuator's duty budget covers: the
    firmware refuses any other outright (sim.runner.program_refusal), so a
    property drawn over it would check nothing."""
    return program_refusal(Program(pdata), Limits(), _TABLE) is None


def program_data(draw_target, hold_s, amp, period, cycles, rest_s, descent, ret):
    return {
        "target_angle_deg": draw_target,
        "hold_s": hold_s,
        "rock_amplitude_deg": amp,
        "rock_period_s": period,
        "rock_cycles": cycles,
        "rest_s": rest_s,
        "descent_rate_dps": descent,
        "return_rate_dps": ret,
    }


def session_length_s(p):
    """A generous upper bound on one uninterrupted session (for durations)."""
    travel = p["target_angle_deg"] - HOME_DEG
    rock = p["rock_cycles"] * max(p["rock_period_s"], 4 * p["rock_amplitude_deg"] / 0.5) * 1.5
    return (travel / p["descent_rate_dps"] + p["hold_s"] + rock + p["rest_s"]
            + travel / p["return_rate_dps"] + 15.0)


users = st.builds(
    User,
    mass_kg=st.floats(40.0, 150.0, allow_nan=False),
    height_m=st.floats(1.45, 2.00, allow_nan=False),
)

programs = st.builds(
    program_data,
    st.floats(-20.0, 90.0),
    st.floats(0.0, 8.0),
    st.sampled_from([0.0, 2.0, 5.0, 10.0]) | st.floats(0.0, 10.0),
    st.floats(8.0, 16.0),
    st.integers(1, 2),
    st.floats(0.0, 6.0),
    st.floats(0.5, 3.0),
    st.floats(0.5, 6.0),
).filter(runnable)


@st.composite
def scenarios(draw, release="any"):
    """A scenario: press, then let go mid-session ("mid"), after it ("end"), or either."""
    user = draw(users)
    pdata = draw(programs)
    length_s = session_length_s(pdata)
    press_s = draw(st.floats(0.5, 3.0))
    mode = draw(st.sampled_from(["mid", "end"])) if release == "any" else release
    if mode == "mid":
        release_s = press_s + draw(st.floats(0.2, 1.0)) * length_s
    else:
        release_s = press_s + length_s
    travel = pdata["target_angle_deg"] - HOME_DEG
    duration_s = release_s + travel / 4.0 + 12.0
    events = [Event(int(press_s * 1000), button="press"),
              Event(int(release_s * 1000), button="release")]
    seed = draw(st.integers(0, 10_000))
    return Scenario(int(duration_s * 1000), seed, user, Program(pdata), pdata, events,
                    name="hypothesis")
