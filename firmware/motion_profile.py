"""Online jerk-limited trajectory generator for the table angle, in integers.

One job: every tick, move a setpoint (position, velocity, acceleration) one
step toward a target angle that ends at rest, never exceeding the velocity,
acceleration and jerk limits, as fast as those limits allow. A discrete,
one-axis relative of Ruckig: the target may change at any tick.

How a tick decides (in the frame where the target lies ahead):
1. Two candidate accelerations for the end of the tick, each from the same
   time-optimal velocity servo (ramp the acceleration at the jerk limit so it
   reaches zero just as the velocity reaches its goal):
     a_go   - servo toward +V (accelerate / cruise toward the target)
     a_stop - servo toward 0  (the time-optimal stop)
2. a_go is taken if, after this tick, a time-optimal stop from the new state
   still ends before the aim point (the target less 0.5 mdeg, which absorbs
   the rounding of the stop-distance arithmetic). Otherwise the largest
   acceleration in [a_stop, a_go] for which that holds is found by bisection:
   the setpoint slides along the switching surface, which is exactly the
   time-optimal braking profile. If a_stop overshoots the aim but not the
   target, a_stop is taken; if it would pass the target, the smallest
   harder braking that avoids it is found by bisection down to the hardest
   braking allowed. If nothing fits (the target moved closer than the stop
   distance), the setpoint brakes as hard as allowed, passes the target, and
   the direction flips so it comes back.
3. Within SNAP_MDEG of the target at near-zero speed and acceleration the
   state snaps to the target at rest (`done`).

The stop distance (_stop_u) is the closed form of the time-optimal stop from
(v, a): ramp a to -a_peak at -J, hold -A if a_peak reaches the limit, ramp
back to zero at +J as v reaches zero. Plans use the jerk that every tick of
5..20 ms can deliver, and ramps into the acceleration limit end on tick
boundaries, so a plan made this tick can be executed by the next ones.

State integration is exact for constant jerk over the tick (acceleration is a
whole number of mdps2, velocity is kept in 0.5 udps, position in mdeg plus a
remainder in 1/12 ndeg), so the setpoint never drifts from the integral of
its own velocity.

Units: mdeg, mdps, mdps2, mdps3, ms. Internal finer units are noted where
used; "u16" below is 1/16 mdeg (distance) and "v16" 1/16 mdps (velocity).

Guarantees (tests/test_motion_profile.py checks them with hypothesis):
- |vel_mdps| <= vel limit, |acc_mdps2| <= acc limit, and
  |acc change per tick| <= jerk limit * dt / 1000 (whole mdps2 steps),
  whenever the state started within the limits.
- Never passes a target by more than OVERSHOOT_MAX_MDEG (3 mdeg) when the
  target was reachable without overshoot at the time it was set, with a
  constant tick length (measured: <= 1 mdeg); with a tick length that varies
  from tick to tick within 5..20 ms, by at most 6 mdeg (measured <= 2).
- `done` in finite time; rest-to-rest within 1.2 x the analytic time-optimal
  jerk-limited time + 1 s for any limits; for moves >= 5 deg with
  J * dt >= 25 mdps2 per tick, within 5 % (measured worst 1.3 %, median
  0.1 %; 20 ms ticks add up to ~1.5 ticks at the end).
- Limits lowered below the current state: acceleration and speed are brought
  back within the new limits, never faster than the limits allow. One
  documented rule keeps this bounded: while |a| is above a lowered
  acceleration limit, the jerk limit in effect before the change is kept
  (it was acceptable a tick ago and never exceeds JERK_MAX), so the excess
  acceleration is removed promptly; the new jerk limit applies from the tick
  |a| is within the new acceleration limit. (Removing, say, 20 deg/s^2 at a
  newly lowered 1 deg/s^3 would add 200 deg/s of speed.) With this rule the
  speed stays below V_old + V_new <= 2 * RATE_MAX. The jerk limit in effect
  is published as `jerk_limit_mdps3`.

Domain (enforced by clamping): dt 1..20 ms; vel limit 10..RATE_MAX_MDPS,
acc limit 100..ACCEL_MAX_MDPS2, jerk limit 1000..JERK_MAX_MDPS3; the usable
acceleration is also capped at sqrt(2 * J * V) (more can never be used on
the way up to V; the cap keeps a^2 / 2J <= V, which bounds every product).
"""

