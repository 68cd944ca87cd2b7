"""The control tick: sensors -> estimate -> state machine -> plan -> loop -> drive.

Program flow of one tick (100 Hz, no heap allocation):

    1. read the IMU (one I2C burst); a bus error or a frozen sensor counts
       toward "IMU lost"
    2. update the tilt estimate (accelerometer + gyro fusion)
    3. read the hold button (two contacts), the end-of-stroke switches, the
       ankle lock, the motor current and the position pot (if fitted)
    4. supervisor (firmware/supervisor.py): caps, plausibility, freshness,
       IMU against pot, current, tick timing; a violation latches a fault
       and its reaction: RETURN (controlled, home), BLIND (home without the
       IMU) or STOP (drive zero, actuator power cut by the relay)
    5. state machine: target and motion limits (firmware/session.py); a new
       session only with no fault, the ankle lock closed and the actuator's
       duty budget (firmware/duty_budget.py) covering the whole session
    6. motion planner: one rate/accel/jerk-limited step toward the target
    7. position loop -> duty, inside the rate window the interlock allows
    8. interlock: head-down only while the button is held, in a head-down
       state, below the angle cap and off the far end switch
    9. command the H-bridge (it zeroes itself if not re-commanded: dead-man)
   10. alarm (buzzer, LED) while a fault is latched
   11. feed the watchdog, last, only after a complete tick

The peripherals come in a `board` object (boards/*.py on hardware, sim/board.py
in the simulator) with the attributes listed in boards/README.md. Which IMU
driver and which H-bridge class to use follows `board.imu_type`
("mpu6050" | "lsm6dsox") and `board.hbridge_type` ("pwm_dir" | "dual_pwm");
a board without them gets the MPU-6050 and the PWM/DIR bridge. The
estimator's scales are the chosen driver's module constants.
"""

from micropython import const

from firmware import limits as L
from firmware import session as S
from firmware import supervisor as V
from firmware.blind_return import BlindReturn
from firmware.button import HoldButton
from firmware.drivers.hbridge import HBridgePwmDir
from firmware.duty_budget import DutyBudget
from firmware.estimator import TiltEstimator
from firmware.motion_profile import MotionProfile
from firmware.position_loop import PositionLoop
from firmware.supervisor import FAULT_NAMES, NO_FAULT, Supervisor

FAULT_IMU_LOST = V.IMU_LOST
FAULT_BLIND_RETURN_TIMEOUT = V.BLIND_RETURN_TIMEOUT

_IMU_FAIL_TICKS = const(3)  # 30 ms of bus errors = lost
_IMU_FROZEN_READS = const(5)  # 5 identical 14-byte samples in a row = frozen
_DT_MAX_MS = const(50)  # a late tick is integrated as at most this long
_DEADMAN_CHECK_MS = const(20)
_ANGLE_GUARD_MDEG = const(500)  # no head-down beyond setpoint max + this
_HOME_SWITCH_TRUST_MDEG = const(5000)  # home switch believed within 5 deg of home
_HOME_STOP_DECEL_MDPS2 = const(10000)  # head-up stop on the home over-travel switch
_BRAKE_WINDOW_MS = const(500)  # head-down braking allowed this long after a release
_BLIND_RATE_MDPS = const(2000)  # way home on the pot when the IMU is lost
_BUDGET_MARGIN_MS = const(5000)  # on-time on top of the planned motion (soft starts, slow user)
_ALARM_PERIOD_MS = const(1000)  # buzzer on for the first _ALARM_ON_MS of each period
_ALARM_ON_MS = const(200)


def imu_driver(imu_type):
    """(driver class, ACCEL_LSB_PER_G, GYRO_LSB_PER_DPS_X10) for an IMU type.

    Imported on demand: a board carries only the driver it uses in RAM.
    """
    if imu_type == "mpu6050":
        from firmware.drivers import mpu6050 as mod
        return mod.MPU6050, mod.ACCEL_LSB_PER_G, mod.GYRO_LSB_PER_DPS_X10
    if imu_type == "lsm6dsox":
        from firmware.drivers import lsm6dsox as mod
        return mod.LSM6DSOX, mod.ACCEL_LSB_PER_G, mod.GYRO_LSB_PER_DPS_X10
    raise ValueError("board.imu_type = %r is not known (mpu6050, lsm6dsox)" % (imu_type,))


