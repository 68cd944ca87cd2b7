"""Device entry point: build the board, self-test, then run the controller.

MicroPython runs this file at boot (it is copied to the board's root as
source by `make flash`). It is also runnable in the simulator: hand `boot()`
a SimBoard (tests/test_boot_*.py), then call `App.tick()` once per step.

Boot sequence:
1. read `manifest.json` (written by the deploy tool: {"board": name,
   "files": {path: sha256 hex}}) and build the board from the module it
   names (`boards.<name>.Board()`), or from the deploy tool's `board.py`
   shim when the manifest is missing. The board constructor drives every
   motor output to off before anything else.
2. run the self-test (firmware/selftest.py): IMU, button, end switches,
   file hashes against the manifest.
3. passed: run the controller (`Controller(...).run()`, never returns). A
   table found away from home is brought home by the controller itself
   (STARTUP -> RECOVERING -> HOME), with no button press; a session needs a
   fresh press after that.
4. failed: the actuator stays off, the buzzer and LED signal the fault (three
   short beeps every 2 s, LED blinking at 2 Hz), the reasons are printed on
   the serial console (again every 10 s), and no session runs. One exception
   keeps a person from being left tilted: when only the button or the end
   switches failed (the IMU and the files are fine) and the table is away
   from home, the controller runs until the table is home (RECOVERING needs
   neither the button nor the switches; the LED stays on and the buzzer beeps
   once a second meanwhile), and then the board halts as above.

Watchdog: the board file starts it (1 s). The controller feeds it at the end
of each tick, the halt loop at the end of each of its ticks. If the
controller raises, the motor outputs are switched off at once and the
exception ends main.py: the watchdog then resets the board, which boots
again and recovers.

REPL (Ctrl-C): mpremote, and so `make flash`, interrupts a running board
with Ctrl-C, which raises KeyboardInterrupt in the loop. `App.run()` catches
it (`App.stop_for_repl()`): the H-bridge stops and every motor output goes
off at once, the buzzer and the LED go off, one line is printed, and the
board's timer (`board.repl_timer` if the board has one, else
`board.deadman_timer`, which the controller no longer needs) feeds the
watchdog every 200 ms from then on, still running the H-bridge dead-man
check, so the board does not reset under the REPL while it is being deployed
to. main.py then returns to the REPL; a reset (or power cycle) boots again.
Stopping the motor on an operator's interrupt, rather than bringing the
table home first, is acceptable only because an interrupt is a service
action (a deploy) done with the table at home and nobody on it: when the last
estimate (the controller's, else the self-test's accelerometer angle) is not
at home, a WARNING line says so.

Configuration: reading config.json is a separate piece of work; until then
the program, limits and table come from DEFAULT_CONFIG below (a gentle 30 deg
session without rocking; the table geometry of the simulated reference
table). `boot(board, config=...)` takes another dict of the same shape.
"""

import sys

from firmware import limits as L
from firmware import session as S
from firmware.config import ConfigError, Limits, Program, Table
from firmware.controller import Controller, board_imu_type, imu_driver
from firmware.selftest import away_from_home, run_selftest

MANIFEST_PATH = "manifest.json"  # relative: the board's root is the current folder

DEFAULT_CONFIG = {
    "program": {
        "target_angle_deg": 30.0,
        "hold_s": 60.0,
        "rock_amplitude_deg": 0.0,
        "rock_period_s": 10.0,
    },
    "limits": {},
    "table": {
        "home_deg": -60.0,
        "lever_m": 0.18,
        "base_m": 0.80,
        "phi_offset_deg": 75.0,
        "noload_speed_mps": 0.035,
        "imu_mount_offset_deg": 0.0,
    },
}

RUN = 0
RECOVER_ONLY = 1
HALTED = 2
MODE_NAMES = ("run", "recover_only", "halted")