from micropython import const

from firmware.fixedpoint import isqrt, mul_div
from firmware.limits import ACCEL_MAX_MDPS2, JERK_MAX_MDPS3, RATE_MAX_MDPS

VEL_MIN_MDPS = const(10)
ACC_MIN_MDPS2 = const(100)
JERK_MIN_MDPS3 = const(1000)
DT_MAX_MS = const(20)
# Plans assume ticks of at least this length (see _update_plan_jerk).
_PLAN_DT_MIN_MS = const(5)
# Snap to the target when this close, slower than SNAP_VEL_MDPS and with an
# acceleration that one tick of jerk can zero.
SNAP_MDEG = const(2)
SNAP_VEL_MDPS = const(2)
# Largest pass beyond a target that was reachable without overshoot.
OVERSHOOT_MAX_MDEG = const(3)

# Position remainder: 1 mdeg = 12e6 units of 1/12 ndeg (exact cubic term).
_FRAC_PER_MDEG = const(12000000)
# Velocity is held in 0.5 udps: 1 mdps = 2000 units.
_VX2_PER_MDPS = const(2000)
# Safety clamp on the internal speed: transients after lowered limits stay
# below 2 * RATE_MAX (see the jerk hold) plus a few mdps of discretisation;
# |vel_x2| <= 2.42e7 keeps dt * (v0 + v1) <= 20 * 4.84e7 = 9.7e8 < 2**30.
_VX2_ABS_MAX = const(24200000)
# Stop-distance domain: beyond |v| > 6144 mdps or a^2/2J > 6144 mdps the
# state is "saturated" and treated as unable to stop in any finite distance
# ahead (brake). Every product in _stop_u is bounded for this domain.
_VSAT_MDPS = const(6144)
_VSAT_V16 = const(98304)
_DIST_SAT_U16 = const(0x20000000)  # 2**29 u16: "no stop fits"
_DIST_CLAMP_U16 = const(0x10000000)  # |distance to target| clamp, 2**28 u16
_TARGET_ABS_MAX_MDEG = const(400000)
# Velocity-servo error clamp (v16): 2**18 = 16384 mdps, > 2 * RATE_MAX.
_SERVO_R16_MAX = const(262144)
_BISECT_STEPS = const(8)
# The velocity servo aims this far (v16) below the velocity limit.
_VEL_MARGIN_V16 = const(16)
# The stop is planned to end this far (u16) before the target: it absorbs
# the rounding of the stop-distance arithmetic (~0.1 mdeg), so the setpoint
# lands just short and the snap closes the gap instead of a limit cycle of
# tiny overshoots around the target. 8 u16 = 0.5 mdeg.
_STOP_MARGIN_U16 = const(8)
# Velocity-servo dead band (v16): a velocity error below 1/8 mdps asks for
# zero acceleration, so cruising does not dither by one mdps2 each tick.
_SERVO_DEADBAND_V16 = const(2)


