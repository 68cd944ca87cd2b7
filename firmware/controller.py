"""The control tick: sensors -> estimate -> state machine -> plan -> loop -> drive.

Program flow of one tick (100 Hz, no heap allocation):

    1. read the IMU (one I2C burst); a bus error or a frozen sensor counts
       toward "IMU lost"
    2. update the tilt estimate (accelerometer + gyro fusion)
    3. read the hold button (two contacts) and the end-of-stroke switches
    4. state machine: target and motion limits (firmware/session.py)
    5. motion planner: one rate/accel/jerk-limited step toward the target
    6. position loop -> duty, inside the rate window the interlock allows
    7. interlock: head-down only while the button is held, in a head-down
       state, below the angle cap and off the far end switch
    8. command the H-bridge (it zeroes itself if not re-commanded: dead-man)
    9. feed the watchdog, last, only after a complete tick

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
from firmware.blind_return import BlindReturn
from firmware.button import HoldButton
from firmware.drivers.hbridge import HBridgeDualPwm, HBridgePwmDir
from firmware.estimator import TiltEstimator
from firmware.motion_profile import MotionProfile
from firmware.position_loop import PositionLoop

NO_FAULT = const(0)
FAULT_IMU_LOST = const(1)
FAULT_BLIND_RETURN_TIMEOUT = const(2)
FAULT_NAMES = ("", "imu_lost", "blind_return_timeout")

_IMU_FAIL_TICKS = const(3)  # 30 ms of bus errors = lost
_IMU_FROZEN_READS = const(5)  # 5 identical 14-byte samples in a row = frozen
_DT_MAX_MS = const(50)  # a late tick is integrated as at most this long
_DEADMAN_CHECK_MS = const(20)
_ANGLE_GUARD_MDEG = const(500)  # no head-down beyond setpoint max + this
_HOME_SWITCH_TRUST_MDEG = const(5000)  # home switch believed within 5 deg of home
_HOME_STOP_DECEL_MDPS2 = const(10000)  # head-up stop on the home over-travel switch
_BRAKE_WINDOW_MS = const(500)  # head-down braking allowed this long after a release


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
        return HBridgeDualPwm(board.motor_pwm, board.motor_pwm_retract, clock,
                              getattr(board, "motor_enable", None))
    raise ValueError("board.hbridge_type = %r is not known (pwm_dir, dual_pwm)" % (kind,))


class Controller:
    def __init__(self, board, program, limits, table):
        self._board = board
        self._clock = board.clock
        self.limits = limits
        self.table = table
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
        # Actuator power relay: closed while the firmware runs; a chip reset
        # opens it (the pin goes back to an input).
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
        self.fault = NO_FAULT
        self.program_ok = True
        self.ankle_open = False
        self.error = None  # the exception that halted tick_guarded
        self.head_down_permitted = False
        self._brake_envelope_mdps = 0
        self._home_floor_mdps = 0
        self._permitted_until_ms = self._clock.ticks_ms()
        self.home_switch = False
        self.far_switch = False
        self.imu_fail_ticks = 0
        self.ticks = 0
        self.overruns = 0
        now = self._clock.ticks_ms()
        self._last_ms = now
        self._last_imu_ms = now

    @property
    def state_name(self):
        return S.STATE_NAMES[self.session.state]

    @property
    def fault_name(self):
        return FAULT_NAMES[self.fault]

    def set_program(self, program):
        """The next session's program (a config.Program), or None to refuse
        sessions (e.g. no medical clearance recorded). Only between sessions:
        at home, or before the first. Start-up code."""
        state = self.session.state
        if state != S.HOME and state != S.STARTUP:
            raise ValueError("set_program: only at home (state is %s)" % S.STATE_NAMES[state])
        if program is None:
            self.program_ok = False
            return
        self.session.set_program(program)
        self.program_ok = True

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
        dt = clock.ticks_diff(now, self._last_ms)
        if dt < 1:
            dt = 1
        elif dt > _DT_MAX_MS:
            dt = _DT_MAX_MS
        self._last_ms = now
        self.ticks += 1

        # Once the IMU is declared lost (a latched fault) it is not read again:
        # nothing uses it any more, and each failed read raises OSError, which
        # allocates (exception object, traceback) every tick, and on a hung
        # bus waits out the I2C timeout.
        imu_ok = self.fault == NO_FAULT and self._read_imu(now)
        est = self.estimator
        self.button.update(now)
        held = self.button.held
        self.home_switch = self._board.home_switch.value() == 1
        self.far_switch = self._board.far_switch.value() == 1
        self.ankle_open = self._board.ankle_lock.value() == 1
        session = self.session

        if not imu_ok and self.fault == NO_FAULT and self.imu_fail_ticks >= _IMU_FAIL_TICKS:
            self.fault = FAULT_IMU_LOST
            if session.state != S.HOME and session.state != S.STARTUP:
                session.blind_return(now)
                self.blind.start(est.angle_mdeg, self.drive.duty)

        if self.fault != NO_FAULT:
            duty = self._fault_duty(now, dt)
        else:
            # A new session only with a program and the ankle lock closed.
            may_start = self.program_ok and not self.ankle_open
            session.update(now, held, self.button.released, est.angle_mdeg, est.rate_mdps,
                           self.loop.rate_cmd_mdps, est.settled, self.profile, may_start)
            duty = self._planned_duty(dt, held)
        self.drive.command(duty)
        self._board.wdt.feed()

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

    def _planned_duty(self, dt, held):
        session = self.session
        state = session.state
        if state == S.STARTUP or state == S.HOME or state == S.SAFE_STOP:
            self.head_down_permitted = False
            self.loop.reset()
            return 0
        est = self.estimator
        angle = est.angle_mdeg
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
        rate_min = -self.limits.rate_max_mdps
        if self.home_switch and angle - self.table.home_mdeg < _HOME_SWITCH_TRUST_MDEG:
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

    def _fault_duty(self, now, dt):
        """Reactions that do not trust the IMU."""
        self.head_down_permitted = False
        session = self.session
        if session.state == S.BLIND_RETURN:
            if self.home_switch:
                session.arrived_home(now)
                return 0
            if self.blind.elapsed_ms > self.blind.timeout_ms:
                self.fault = FAULT_BLIND_RETURN_TIMEOUT
                session.safe_stop(now)
                return 0
            return self.blind.update(dt)
        return 0

    def run(self):
        """Board main loop: one tick every TICK_MS; never returns."""
        clock = self._clock
        next_ms = clock.ticks_add(clock.ticks_ms(), L.TICK_MS)
        while True:
            if not self.tick_guarded():
                print("FAULT exception in the control loop: %r; motor stopped, "
                      "waiting for the watchdog reset" % (self.error,))
                while True:
                    clock.sleep_ms(L.TICK_MS)
            wait = clock.ticks_diff(next_ms, clock.ticks_ms())
            if wait > 0:
                clock.sleep_ms(wait)
            else:
                self.overruns += 1
            next_ms = clock.ticks_add(next_ms, L.TICK_MS)
