"""The session state machine: what the table is doing and where it is going.

    STARTUP --settled, at home--> HOME
    STARTUP --settled, away from home--> RECOVERING --home--> HOME
    HOME --fresh press held--> DESCENDING --at target--> HOLDING
    HOLDING --hold_s over--> ROCKING (amplitude > 0) --cycles done--> RETURNING
    HOLDING --hold_s over--> RETURNING (no rocking)
    RETURNING --rest near horizontal, then home--> HOME
    DESCENDING/HOLDING/ROCKING/RETURNING --button let go--> EMERGENCY_RETURN --home--> HOME
    any state away from home --IMU lost--> BLIND_RETURN --home switch--> HOME
    BLIND_RETURN --timeout--> SAFE_STOP
    any state --jam/runaway--> SAFE_STOP

Each tick `update` picks the target and the motion limits for the planner
(firmware/motion_profile.py). It never moves the table itself; whether
head-down motion is permitted is decided again, from the raw button, by the
controller's interlock (firmware/controller.py).
"""

from micropython import const

STARTUP = const(0)
HOME = const(1)
DESCENDING = const(2)
HOLDING = const(3)
ROCKING = const(4)
RETURNING = const(5)
EMERGENCY_RETURN = const(6)
RECOVERING = const(7)
BLIND_RETURN = const(8)
SAFE_STOP = const(9)

STATE_NAMES = (
    "STARTUP",
    "HOME",
    "DESCENDING",
    "HOLDING",
    "ROCKING",
    "RETURNING",
    "EMERGENCY_RETURN",
    "RECOVERING",
    "BLIND_RETURN",
    "SAFE_STOP",
)

# States in which head-down motion may happen (and only while the button is held).
HEAD_DOWN_STATES = (DESCENDING, HOLDING, ROCKING)
# States that end when the user lets go.
USER_SESSION_STATES = (DESCENDING, HOLDING, ROCKING, RETURNING)

HOME_TOLERANCE_MDEG = const(1500)  # "at home" when the estimate is this close
_REST_MIN_DROP_MDEG = const(2000)  # rest only if coming down from above rest + 2 deg
_HOME_STILL_MDPS = const(300)  # "arrived home" also needs the table nearly still
# The planner cruises at most at this share (/20) of a rate cap: the position
# loop's room to close a tracking gap without the true rate passing the cap.
_PLAN_RATE_SHARE = const(17)
_RELEASE_DONE = const(0)  # EMERGENCY_RETURN sub-phases
_RELEASE_BRAKING = const(1)
_RELEASE_EASING = const(2)
_RETURN_REST = const(0)  # RETURNING sub-phases
_RETURN_RESTING = const(1)
_RETURN_HOME = const(2)


def rock_rate_mdps(amplitude_mdeg, period_ms, accel_mdps2, rate_cap_mdps):
    """Cruise rate that makes one rocking stroke (2 x amplitude) last half a period.

    Runs at start-up (floats). Stroke time with cruise v and accel a is
    D/v + v/a; solved for v. A slower cap stretches the period, never the rate.
    """
    if amplitude_mdeg <= 0:
        return rate_cap_mdps
    d = 2.0 * amplitude_mdeg / 1000.0
    h = period_ms / 2000.0
    a = accel_mdps2 / 1000.0
    disc = h * h - 4.0 * d / a
    if disc >= 0:
        v = (h - disc ** 0.5) * a / 2.0
    else:
        v = (d * a) ** 0.5
    v_mdps = int(v * 1000.0 + 0.5)
    if v_mdps < 200:
        v_mdps = 200
    return min(v_mdps, rate_cap_mdps)