_SIGNAL_PERIOD_MS = 2000
_BEEP_MS = 150
_BEEP_GAP_MS = 150
_BEEPS = 3
_LED_HALF_PERIOD_MS = 250
_REPORT_EVERY_MS = 10000
_RECOVER_BEEP_EVERY_MS = 1000
_RECOVER_BEEP_MS = 60
_REPL_FEED_MS = 200  # watchdog feeds from the timer once at the REPL (WDT: 1 s)


def read_manifest(path=MANIFEST_PATH):
    """(manifest, None), or (None, reason) when it is missing or unreadable."""
    import json

    try:
        with open(path) as f:
            return json.load(f), None
    except OSError as err:
        return None, "files: %s cannot be read (%r): deploy with `make flash`" % (path, err)
    except ValueError as err:
        return None, "files: %s is not valid JSON (%r)" % (path, err)


def make_board(manifest=None):
    """The board named in the manifest (boards/<name>.py), else board.py's."""
    name = manifest.get("board") if isinstance(manifest, dict) else None
    if name:
        module_name = "boards." + name
        __import__(module_name)
        return sys.modules[module_name].Board()
    import board  # written by the deploy tool: from boards.<name> import *

    return board.Board()


def load_config(config):
    """(Program, Limits, Table) from a config dict; ConfigError names the key."""
    return (Program(config.get("program", {})), Limits(config.get("limits", {})),
            Table(config.get("table", {})))


def motor_off(board):
    """Every motor output to off, whichever bridge the board has."""
    enable = getattr(board, "motor_enable", None)
    if enable is not None:
        enable.value(0)
    board.motor_pwm.duty_u16(0)
    retract = getattr(board, "motor_pwm_retract", None)
    if retract is not None:
        retract.duty_u16(0)