def board_imu_type(board):
    return getattr(board, "imu_type", "mpu6050")


def make_drive(board, clock):
    """The H-bridge driver for `board.hbridge_type` (default "pwm_dir")."""
    kind = getattr(board, "hbridge_type", "pwm_dir")
    if kind == "pwm_dir":
        return HBridgePwmDir(board.motor_pwm, board.motor_dir, clock)
    if kind == "dual_pwm":
        # Imported on demand, as the IMU drivers: one bridge driver in RAM.
        from firmware.drivers.hbridge_dual_pwm import HBridgeDualPwm
        return HBridgeDualPwm(board.motor_pwm, board.motor_pwm_retract, clock,
                              getattr(board, "motor_enable", None))
    raise ValueError("board.hbridge_type = %r is not known (pwm_dir, dual_pwm)" % (kind,))


def session_need_ms(session, program):
    """Motor on-time (ms) a whole session of `program` needs: descent, rocking
    and return at the session's planned rates, a quarter more and a margin."""
    travel = session.hold_target_mdeg - session.home_mdeg
    if travel < 0:
        travel = 0
    # travel <= 1.6e5 mdeg; * 1000 fits a small int.
    need = travel * 1000 // session.descent_rate_mdps
    need += travel * 1000 // session.return_rate_mdps
    if program.rock_amplitude_mdeg > 0:
        need += program.rock_cycles * program.rock_period_ms
    return need * 5 // 4 + _BUDGET_MARGIN_MS


