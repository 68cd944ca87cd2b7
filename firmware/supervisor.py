"""The supervisor: every tick, independent of the state machine, checks what
the sensors say against the limits and latches a named fault.

It decides nothing about where the table goes: it names the fault, and each
fault has one reaction (REACTION below) that the controller carries out:

    RETURN  home by controlled motion, IMU-guided, gentle (the safe state);
    BLIND   home without the IMU: on the position pot if the table has
            one, else open loop to the home switch; reduced speed, timeout;
    STOP    motion itself is the hazard (jam, runaway, overspeed): drive to
            zero at once and cut actuator power through the relay, which
            does not depend on the H-bridge inputs; alarm.

A fault stays latched until the next boot: the table will not start another
session with it. Every check is debounced by a count of consecutive ticks,
so one noisy sample does not stop a session, and the counts bound the
reaction time (SAFETY.md lists the bounds and the tests that prove them).
Integers only; no allocation.
"""

from micropython import const

from firmware import limits as L

NO_FAULT = const(0)
IMU_LOST = const(1)
BLIND_RETURN_TIMEOUT = const(2)
IMU_IMPLAUSIBLE = const(3)
ANGLE_CAP = const(4)
RATE_CAP = const(5)
RUNAWAY = const(6)
JAM = const(7)
POSITION_DISAGREE = const(8)
TICK_OVERRUN = const(9)
HOME_SWITCH_STUCK = const(10)
FAR_SWITCH_STUCK = const(11)
ANKLE_UNLOCKED = const(12)
BUTTON_FAULT = const(13)
DRIVE_DEAD = const(14)

FAULT_NAMES = (
    "",
    "imu_lost",
    "blind_return_timeout",
    "imu_implausible",
    "angle_cap",
    "rate_cap",
    "runaway",
    "jam",
    "position_disagree",
    "tick_overrun",
    "home_switch_stuck",
    "far_switch_stuck",
    "ankle_unlocked",
    "button_fault",
    "drive_dead",
)

REACT_NONE = const(0)
REACT_RETURN = const(1)
REACT_BLIND = const(2)
REACT_STOP = const(3)
# Indexed by fault code.
REACTION = (
    REACT_NONE,
    REACT_BLIND,  # imu_lost
    REACT_STOP,  # blind_return_timeout
    REACT_BLIND,  # imu_implausible
    REACT_RETURN,  # angle_cap
    REACT_STOP,  # rate_cap
    REACT_STOP,  # runaway
    REACT_STOP,  # jam
    REACT_RETURN,  # position_disagree
    REACT_RETURN,  # tick_overrun
    REACT_RETURN,  # home_switch_stuck
    REACT_RETURN,  # far_switch_stuck
    REACT_RETURN,  # ankle_unlocked
    REACT_RETURN,  # button_fault
    REACT_STOP,  # drive_dead: nothing moves the table; the alarm calls for help
)