class Session:
    """Picks state, target and motion limits; the planner follows them."""

    def __init__(self, program, limits, table, clock, accel_mdps2, jerk_mdps3):
        self._program = program
        self._limits = limits
        self._clock = clock
        self.home_mdeg = table.home_mdeg
        self._accel = min(accel_mdps2, limits.accel_max_mdps2)
        self._jerk = min(jerk_mdps3, limits.jerk_max_mdps3)
        self._emergency_rate = min(limits.emergency_rate_mdps,
                                   limits.rate_max_mdps * _PLAN_RATE_SHARE // 20)
        self.set_program(program)
        self.state = STARTUP
        self.target_mdeg = table.home_mdeg
        self.transitions = 0
        self._entered_ms = clock.ticks_ms()
        self._phase_ms = self._entered_ms
        self._armed = False
        self._rock_half = 0
        self._return_phase = _RETURN_HOME
        self._release_phase = _RELEASE_DONE

    def set_program(self, program):
        """The program for the next session (between sessions only). Start-up code."""
        limits = self._limits
        self._program = program
        self.hold_target_mdeg = min(program.target_mdeg, limits.setpoint_max_mdeg)
        down_cap = limits.head_down_rate_max_mdps * _PLAN_RATE_SHARE // 20
        self.descent_rate_mdps = min(program.descent_rate_mdps, down_cap)
        self.return_rate_mdps = min(program.return_rate_mdps,
                                    limits.rate_max_mdps * _PLAN_RATE_SHARE // 20)
        top = min(self.hold_target_mdeg + program.rock_amplitude_mdeg, limits.setpoint_max_mdeg)
        bottom = self.hold_target_mdeg - program.rock_amplitude_mdeg
        if bottom < self.home_mdeg + HOME_TOLERANCE_MDEG:
            bottom = self.home_mdeg + HOME_TOLERANCE_MDEG
        self._rock_top_mdeg = top
        self._rock_bottom_mdeg = bottom
        self._rock_rate = rock_rate_mdps(
            program.rock_amplitude_mdeg, program.rock_period_ms, self._accel, down_cap,
        )

    # --- helpers ---------------------------------------------------------------
    def _enter(self, state, now_ms):
        self.state = state
        self.transitions += 1
        self._entered_ms = now_ms
        self._phase_ms = now_ms

    def _since(self, now_ms, start_ms):
        return self._clock.ticks_diff(now_ms, start_ms)

    def is_home(self, angle_mdeg):
        d = angle_mdeg - self.home_mdeg
        return -HOME_TOLERANCE_MDEG <= d <= HOME_TOLERANCE_MDEG

    def is_settled_home(self, angle_mdeg, rate_mdps):
        """At home and nearly still: safe to switch the motor off."""
        return self.is_home(angle_mdeg) and -_HOME_STILL_MDPS <= rate_mdps <= _HOME_STILL_MDPS

    def _go_home(self, state, now_ms, profile, angle_mdeg, rate_mdps, rate_mdps_limit, accel, jerk):
        # Bumpless: plan from where the table really is and how it is moving,
        # so a lagging plan cannot carry the table further head-down.
        self._enter(state, now_ms)
        profile.reset(angle_mdeg, rate_mdps, 0)
        profile.set_limits(rate_mdps_limit, accel, jerk)
        self.target_mdeg = self.home_mdeg

    def emergency_return(self, now_ms, profile, angle_mdeg, rate_mdps, cmd_rate_mdps):
        """Let go: stop hard (2/3 accel cap, jerk cap), then go home gently.

        Re-accelerating toward home at the caps would gain nothing but a jolt,
        so once the plan has turned the gentle limits take over.
        """
        lim = self._limits
        # Brake from the slower of the measured and the last commanded head-down
        # rate: a measurement above the command must not delay the first tick
        # that asks for less.
        if rate_mdps > 0:
            commanded = max(0, cmd_rate_mdps)
            if commanded < rate_mdps:
                rate_mdps = commanded
        self._go_home(EMERGENCY_RETURN, now_ms, profile, angle_mdeg, rate_mdps,
                      self._emergency_rate, lim.release_brake_accel_mdps2, lim.jerk_max_mdps3)
        if rate_mdps > 0:
            # Moving head-down: aim at the point of release. The plan makes its
            # time-optimal stop at the caps and turns; then target and limits
            # hand over to the gentle way home (_update_release_stop).
            self._release_phase = _RELEASE_BRAKING
            self.target_mdeg = angle_mdeg
        else:
            self._release_phase = _RELEASE_DONE
            profile.set_limits(self._emergency_rate, self._accel, self._jerk)

    def blind_return(self, now_ms):
        """IMU lost: the controller drives home open-loop; the plan stands still."""
        self._enter(BLIND_RETURN, now_ms)

    def end_early(self, now_ms, profile, angle_mdeg):
        """Cut the session short (the actuator's duty budget): the normal
        way home from here, rest included."""
        if self.state == DESCENDING or self.state == HOLDING or self.state == ROCKING:
            self._start_return(now_ms, profile, angle_mdeg)

    def safe_stop(self, now_ms):
        self._enter(SAFE_STOP, now_ms)

    def arrived_home(self, now_ms):
        self._enter(HOME, now_ms)
        self._armed = False  # the next session needs a release and a fresh press
        self.target_mdeg = self.home_mdeg

    # --- the tick ----------------------------------------------------------------
    def update(self, now_ms, held, released, angle_mdeg, rate_mdps, cmd_rate_mdps, settled,
               profile, may_start=True):
        """Advance the state machine one tick. No allocation.

        `held`: the button is confirmed pressed; `released`: confirmed up
        (both contacts agree). Only `released` arms the next session.
        `may_start`: the controller allows a new session (no fault, ankle
        lock closed, duty budget, a program).
        `rate_mdps` is the measured rate, `cmd_rate_mdps` the rate the
        position loop commanded last tick.
        """
        state = self.state
        if state == STARTUP:
            if released:
                self._armed = True  # seen up since boot: the next press is fresh
            if settled:
                if self.is_home(angle_mdeg):
                    self._enter(HOME, now_ms)  # keeps _armed: a press during boot counts
                    profile.reset(angle_mdeg, 0, 0)
                else:
                    # Boot away from home (power came back mid-session): go home slowly.
                    self._go_home(RECOVERING, now_ms, profile, angle_mdeg, 0,
                                  self.return_rate_mdps, self._accel, self._jerk)
            return
        if state == HOME:
            profile.reset(angle_mdeg, 0, 0)
            self.target_mdeg = angle_mdeg
            if released:
                self._armed = True  # a new session needs a fresh press
            elif held and self._armed and settled and may_start:
                self._enter(DESCENDING, now_ms)
                profile.set_limits(self.descent_rate_mdps, self._accel, self._jerk)
                self.target_mdeg = self.hold_target_mdeg
            return
        if state in USER_SESSION_STATES and not held:
            self.emergency_return(now_ms, profile, angle_mdeg, rate_mdps, cmd_rate_mdps)
            return
        if state == DESCENDING:
            if profile.done:
                self._enter(HOLDING, now_ms)
        elif state == HOLDING:
            # The way back starts only once the table has caught up with the
            # plan (nearly still): RETURNING drives no head-down duty, so a
            # table still moving head-down would stop on the screw, abruptly.
            if (self._since(now_ms, self._entered_ms) >= self._program.hold_ms
                    and -_HOME_STILL_MDPS <= rate_mdps <= _HOME_STILL_MDPS):
                if self._program.rock_amplitude_mdeg > 0:
                    self._enter(ROCKING, now_ms)
                    self._rock_half = 0
                    profile.set_limits(self._rock_rate, self._accel, self._jerk)
                    self.target_mdeg = self._rock_top_mdeg
                else:
                    self._start_return(now_ms, profile, angle_mdeg)
        elif state == ROCKING:
            half_ms = self._program.rock_period_ms // 2
            if profile.done and self._since(now_ms, self._phase_ms) >= half_ms:
                if self._rock_half + 1 >= 2 * self._program.rock_cycles:
                    if -_HOME_STILL_MDPS <= rate_mdps <= _HOME_STILL_MDPS:  # as HOLDING
                        self._start_return(now_ms, profile, angle_mdeg)
                else:
                    self._rock_half += 1
                    self._phase_ms = now_ms
                    if self._rock_half & 1:
                        self.target_mdeg = self._rock_bottom_mdeg
                    else:
                        self.target_mdeg = self._rock_top_mdeg
        elif state == RETURNING:
            self._update_return(now_ms, angle_mdeg, rate_mdps, profile)
        elif state == EMERGENCY_RETURN or state == RECOVERING:
            self._update_release_stop(profile)
            if profile.done and self.is_settled_home(angle_mdeg, rate_mdps):
                self.arrived_home(now_ms)

    def _update_release_stop(self, profile):
        """Hand the plan from the release stop to the gentle way home.

        The stop ends with the plan turning at up to the accel cap; lowering
        the accel limit first (at the cap jerk) and the jerk limit only once
        the acceleration is within the gentle limit keeps the hand-over
        inside every limit.
        """
        phase = self._release_phase
        if phase == _RELEASE_BRAKING and profile.vel_mdps <= 0:
            self._release_phase = _RELEASE_EASING
            profile.set_limits(self._emergency_rate, self._accel, self._limits.jerk_max_mdps3)
            self.target_mdeg = self.home_mdeg
        elif phase == _RELEASE_EASING and -self._accel <= profile.acc_mdps2 <= self._accel:
            self._release_phase = _RELEASE_DONE
            profile.set_limits(self._emergency_rate, self._accel, self._jerk)

    def _start_return(self, now_ms, profile, angle_mdeg):
        self._enter(RETURNING, now_ms)
        profile.set_limits(self.return_rate_mdps, self._accel, self._jerk)
        rest = self._program.rest_mdeg
        if self._program.rest_ms > 0 and angle_mdeg > rest + _REST_MIN_DROP_MDEG:
            self._return_phase = _RETURN_REST
            self.target_mdeg = rest
        else:
            self._return_phase = _RETURN_HOME
            self.target_mdeg = self.home_mdeg

    def _update_return(self, now_ms, angle_mdeg, rate_mdps, profile):
        phase = self._return_phase
        if phase == _RETURN_REST:
            if profile.done:
                self._return_phase = _RETURN_RESTING
                self._phase_ms = now_ms
        elif phase == _RETURN_RESTING:
            if self._since(now_ms, self._phase_ms) >= self._program.rest_ms:
                self._return_phase = _RETURN_HOME
                self.target_mdeg = self.home_mdeg
        elif profile.done and self.is_settled_home(angle_mdeg, rate_mdps):
            self.arrived_home(now_ms)