class Controller:
    def __init__(self, board, program, limits, table):
        self._board = board
        self._clock = board.clock
        self.limits = limits
        imu_class, accel_lsb_per_g, gyro_lsb_per_dps_x10 = imu_driver(board_imu_type(board))
        self.imu = imu_class(board.i2c, board.imu_addr)
        self.imu.init()
        self.estimator = TiltEstimator(
            accel_lsb_per_g=accel_lsb_per_g,
            gyro_lsb_per_dps=gyro_lsb_per_dps_x10 / 10,
            mount_offset_mdeg=table.imu_mount_offset_mdeg,
        )
        self.button = HoldButton(board.button_no, board.button_nc, self._clock)
        self.drive = make_drive(board, self._clock)
        board.deadman_timer.init(
            mode=board.deadman_timer.PERIODIC, period=_DEADMAN_CHECK_MS,
            callback=self.drive.check_deadman,
        )
        # Actuator power relay: closed only while the firmware runs and no
        # STOP fault is latched; a chip reset opens it (pin back to input).
        self._motor_power = getattr(board, "motor_power", None)
        if self._motor_power is not None:
            self._motor_power.value(1)
        self.profile = MotionProfile(
            limits.rate_max_mdps, limits.accel_max_mdps2, limits.jerk_max_mdps3, table.home_mdeg
        )
        self.loop = PositionLoop(table)
        self.session = S.Session(
            program, limits, table, self._clock, L.DEFAULT_ACCEL_MDPS2, L.DEFAULT_JERK_MDPS3
        )
        self.blind = BlindReturn(self.loop, table.home_mdeg, L.ANGLE_MAX_MDEG - table.home_mdeg)
        self.supervisor = Supervisor(limits, table, self.loop)
        self.pot = None  # no pot, or not calibrated: not read
        pot_adc = getattr(board, "position_adc", None)
        if pot_adc is not None and table.pot_stroke_m is not None:
            from firmware.position_sensor import PotAngle
            self.pot = PotAngle(table, pot_adc)
        self.pot_mdeg = None
        self._blind_on_pot = False
        self._home_switch_bad = False
        self._imu_bad = False  # an IMU fault was latched: it is not read again
        self._current_adc = board.current_adc
        self._current_fs_ma = getattr(board, "current_full_scale_ma", 20000)
        self.current_ma = 0
        self.ankle_open = False
        # The thermal history does not survive a reset (a control box keeps it
        # in non-volatile memory: see SAFETY.md); a boot starts it full.
        self.budget = DutyBudget(table.duty_on_max_ms, table.duty_cycle_percent, True)
        self.set_program(program)
        self.fault = NO_FAULT
        self.reaction = V.REACT_NONE
        self.head_down_permitted = False
        self._brake_envelope_mdps = 0
        self._home_floor_mdps = 0
        self._permitted_until_ms = self._clock.ticks_ms()
        self.home_switch = False
        self.far_switch = False
        self.imu_fail_ticks = 0
        self.error = None  # the exception that halted tick_guarded
        now = self._clock.ticks_ms()
        self._last_ms = now
        self._last_imu_ms = now
        self._alarm_ms = now

    @property
    def state_name(self):
        return S.STATE_NAMES[self.session.state]

    @property
    def fault_name(self):
        return FAULT_NAMES[self.fault]

    def set_program(self, program):
        """The next session's program (a config.Program), or None to refuse
        sessions (no program allowed: e.g. no medical clearance recorded).
        Sessions are refused too (program_ok False) if even a full duty
        budget never covers one (therapy.session_too_long() says why).
        Only between sessions: at home, or before the first. Start-up code."""
        state = self.session.state
        if state != S.HOME and state != S.STARTUP:
            raise ValueError("set_program: only at home (state is %s)" % S.STATE_NAMES[state])
        if program is None:
            self.program_ok = False
            return
        self.session.set_program(program)
        need = self.budget.need_ms = session_need_ms(self.session, program)
        self.program_ok = need <= self.budget.on_max_ms

    def tick_guarded(self):
        """One tick; an exception in it stops the motor at once and returns
        False: the loop must stop (and so stop feeding the watchdog, which
        resets the board; the boot then brings the table home). Continuing
        after an unexpected exception would run on state nobody checked."""
        try:
            self.tick()
            return True
        except Exception as err:  # any error halts the loop
            self.drive.stop()
            self.error = err
            return False

    def tick(self):
        clock = self._clock
        now = clock.ticks_ms()
        dt_raw = clock.ticks_diff(now, self._last_ms)
        dt = dt_raw
        if dt < 1:
            dt = 1
        elif dt > _DT_MAX_MS:
            dt = _DT_MAX_MS
        self._last_ms = now
        board = self._board

        # Once the IMU is not trusted (a BLIND fault, even if a STOP follows) it is not read
        # again: nothing uses it any more, and each failed read raises
        # OSError, which allocates (exception object, traceback) every tick,
        # and on a hung bus waits out the I2C timeout.
        imu_ok = not self._imu_bad and self._read_imu(now)
        est = self.estimator
        self.button.update(now)
        held = self.button.held
        # A home switch found stuck is ignored from then on (the IMU decides).
        self.home_switch = board.home_switch.value() == 1 and not self._home_switch_bad
        self.far_switch = board.far_switch.value() == 1
        self.ankle_open = board.ankle_lock.value() == 1
        # read_u16 >> 4: the ADC's 12 bits; * full scale (<= 65535) fits.
        self.current_ma = (self._current_adc.read_u16() >> 4) * self._current_fs_ma >> 12
        pot = self.pot
        if pot is not None:
            self.pot_mdeg = pot.read_mdeg()
        session = self.session
        state = session.state

        fault = NO_FAULT
        if not imu_ok and not self._imu_bad and self.imu_fail_ticks >= _IMU_FAIL_TICKS:
            fault = V.IMU_LOST
        elif self.reaction < V.REACT_STOP:
            fault = self.supervisor.check(
                dt_raw, dt, imu_ok, est.angle_mdeg, est.rate_mdps, est.accel_plausible,
                est.accel_norm_ok,
                self.drive.duty, self.current_ma, self.pot_mdeg, self.home_switch,
                self.far_switch, self.ankle_open,
                state != S.HOME and state != S.STARTUP and state != S.SAFE_STOP,
                self.button.contacts_disagree)
        if fault != NO_FAULT and V.REACTION[fault] > self.reaction:
            self._latch(fault, now)

        reaction = self.reaction
        if reaction == V.REACT_STOP:
            duty = 0
            self.head_down_permitted = False
        elif reaction == V.REACT_BLIND:
            duty = self._blind_duty(now, dt)
        else:
            may_start = (reaction == V.REACT_NONE and self.program_ok and not self.ankle_open
                         and self.budget.left_ms >= self.budget.need_ms)
            session.update(now, held, self.button.released, est.angle_mdeg, est.rate_mdps,
                           self.loop.rate_cmd_mdps, est.settled, self.profile, may_start)
            self._check_budget(now, est.angle_mdeg)
            duty = self._planned_duty(dt, held, est.angle_mdeg)
        if reaction == V.REACT_STOP:
            self.drive.stop()
        else:
            self.drive.command(duty)
        self.budget.update(dt, self.drive.duty)
        if reaction != V.REACT_NONE:
            self._alarm(now)
        board.wdt.feed()

    def _latch(self, fault, now):
        """Latch `fault` (it only escalates) and start its reaction."""
        self.fault = fault
        if fault == V.HOME_SWITCH_STUCK:
            self._home_switch_bad = True
            self.home_switch = False
        elif fault == V.POSITION_DISAGREE:
            self.pot = None  # one of IMU and pot is wrong: the pot is not used again
            self.pot_mdeg = None
        reaction = V.REACTION[fault]
        self.reaction = reaction
        self._alarm_ms = now
        session = self.session
        state = session.state
        est = self.estimator
        if reaction == V.REACT_STOP:
            self.drive.stop()
            if self._motor_power is not None:
                self._motor_power.value(0)
            session.safe_stop(now)
        elif reaction == V.REACT_BLIND:
            self._imu_bad = True
            if state == S.STARTUP and self.home_switch:
                session.arrived_home(now)  # home; no session while the fault stays
            elif state != S.HOME and state != S.SAFE_STOP:
                # At STARTUP the estimate never settled: where the table is,
                # only the pot knows. Without one, reckon from the far end:
                # the blind duty is then the slow one all the way to the switch.
                last_mdeg = est.angle_mdeg if state != S.STARTUP else L.ANGLE_MAX_MDEG
                session.blind_return(now)
                self._blind_on_pot = self.pot is not None
                if self._blind_on_pot:
                    # Closed loop on the pot: plan from where it says the
                    # table is, moving as last commanded, to home, slowly.
                    # Braking as after a release (the limits a release stop
                    # uses); the slow rate keeps the rest of the way gentle.
                    lim = self.limits
                    self.profile.reset(self.pot_mdeg, self.loop.rate_cmd_mdps, 0)
                    self.profile.set_limits(_BLIND_RATE_MDPS, lim.release_brake_accel_mdps2,
                                            lim.jerk_max_mdps3)
                    session.target_mdeg = session.home_mdeg
                self.blind.start(last_mdeg, self.drive.duty)
        elif state in S.USER_SESSION_STATES:
            # RETURN: as a release: brake within the caps, then home gently.
            session.emergency_return(now, self.profile, est.angle_mdeg, est.rate_mdps,
                                     self.loop.rate_cmd_mdps)

    def _check_budget(self, now, angle_mdeg):
        """End a session early while the budget still covers the way home."""
        state = self.session.state
        if state == S.STARTUP or state == S.HOME:
            return
        if state == S.DESCENDING or state == S.HOLDING or state == S.ROCKING:
            travel = angle_mdeg - self.session.home_mdeg
            if travel < 0:
                travel = 0
            need = travel * 1000 // self.session.return_rate_mdps * 5 // 4 + _BUDGET_MARGIN_MS
            if self.budget.left_ms < need:
                self.budget.cuts += 1  # sessions the budget cut short (main.py's log)
                self.session.end_early(now, self.profile, angle_mdeg)

    def _alarm(self, now):
        """Buzzer and LED while a fault is latched: a short beep each second."""
        age = self._clock.ticks_diff(now, self._alarm_ms)
        if age >= _ALARM_PERIOD_MS:
            self._alarm_ms = now
            age = 0
        on = 1 if age < _ALARM_ON_MS else 0
        self._board.buzzer.value(on)
        self._board.led.value(on)

    def _read_imu(self, now):
        try:
            self.imu.read()
        except OSError:
            self.imu_fail_ticks += 1
            return False
        if self.imu.frozen_reads >= _IMU_FROZEN_READS:
            self.imu_fail_ticks += 1
            return False
        self.imu_fail_ticks = 0
        dt = self._clock.ticks_diff(now, self._last_imu_ms)
        if dt > _DT_MAX_MS:
            dt = _DT_MAX_MS
        self._last_imu_ms = now
        imu = self.imu
        self.estimator.update(imu.ax, imu.ay, imu.az, imu.gy, dt)
        return True

    def _planned_duty(self, dt, held, angle):
        """The planned path: profile -> position loop on `angle` (the IMU's
        estimate, or the pot's on a blind return), inside the interlock."""
        session = self.session
        state = session.state
        if state == S.STARTUP or state == S.HOME or state == S.SAFE_STOP:
            self.head_down_permitted = False
            self.loop.reset()
            return 0
        profile = self.profile
        profile.step(session.target_mdeg, dt)
        # Interlock: recomputed from fresh readings every tick, whatever the plan.
        permitted = (
            held
            and (state == S.DESCENDING or state == S.HOLDING or state == S.ROCKING)
            and not self.far_switch
            and angle < self.limits.setpoint_max_mdeg + _ANGLE_GUARD_MDEG
        )
        self.head_down_permitted = permitted
        if permitted:
            rate_max = self.limits.head_down_rate_max_mdps
            self._permitted_until_ms = self._last_ms
        else:
            rate_max = self._braking_envelope(profile.vel_mdps)
        # 90 % of the cap: the loop's correction rides on an estimate that
        # lags under vibration; the true rate must not follow it past the cap.
        rate_min = -(self.limits.rate_max_mdps * 9 // 10)
        if self.home_switch and angle - self.session.home_mdeg < _HOME_SWITCH_TRUST_MDEG:
            # Past home, on the over-travel switch: stop going head-up as a
            # ramp (the floor rises from the last command at half the accel
            # cap), not a bare stop; the hard stop is further on.
            floor = self._home_floor_mdps + _HOME_STOP_DECEL_MDPS2 * dt // 1000
            rate_min = floor
        else:
            floor = self.loop.rate_cmd_mdps  # where the ramp starts if the switch trips
        self._home_floor_mdps = min(0, floor)
        if rate_min > 0:
            rate_min = 0
        duty = self.loop.update(profile.pos_mdeg, profile.vel_mdps, angle, dt, rate_min, rate_max)
        if permitted:
            # A release's braking envelope starts at the last commanded rate,
            # so the first tick after it already asks for less.
            cmd = self.loop.rate_cmd_mdps
            self._brake_envelope_mdps = max(0, cmd)
        elif duty > 0:
            # ... and less drive: the rate envelope alone can leave the duty
            # level for a tick (the feed-forward gain grows head-down, and
            # the estimate is noisy). Without permission head-down duty only
            # falls, by at least 1/64 a tick; the plan brakes faster than that.
            cap = self.drive.duty * 63 // 64  # <= 0 after head-up or no drive
            if duty > cap:
                duty = max(0, cap)
        return duty

    def _braking_envelope(self, plan_vel_mdps):
        """Head-down rate still allowed after permission ended: only shrinks.

        Stopping takes a braking ramp (within the accel and jerk caps, at most
        0.6 deg); cutting head-down drive at once would stop the table harder
        than the caps allow. The envelope follows the braking plan down, never
        rises again, and is zero once _BRAKE_WINDOW_MS has passed.
        """
        env = self._brake_envelope_mdps
        if plan_vel_mdps < env:
            env = max(0, plan_vel_mdps)
        if self._clock.ticks_diff(self._last_ms, self._permitted_until_ms) > _BRAKE_WINDOW_MS:
            env = 0
        self._brake_envelope_mdps = env
        return env

    def _blind_duty(self, now, dt):
        """BLIND: the way home without the IMU, at reduced speed, timed."""
        self.head_down_permitted = False
        session = self.session
        if session.state != S.BLIND_RETURN:
            return 0
        if self._blind_on_pot:
            # Also timed: the pot is trusted, not proven.
            self.blind.elapsed_ms += dt
            arrived = self.profile.done and session.is_home(self.pot_mdeg)
        else:
            arrived = False
        if self.home_switch or arrived:
            session.arrived_home(now)
            return 0
        if self.blind.elapsed_ms > self.blind.timeout_ms:
            self._latch(V.BLIND_RETURN_TIMEOUT, now)
            return 0
        if self._blind_on_pot:
            return self._planned_duty(dt, False, self.pot_mdeg)
        return self.blind.update(dt)
