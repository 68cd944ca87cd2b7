"""Stateful: any interleaving of press, release and waiting keeps every limit."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from firmware.config import Program
from sim import checks
from sim.plant import User
from sim.runner import Run
from sim.scenario import Scenario

PROGRAM = {"target_angle_deg": 45.0, "hold_s": 3.0, "rock_amplitude_deg": 4.0,
           "rock_period_s": 8.0, "rock_cycles": 1, "rest_s": 2.0}


class PressReleaseAndTime(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        user = User(mass_kg=95.0, height_m=1.85)
        self.run = Run(Scenario(10**9, 7, user, Program(PROGRAM), PROGRAM, []))

    @rule()
    def press(self):
        self.run.board.press_button()

    @rule()
    def release(self):
        self.run.board.release_button()

    @rule(seconds=st.floats(0.02, 25.0))
    def wait(self, seconds):
        for _ in range(max(1, int(seconds * 100))):
            self.run.step()

    @invariant()
    def angle_and_rate_within_caps(self):
        trace = self.run.trace
        if len(trace):
            assert trace["angle_deg"][-1] <= checks.ANGLE_CAP_DEG
            assert abs(trace["rate_dps"][-1]) <= checks.RATE_CAP_DPS

    def teardown(self):
        trace = self.run.trace
        if len(trace) < 2:
            return
        assert checks.angle_never_past_cap(trace) == []
        assert checks.rate_never_past_cap(trace) == []
        assert checks.accel_within_cap(trace) == []
        assert checks.no_head_down_motion_while_released(trace) == []
        assert checks.release_overtravel_within_bound(trace) == []
        assert checks.only_allowed_transitions(trace) == []


PressReleaseAndTime.TestCase.settings = settings(
    max_examples=15, stateful_step_count=12, deadline=None
)
TestPressReleaseAndTime = PressReleaseAndTime.TestCase