def _tick_jerk_floor(jerk):
    """Smallest effective jerk floor(J dt / 1000) * 1000 / dt over the tick
    lengths 5..20 ms (jerk <= 1e5: products <= 2e6)."""
    best = jerk
    tick = _PLAN_DT_MIN_MS
    while tick <= DT_MAX_MS:
        effective = (jerk * tick // 1000) * 1000 // tick
        if effective < best:
            best = effective
        tick += 1
    return best


class MotionProfile:
    """Rate-, acceleration- and jerk-limited setpoint generator (1 axis).

    MotionProfile(vel_mdps, acc_mdps2, jerk_mdps3, pos_mdeg=0)

    set_limits(vel_mdps, acc_mdps2, jerk_mdps3)   any tick, no allocation
    reset(pos_mdeg, vel_mdps=0, acc_mdps2=0)      bumpless restart
    step(target_mdeg, dt_ms)                      one tick toward the target

    Attributes after each step: pos_mdeg, vel_mdps, acc_mdps2, jerk_mdps3
    (the jerk applied this tick), done (at the target, vel = acc = 0),
    vel_limit_mdps, acc_limit_mdps2 (usable acceleration), jerk_limit_mdps3
    (jerk limit in effect, see module docstring).
    """

    def __init__(self, vel_mdps, acc_mdps2, jerk_mdps3, pos_mdeg=0):
        self.vel_limit_mdps = 0
        self.acc_limit_mdps2 = 0
        self.jerk_limit_mdps3 = 0
        self._jerk_request = 0
        self._jerk_hold = 0
        self.pos_mdeg = 0
        self.vel_mdps = 0
        self.acc_mdps2 = 0
        self.jerk_mdps3 = 0
        self.done = False
        self._frac = 0
        self._vel_x2 = 0
        self._dt = 10
        self._jerk_plan = 0
        self._acc_step = 0
        self._plan_step = 0
        self._plan_jerk_all = 0
        self._plan_key_jerk = -1
        self._plan_key_acc = -1
        self.set_limits(vel_mdps, acc_mdps2, jerk_mdps3)
        self.reset(pos_mdeg)

    # ------------------------------------------------------------------
    def set_limits(self, vel_mdps, acc_mdps2, jerk_mdps3):
        """New limits (positive ints, clamped to the domain and the caps)."""
        v = vel_mdps
        if v < VEL_MIN_MDPS:
            v = VEL_MIN_MDPS
        elif v > RATE_MAX_MDPS:
            v = RATE_MAX_MDPS
        a = acc_mdps2
        if a < ACC_MIN_MDPS2:
            a = ACC_MIN_MDPS2
        elif a > ACCEL_MAX_MDPS2:
            a = ACCEL_MAX_MDPS2
        j = jerk_mdps3
        if j < JERK_MIN_MDPS3:
            j = JERK_MIN_MDPS3
        elif j > JERK_MAX_MDPS3:
            j = JERK_MAX_MDPS3
        # Usable acceleration <= sqrt(2 J' V) = 2 sqrt(J'/2 * V), with J' the
        # jerk every tick length delivers (the planning jerk): keeps
        # a^2 / 2J' <= V, the stop-distance domain. (J' >> 1) * V <= 3e8.
        a_reach = 2 * isqrt((_tick_jerk_floor(j) >> 1) * v)
        if a > a_reach:
            a = a_reach
        if a < ACC_MIN_MDPS2:
            a = ACC_MIN_MDPS2
        self.vel_limit_mdps = v
        self.acc_limit_mdps2 = a
        self._jerk_request = j
        self._update_jerk_in_effect()

    def _update_jerk_in_effect(self):
        """Jerk limit in effect (see the hold in the module docstring): a
        lowered jerk limit applies once |a| is within the acceleration limit;
        until then the jerk limit in effect before is kept."""
        jerk = self._jerk_request
        a = self.acc_mdps2
        if jerk < self._jerk_hold and (a > self.acc_limit_mdps2 or -a > self.acc_limit_mdps2):
            jerk = self._jerk_hold
        self._jerk_hold = jerk
        self.jerk_limit_mdps3 = jerk

    def reset(self, pos_mdeg, vel_mdps=0, acc_mdps2=0):
        """Restart from a measured state. The velocity is clamped to the hard
        cap RATE_MAX_MDPS (a faster start is slowed at the acc/jerk limits),
        the acceleration to the usable acceleration limit (a measured value
        beyond it is noise, and starting within it keeps every bound)."""
        v = vel_mdps
        if v > RATE_MAX_MDPS:
            v = RATE_MAX_MDPS
        elif v < -RATE_MAX_MDPS:
            v = -RATE_MAX_MDPS
        a = acc_mdps2
        if a > self.acc_limit_mdps2:
            a = self.acc_limit_mdps2
        elif a < -self.acc_limit_mdps2:
            a = -self.acc_limit_mdps2
        p = pos_mdeg
        if p > _TARGET_ABS_MAX_MDEG:
            p = _TARGET_ABS_MAX_MDEG
        elif p < -_TARGET_ABS_MAX_MDEG:
            p = -_TARGET_ABS_MAX_MDEG
        self.pos_mdeg = p
        self._frac = 0
        self._vel_x2 = v * _VX2_PER_MDPS
        self.vel_mdps = v
        self.acc_mdps2 = a
        self.jerk_mdps3 = 0
        self.done = False
        self._jerk_hold = self._jerk_request
        self.jerk_limit_mdps3 = self._jerk_request

    # ------------------------------------------------------------------
    def step(self, target_mdeg, dt_ms):
        """Advance one tick of dt_ms (clamped to 1..20) toward target_mdeg."""
        dt = dt_ms
        if dt < 1:
            dt = 1
        elif dt > DT_MAX_MS:
            dt = DT_MAX_MS
        target = target_mdeg
        if target > _TARGET_ABS_MAX_MDEG:
            target = _TARGET_ABS_MAX_MDEG
        elif target < -_TARGET_ABS_MAX_MDEG:
            target = -_TARGET_ABS_MAX_MDEG
        a0 = self.acc_mdps2
        v0_x2 = self._vel_x2

        # Already at rest on the target: stay (no chatter, no work).
        if target == self.pos_mdeg and self._frac == 0 and v0_x2 == 0 and a0 == 0:
            self.jerk_mdps3 = 0
            self.done = True
            return
        self.done = False

        self._update_jerk_in_effect()
        jerk = self.jerk_limit_mdps3
        # Acceleration change allowed this tick (whole mdps2; >= 1 since
        # jerk >= 1000 and dt >= 1) and the jerk the plan may rely on.
        acc_step = jerk * dt // 1000  # <= 100000 * 20 / 1000 = 2000
        self._acc_step = acc_step
        # Planning jerk: what every tick of 5..20 ms can deliver (see
        # _update_plan_jerk); a shorter tick may deliver less. Plans use the
        # requested jerk even during a jerk hold: the hold only speeds up the
        # removal of excess acceleration, and the plan must stay valid when
        # the hold ends.
        request = self._jerk_request
        if request != self._plan_key_jerk or self.acc_limit_mdps2 != self._plan_key_acc:
            self._update_plan_jerk(request)
        jerk_plan = self._plan_jerk_all
        if dt < _PLAN_DT_MIN_MS:
            tick_jerk = acc_step * 1000 // dt
            if tick_jerk < jerk_plan:
                jerk_plan = tick_jerk
        self._jerk_plan = jerk_plan
        self._plan_step = jerk_plan * dt // 1000  # <= acc_step
        self._dt = dt

        # --- distance to go in u16, and the direction toward the target ---
        dist_u = (target - self.pos_mdeg) * 16 - (self._frac * 16) // _FRAC_PER_MDEG
        if dist_u > _DIST_CLAMP_U16:
            dist_u = _DIST_CLAMP_U16
        elif dist_u < -_DIST_CLAMP_U16:
            dist_u = -_DIST_CLAMP_U16
        v0_16 = v0_x2 // 125  # 0.5 udps -> 1/16 mdps (2000 / 16 = 125)

        # --- snap when (nearly) there at (nearly) rest ---
        if (
            -SNAP_MDEG * 16 <= dist_u <= SNAP_MDEG * 16
            and -SNAP_VEL_MDPS * 16 <= v0_16 <= SNAP_VEL_MDPS * 16
            and -acc_step <= a0 <= acc_step
        ):
            self.pos_mdeg = target
            self._frac = 0
            self._vel_x2 = 0
            self.vel_mdps = 0
            self.acc_mdps2 = 0
            self.jerk_mdps3 = -a0 * 1000 // dt if a0 < 0 else -(a0 * 1000 // dt)
            self.done = True
            return

        # Normalise so that the target is ahead (sign +1) of the setpoint.
        if dist_u > 0:
            sign = 1
        elif dist_u < 0:
            sign = -1
        elif v0_16 > 0:
            sign = -1  # on the target but moving on: "ahead" is back
        else:
            sign = 1
        dist_n = sign * dist_u
        v0_n = sign * v0_16
        a0_n = sign * a0

        # --- candidates: go (servo to the velocity limit) and stop ---
        acc_limit = self.acc_limit_mdps2
        # Velocity goal a hair below the limit: the servo re-solves every tick
        # so it does not pile up the discrete ramp-down excess; what remains
        # (measured < 0.7 mdps with jittery ticks) is covered by 1 mdps.
        margin_16 = _VEL_MARGIN_V16
        goal_16 = self.vel_limit_mdps * 16 - margin_16
        a_go = self._servo(goal_16, v0_n, a0_n, acc_limit)
        a_stop = self._servo(0, v0_n, a0_n, acc_limit)
        if a_stop > a_go:
            a_stop = a_go

        # Hardest braking allowed this tick.
        a_min = a0_n - acc_step
        if a_min < -acc_limit:
            a_min = -acc_limit
        if a_min > a_stop:
            a_min = a_stop

        # Planned stops end _STOP_MARGIN_U16 short of the target ("aim");
        # only a stop that would pass the target itself ("limit") makes the
        # setpoint brake harder than the time-optimal stop.
        aim_u = dist_n - _STOP_MARGIN_U16
        if self._fits(a_go, v0_n, a0_n, aim_u):
            a1_n = a_go
        else:
            if self._fits(a_stop, v0_n, a0_n, aim_u):
                # Slide along the braking curve: largest fit in [a_stop, a_go).
                lo = a_stop
                hi = a_go
                bound_u = aim_u
            elif self._fits(a_stop, v0_n, a0_n, dist_n):
                # Lands inside the margin: take the stop as it is.
                lo = a_stop
                hi = a_stop
                bound_u = dist_n
            elif self._fits(a_min, v0_n, a0_n, dist_n):
                # Brake a little harder than the stop, just enough.
                lo = a_min
                hi = a_stop
                bound_u = dist_n
            else:
                # Cannot stop before the target: brake as hard as allowed.
                lo = a_min
                hi = a_min
                bound_u = dist_n
            k = 0
            while hi - lo > 1 and k < _BISECT_STEPS:
                mid = (lo + hi) >> 1
                if self._fits(mid, v0_n, a0_n, bound_u):
                    lo = mid
                else:
                    hi = mid
                k += 1
            a1_n = lo
        self._advance(sign * a1_n, dt)

    # ------------------------------------------------------------------
    def _update_plan_jerk(self, jerk):
        """Jerk the stop plans may count on, whatever the tick length.

        A tick changes the acceleration by floor(J dt / 1000) whole mdps2,
        i.e. an effective jerk that depends on dt; plans made with one tick
        length must still be executable if the next ticks are longer or
        shorter, so they use the smallest effective jerk over 5..20 ms.
        It is further capped at A / 20 ms: a ramp to the acceleration limit
        is planned to span at least one longest tick, since within a tick
        the acceleration can only change linearly.
        Runs only when the jerk or acceleration limit changes (16 steps).
        """
        best = _tick_jerk_floor(jerk)
        ramp_cap = self.acc_limit_mdps2 * (1000 // DT_MAX_MS)  # <= 1e6
        if ramp_cap < best:
            best = ramp_cap
        self._plan_jerk_all = best
        self._plan_key_jerk = jerk
        self._plan_key_acc = self.acc_limit_mdps2

    def _servo(self, goal_16, v0_16, a0, acc_limit):
        """Acceleration for the end of this tick that steers the velocity to
        goal_16 (v16) time-optimally: the acceleration from which ramping to
        zero at the jerk limit lands exactly on the goal, then clamped to
        the acceleration limit and to one tick of jerk.

        Solves a1 |a1| / 2J + a1 dt / 2 = R with R = goal - v0 - a0 dt / 2:
        |a1| = (sqrt(D^2 + 8 J |R|) - D) / 2, D = J dt (one tick of jerk).
        Evaluated in 4 mdps2 units so the root argument stays < 2**30:
        arg = D^2 / 16 + J |R16| / 32 <= 2.5e5 + 8.2e8.
        """
        dt = self._dt
        acc_step = self._acc_step
        plan_step = self._plan_step
        r_16 = goal_16 - v0_16 - a0 * dt // 125  # a0*dt <= 4e5; v16 terms < 4e5
        negative = r_16 < 0
        if negative:
            r_16 = -r_16
        if r_16 <= _SERVO_DEADBAND_V16:
            r_16 = 0
        if r_16 > _SERVO_R16_MAX:
            r_16 = _SERVO_R16_MAX
        jerk = self._jerk_plan
        half_steps = plan_step * plan_step >> 4  # D^2 / 16 <= 2.5e5
        j_term = (jerk >> 5) * r_16 + (((jerk & 31) * r_16) >> 5)  # <= 8.2e8
        root_4 = isqrt(half_steps + j_term)
        a_mag = (4 * root_4 - plan_step) >> 1
        if a_mag < 0:
            a_mag = 0
        a1 = -a_mag if negative else a_mag
        if a1 > acc_limit:
            a1 = acc_limit
        elif a1 < -acc_limit:
            a1 = -acc_limit
        if a1 > a0 + acc_step:
            a1 = a0 + acc_step
        elif a1 < a0 - acc_step:
            a1 = a0 - acc_step
        return a1

    def _fits(self, a1, v0_16, a0, dist_u):
        """True if ending this tick at acceleration a1 still leaves room for a
        time-optimal stop within dist_u (u16) ahead."""
        dt = self._dt
        # Velocity at the end of the tick (v16): + (a0 + a1) dt / 2 / 1000 * 16.
        dv_prod = (a0 + a1) * dt  # <= 40000 * 20 = 8e5
        v1_16 = v0_16 + dv_prod // 125
        # Distance this tick (u16), exact for constant jerk:
        # dt (v0 + v1) / 2 - dt^2 (a1 - a0) / 12, in mdeg * 16.
        v_sum = v0_16 + v1_16  # v16, |.| <= 4e5
        run_prod = v_sum * dt  # <= 8e6
        cubic_prod = dt * dt * (a1 - a0)  # <= 400 * 4000 = 1.6e6
        step_u = run_prod // 2000 - cubic_prod // 750000
        return step_u + self._stop_u(v1_16, a1) <= dist_u

    def _stop_u(self, v_16, a):
        """Signed distance (u16) of the time-optimal stop from velocity v_16
        (v16) and acceleration a (mdps2) with the planning jerk and the
        acceleration limit: ramp a to -a_peak at -J, hold -A if a_peak hits
        the limit, ramp back to zero at +J just as the velocity reaches 0.

        Domain |v| <= 6144 mdps, a^2 / 2J <= 6144 mdps, |a| <= 20000;
        outside it returns +-2**29 ("cannot stop"). Bounds, with J >= 1000:
          a^2 <= 4e8;  a_peak^2 = J v + a^2 / 2 <= 8.2e8;
          u = a + a_peak <= 40000;  u^2 / J <= 8 * 6144  (w16 < 2**20).
        """
        jerk = self._jerk_plan
        a_sq = a * a  # <= 4e8
        q = a_sq // jerk  # a^2 / J <= 4e5
        if q > 2 * _VSAT_MDPS or v_16 > _VSAT_V16 or v_16 < -_VSAT_V16:
            # Outside the domain: "no stop fits" in the direction the motion
            # keeps once the acceleration is ramped out (v + a|a| / 2J).
            rest_16 = v_16 + q * 8 if a >= 0 else v_16 - q * 8  # <= 3.3e6
            if rest_16 >= 0:
                return _DIST_SAT_U16
            return -_DIST_SAT_U16
        # Speed change while ramping a to zero: a|a| / 2J, in v16 (x8/J).
        ramp_16 = q * 8 + ((a_sq - q * jerk) * 8) // jerk  # <= 98304
        if a < 0:
            ramp_16 = -ramp_16
        # Flip so that the stop needs a deceleration (rest velocity >= 0).
        sign = 1
        if v_16 + ramp_16 < 0:
            sign = -1
            v_16 = -v_16
            a = -a
        # Peak deceleration: a_p^2 = J v + a^2 / 2 (v = v16 / 16).
        jv = (jerk >> 4) * v_16 + (((jerk & 15) * v_16) >> 4)  # |.| <= 6.1e8
        ap_sq = jv + (a_sq >> 1)  # <= 8.1e8
        if ap_sq < 0:
            ap_sq = 0
        acc_limit = self.acc_limit_mdps2
        acc_limit_sq = acc_limit * acc_limit  # <= 4e8
        hold = ap_sq > acc_limit_sq
        if hold:
            a_peak = acc_limit
            ap_sq = acc_limit_sq
        else:
            a_peak = isqrt(ap_sq)
        # v3: speed where the final ramp starts, a_p^2 / 2J (v16, x8/J).
        q = ap_sq // jerk
        v3_16 = q * 8 + ((ap_sq - q * jerk) * 8) // jerk  # <= 2 * 98304
        u = a + a_peak
        u_abs = u if u >= 0 else -u
        if hold:
            # Phase 1 ends on the limit -A. The setpoint's acceleration is
            # linear within each tick, so the ramp is planned to end on a
            # tick boundary: n = ceil(|u| / plan_step) ticks (jerk slightly
            # below J). A ramp that reached -A mid-tick would promise more
            # braking than the ticks deliver (up to J dt^2 / 8 of speed,
            # several mdeg of overshoot with 20 ms ticks at the jerk cap).
            # t1 <= (u / J) ~ sqrt(8 * 6144 / J) s <= 7011 ms.
            plan_step = self._plan_step
            t1_ms = ((u_abs + plan_step - 1) // plan_step) * self._dt
            # v2 = v + (a - A) / 2 * t1: (a - A) * t1 <= 40000 * 7011 = 2.8e8
            v2_16 = v_16 + (a - a_peak) * t1_ms // 125
            # t1 (v + v2) / 2 + t1^2 u / 12, in u16.
            p1 = mul_div(t1_ms, v_16 + v2_16, 2000)
            tu = mul_div(t1_ms, u, 1000)  # t1 u / 1000 <= 2.8e5
            cubic = mul_div(tu, t1_ms, 750)  # t1^2 u 16 / 12e6
        else:
            # v2: speed at the end of phase 1 (ramp from a to -a_p at -J).
            diff = a_sq - ap_sq  # |.| <= 8.1e8
            q = diff // jerk
            dv_16 = q * 8 + ((diff - q * jerk) * 8) // jerk
            v2_16 = v_16 + dv_16  # |.| <= 2 * 98304
            # |u| (v + v2) / 2J + u^3 / 12 J^2   (u16 = mdeg * 16)
            p1 = mul_div(u_abs, v_16 + v2_16, 2 * jerk)  # |v + v2| < 2**20
            w16 = mul_div(u_abs, 16 * u_abs, jerk)  # 16 u^2 / J < 2**20
            cubic = mul_div(u_abs, w16, jerk) // 12  # 16 u^3 / (12 J^2)
        dist = p1 + cubic
        # Phase 2 (hold at -A): (v2^2 - v3^2) / 2A.
        if hold and v2_16 > v3_16:
            dist += mul_div(v2_16 - v3_16, v2_16 + v3_16, 2 * acc_limit) // 16
        # Phase 3: a_p^3 / 6 J^2.
        wp16 = mul_div(a_peak, 16 * a_peak, jerk)  # 16 a_p^2 / J <= 2**18
        dist += mul_div(a_peak, wp16, jerk) // 6
        if sign < 0:
            return -dist
        return dist

    def _advance(self, a1, dt):
        """Integrate one tick at constant jerk ending at acceleration a1."""
        a0 = self.acc_mdps2
        v0_x2 = self._vel_x2
        # 0.5 udps: dv = (a0 + a1) / 2 * dt [udps] = (a0 + a1) * dt [0.5 udps].
        v1_x2 = v0_x2 + (a0 + a1) * dt  # step <= 8e5
        if v1_x2 > _VX2_ABS_MAX:
            v1_x2 = _VX2_ABS_MAX
        elif v1_x2 < -_VX2_ABS_MAX:
            v1_x2 = -_VX2_ABS_MAX
        # Position, exact for constant jerk, in 1/12 ndeg:
        #   12 * [dt (v0 + v1) / 4 - dt^2 (a1 - a0) / 12]   (v in 0.5 udps)
        # dt * (v0 + v1) <= 20 * 4.8e7 = 9.6e8, split into whole mdeg
        # (4e6 units of 0.25 ndeg) and a remainder < 4e6 (x3 -> 1.2e7).
        run = dt * (v0_x2 + v1_x2)
        whole_mdeg = run // 4000000
        rest = run - whole_mdeg * 4000000
        frac = self._frac + 3 * rest - dt * dt * (a1 - a0)  # |.| < 2.9e7
        carry = frac // _FRAC_PER_MDEG
        self.pos_mdeg += whole_mdeg + carry
        self._frac = frac - carry * _FRAC_PER_MDEG
        self._vel_x2 = v1_x2
        # Published velocity rounds toward zero: |vel_mdps| <= |true speed|.
        if v1_x2 >= 0:
            self.vel_mdps = v1_x2 // _VX2_PER_MDPS
        else:
            self.vel_mdps = -((-v1_x2) // _VX2_PER_MDPS)
        da = a1 - a0
        if da >= 0:
            self.jerk_mdps3 = da * 1000 // dt
        else:
            self.jerk_mdps3 = -((-da) * 1000 // dt)
        self.acc_mdps2 = a1