# Debounce counts (ticks of 10 ms) and thresholds; SAFETY.md explains each.
# |a| outside 0.75..1.25 g (estimator.accel_plausible): a leaky count (+1
# bad, -1 good sample) reaching this. Heavy vibration makes a few samples
# bad (the count stays low; the estimator's own 0.9..1.1 g gate is for
# trusting the tilt, not for calling the sensor broken); a broken
# accelerometer makes all of them bad (100 ms: at the 3 deg/s head-down cap,
# 0.3 deg of detection plus the release-stop braking stays within 1 deg).
_IMPLAUSIBLE_COUNT = const(10)
# |a| plausible but outside the estimator's 0.9..1.1 g gate: the tilt then
# comes from the gyro alone. The same leaky count reaching this (2 s of such
# samples, net) is a sensor reading off (scale, range), not vibration.
_UNTRUSTED_COUNT = const(200)
_RATE_MARGIN_MDPS = const(1500)  # over the rate cap by this much ...
_RATE_TICKS = const(3)  # ... for this long
# Runaway, three signatures: current while the bridge is off; faster than
# any recent drive could move the table; moving hard against the drive. The
# rate margins are above a gyro bias step (1 dps) plus the smoothed noise of
# heavy vibration; a bridge stuck on moves the table at >= 11 dps.
_IDLE_CURRENT_MA = const(1000)  # the bridge is off: no current can flow
_IDLE_TICKS = const(2)
_RUNAWAY_MARGIN_MDPS = const(2500)
_RUNAWAY_TICKS = const(2)
_AGAINST_TICKS = const(10)
_DUTY_ENV_DECAY = const(25)  # duty units per ms: the motor's lag behind the drive
# Jam (or a dead drive): driven at least _DRIVEN_DUTY yet moving at under a
# fifth of the rate that drive gives the unloaded table (a loaded one still
# makes more), this long. The drive is smoothed as the motor follows it, so a
# start is not taken for a jam. The current then names it: the stall current
# of that drive (jam_current_a at full duty, pro rata) is a jam, none is a
# dead drive (open lead, blown fuse, relay that does not close).
_DRIVEN_DUTY = const(1500)  # 15 % of DUTY_FULL
_MOTOR_LAG_MS = const(40)  # the motor's time constant
_JAM_TICKS = const(20)
_DISAGREE_MDEG = const(6000)  # IMU and pot further apart than this ...
_DISAGREE_TICKS = const(10)  # ... this long (100 ms: the 1 deg bound, as above)
_OVERRUN_MS = const(50)  # a tick this late: the loop is not keeping time
_SWITCH_FAR_MDEG = const(15000)  # an end switch this far from its end is stuck
_SWITCH_TICKS = const(10)
_ANKLE_TICKS = const(5)
_BUTTON_TICKS = const(30)  # contacts disagree this long: welded or broken wire
_RATE_FILTER_MS = const(40)  # supervisor's rate: the gyro rate smoothed