class App:
    """What runs after boot: the controller (RUN), the controller until home
    (RECOVER_ONLY), or the halt loop (HALTED). `tick()` is one 10 ms step."""

    def __init__(self, board, controller, mode, reasons, selftest=None, table=None):
        self.board = board
        self.home_mdeg = table.home_mdeg if table is not None else None
        self.selftest = selftest  # the SelfTestResult (None if config failed first)
        self.controller = controller
        self.mode = mode
        self.reasons = list(reasons)
        clock = board.clock
        self._clock = clock
        self._start_ms = clock.ticks_ms()
        self._reported_ms = self._start_ms
        if mode == RUN:
            print("boot: self-test passed; running")
        else:
            self._report()

    @property
    def mode_name(self):
        return MODE_NAMES[self.mode]

    def _report(self):
        if self.mode == RECOVER_ONLY:
            print("boot: SELF-TEST FAILED; bringing the table home, then halting:")
        else:
            print("boot: SELF-TEST FAILED; actuator off, no sessions:")
        for reason in self.reasons:
            print("  - " + reason)

    def tick(self):
        if self.mode == HALTED:
            self._halted_tick()
            return
        controller = self.controller
        controller.tick()
        if self.mode == RUN:
            return
        state = controller.session.state
        if state == S.HOME or state == S.SAFE_STOP:
            controller.drive.stop()
            self.mode = HALTED
            print("boot: table home (%s); halting" % controller.state_name)
            self._report()
            return
        t = self._clock.ticks_diff(self._clock.ticks_ms(), self._start_ms)
        self.board.led.value(1)
        self.board.buzzer.value(1 if t % _RECOVER_BEEP_EVERY_MS < _RECOVER_BEEP_MS else 0)

    def _halted_tick(self):
        board = self.board
        clock = self._clock
        motor_off(board)
        now = clock.ticks_ms()
        t = clock.ticks_diff(now, self._start_ms)
        phase = t % _SIGNAL_PERIOD_MS
        beep_slot = _BEEP_MS + _BEEP_GAP_MS
        beep = phase < _BEEPS * beep_slot and phase % beep_slot < _BEEP_MS
        board.buzzer.value(1 if beep else 0)
        board.led.value((t // _LED_HALF_PERIOD_MS) & 1)
        if clock.ticks_diff(now, self._reported_ms) >= _REPORT_EVERY_MS:
            self._reported_ms = now
            self._report()
        if board.wdt is not None:
            board.wdt.feed()

    def run(self):
        """The board's main loop; an exception ends it. Ctrl-C (KeyboardInterrupt)
        stops the motor, hands the watchdog to a timer and returns (REPL)."""
        try:
            self._loop()
        except KeyboardInterrupt:
            while True:  # a second Ctrl-C inside must not leave the watchdog unfed
                try:
                    self.stop_for_repl()
                    return
                except KeyboardInterrupt:
                    pass

    def last_angle_mdeg(self):
        """The last angle estimate (controller, else self-test), or None."""
        if self.controller is not None:
            return self.controller.estimator.angle_mdeg
        result = self.selftest
        if result is not None and result.accel_angle_deg is not None:
            return int(result.accel_angle_deg * 1000)
        return None

    def stop_for_repl(self):
        """Motor, buzzer and LED off; the watchdog fed by a timer from now on."""
        board = self.board
        controller = self.controller
        if controller is not None:
            controller.drive.stop()
        motor_off(board)
        board.buzzer.value(0)
        board.led.value(0)
        timer = getattr(board, "repl_timer", None)
        if timer is None:
            timer = board.deadman_timer
        if board.wdt is not None:
            timer.init(mode=timer.PERIODIC, period=_REPL_FEED_MS, callback=self._repl_feed)
        print("main: interrupted (Ctrl-C): motor off, watchdog fed by a timer; REPL")
        angle = self.last_angle_mdeg()
        home = self.home_mdeg
        if angle is None or home is None:
            print("main: WARNING: table angle unknown; check that it is at home")
        elif abs(angle - home) > S.HOME_TOLERANCE_MDEG:
            print("main: WARNING: table at %.1f deg, not at home (%.1f deg): stopped there"
                  % (angle / 1000, home / 1000))

    def _repl_feed(self, _timer=None):
        controller = self.controller
        if controller is not None:
            controller.drive.check_deadman()
        self.board.wdt.feed()

    def _loop(self):
        if self.mode == RUN:
            try:
                self.controller.run()
            finally:
                motor_off(self.board)  # the watchdog resets the board next
        clock = self._clock
        next_ms = clock.ticks_add(clock.ticks_ms(), L.TICK_MS)
        while True:
            self.tick()
            wait = clock.ticks_diff(next_ms, clock.ticks_ms())
            if wait > 0:
                clock.sleep_ms(wait)
            next_ms = clock.ticks_add(next_ms, L.TICK_MS)


def boot(board, config=None, manifest=None, read_file_hash=None, manifest_error=None):
    """Self-test `board` and decide what runs; returns the App (not yet running)."""
    motor_off(board)
    try:
        program, limits, table = load_config(DEFAULT_CONFIG if config is None else config)
        imu_class = imu_driver(board_imu_type(board))[0]
    except (ConfigError, ValueError) as err:
        return App(board, None, HALTED, ["config: %s" % err])
    imu = imu_class(board.i2c, board.imu_addr)
    result = run_selftest(board, imu, table, manifest, read_file_hash)
    if manifest_error:
        result.fail(manifest_error)
    if result.ok:
        mode = RUN
    elif result.recovery_ok and away_from_home(result, table):
        mode = RECOVER_ONLY
    else:
        mode = HALTED
    controller = None
    if mode != HALTED:
        try:
            controller = Controller(board, program, limits, table)
        except OSError as err:
            result.fail("imu: the controller could not start it (%r)" % (err,))
            mode = HALTED
    return App(board, controller, mode, result.reasons, result, table)


def main(board=None, manifest_path=MANIFEST_PATH):
    manifest, manifest_error = read_manifest(manifest_path)
    if board is None:
        board = make_board(manifest)
    boot(board, manifest=manifest, manifest_error=manifest_error).run()


if __name__ == "__main__":
    main()