class Supervisor:
    def __init__(self, limits, table, loop):
        self._loop = loop  # its gain table: the fastest a duty can move the table
        self._rate_cap = limits.rate_max_mdps + _RATE_MARGIN_MDPS
        self._home_mdeg = table.home_mdeg
        self._jam_ma = table.jam_current_ma
        self._far_stuck_below_mdeg = L.SETPOINT_MAX_MDEG - _SWITCH_FAR_MDEG
        self.rate_mdps = 0  # smoothed
        self._duty_env = 0
        self._duty_lag = 0
        self._implausible = 0
        self._untrusted = 0
        self._over_rate = 0
        self._runaway = 0
        self._against = 0
        self._idle_current = 0
        self._jam = 0
        self._disagree = 0
        self._home_stuck = 0
        self._far_stuck = 0
        self._ankle = 0
        self._button = 0

    def check(self, dt_raw_ms, dt_ms, imu_ok, angle_mdeg, rate_mdps, plausible, trusted, duty,
              current_ma, pot_mdeg, home_switch, far_switch, ankle_open, in_session,
              contacts_disagree):
        """One tick's checks; the fault code to latch, or NO_FAULT.

        `dt_raw_ms`: time since the last tick, unclamped. `imu_ok`: a fresh
        sample this tick (angle and rate mean something). `plausible`,
        `trusted`: its |a| within 0.75..1.25 g, within the estimator's 0.9..1.1
        g gate (estimator.accel_plausible, accel_norm_ok). `duty`: the
        applied duty last tick. `pot_mdeg`: the pot's angle or None.
        `in_session`: a session state (the user is on a moving table).
        """
        if dt_raw_ms > _OVERRUN_MS:
            return TICK_OVERRUN

        # Smoothed rate (EMA): the check below must not trip on gyro noise.
        self.rate_mdps += (rate_mdps - self.rate_mdps) * dt_ms // _RATE_FILTER_MS
        rate = self.rate_mdps
        mag = duty if duty >= 0 else -duty
        env = self._duty_env - _DUTY_ENV_DECAY * dt_ms
        if env < mag:
            env = mag
        self._duty_env = env
        # mag <= 10000, dt <= 50: small ints.
        self._duty_lag += (mag - self._duty_lag) * dt_ms // _MOTOR_LAG_MS

        # Current with the bridge off (and the motor's lag over): only a
        # bridge that is stuck on can drive it.
        idle = env == 0 and current_ma > _IDLE_CURRENT_MA
        self._idle_current = self._idle_current + 1 if idle else 0
        if self._idle_current >= _IDLE_TICKS:
            return RUNAWAY
        if imu_ok:
            if plausible:
                if self._implausible > 0:
                    self._implausible -= 1
            else:
                self._implausible += 1
                if self._implausible >= _IMPLAUSIBLE_COUNT:
                    return IMU_IMPLAUSIBLE
            if trusted:
                if self._untrusted > 0:
                    self._untrusted -= 1
            else:
                self._untrusted += 1
                if self._untrusted >= _UNTRUSTED_COUNT:
                    return IMU_IMPLAUSIBLE
            speed = rate if rate >= 0 else -rate
            self._over_rate = self._over_rate + 1 if speed > self._rate_cap else 0
            if self._over_rate >= _RATE_TICKS:
                return RATE_CAP
            # Runaway: faster than any duty the bridge was given lately could
            # move it (the no-load rate: a self-locking screw is never faster),
            # or moving against the drive.
            gain = self._loop.gain_q(angle_mdeg)  # duty per mdps, Q10
            allowed = env * 1024 // gain + _RUNAWAY_MARGIN_MDPS if gain > 0 else speed
            self._runaway = self._runaway + 1 if speed > allowed else 0
            against = (duty > 2000 and rate < -_RUNAWAY_MARGIN_MDPS) or (
                duty < -2000 and rate > _RUNAWAY_MARGIN_MDPS)
            self._against = self._against + 1 if against else 0
            if self._runaway >= _RUNAWAY_TICKS or self._against >= _AGAINST_TICKS:
                return RUNAWAY
            expected = self._duty_lag * 1024 // gain if gain > 0 else 0
            still = speed * 5 < expected
        else:
            still = False  # no rate: the blind return's timeout covers a stuck table
        self._jam = self._jam + 1 if mag >= _DRIVEN_DUTY and still else 0
        if self._jam >= _JAM_TICKS:
            # current <= 6e4 mA, mag <= 1e4: the products fit small ints.
            return JAM if current_ma * 10000 >= mag * self._jam_ma else DRIVE_DEAD

        if imu_ok:
            if angle_mdeg > L.ANGLE_MAX_MDEG:
                return ANGLE_CAP
            if pot_mdeg is not None:
                d = angle_mdeg - pot_mdeg
                far = d > _DISAGREE_MDEG or d < -_DISAGREE_MDEG
                self._disagree = self._disagree + 1 if far else 0
                if self._disagree >= _DISAGREE_TICKS:
                    return POSITION_DISAGREE
            stuck = home_switch and angle_mdeg > self._home_mdeg + _SWITCH_FAR_MDEG
            self._home_stuck = self._home_stuck + 1 if stuck else 0
            if self._home_stuck >= _SWITCH_TICKS:
                return HOME_SWITCH_STUCK
            stuck = far_switch and angle_mdeg < self._far_stuck_below_mdeg
            self._far_stuck = self._far_stuck + 1 if stuck else 0
            if self._far_stuck >= _SWITCH_TICKS:
                return FAR_SWITCH_STUCK

        self._ankle = self._ankle + 1 if ankle_open and in_session else 0
        if self._ankle >= _ANKLE_TICKS:
            return ANKLE_UNLOCKED
        self._button = self._button + 1 if contacts_disagree else 0
        if self._button >= _BUTTON_TICKS:
            return BUTTON_FAULT
        return NO_FAULT
