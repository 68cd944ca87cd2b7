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
3. passed: run the controller (`App.run()`: one tick every 10 ms). A
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

Configuration (`main()` on a board): config.json is read by
firmware/device_config.py (sections table, limits, program; every key
checked). A missing or bad file leaves the firmware on conservative defaults
(the gentlest program: 15 deg, short hold, no rocking; limits never above the
hard caps of firmware/limits.py): the console says so, naming the key, and
while the table runs the LED flashes twice every 2 s (see "LED codes").
`boot(board, config=...)` takes a dict of the same shape instead (strict: a
bad one halts; tests); without either, DEFAULT_CONFIG below.

Therapy (`main()`): profile.json, the user's profile (firmware/therapy.py),
decides each session's program: the progression from 15 deg, at most two
sessions a day when the board's clock is set, and none at all until the
medical-clearance answers are recorded and clear. config.json's program is
the ceiling: the profile's program is tightened to it (therapy.cap_program).
Between ticks, App follows the session (SessionWatch, no allocation); when
one ends (back at HOME) it is recorded in the profile, which is written
safely (a temporary file, then a rename) while the motor is off, and the
controller gets the next program (`Controller.set_program`, None = no
session). A boot away from home (a session cut by a power loss or a reset)
is recorded as "power_loss" once the table is home. A missing or bad
profile means no sessions; the file is never overwritten then.

Session log (`main()`): when SessionWatch sees a session end (at HOME or
SAFE_STOP, the motor off) its record is appended to sessions.log
(firmware/session_log.py: one CRC-checked line, power-loss safe, rotated
into sessions.1.log), and the profile's progression is fed from the same
record (`therapy_record`). While a session runs, a SessionRecorder
(firmware/session_record.py) follows it after every tick without allocating:
peak angle, time inverted, the angle every 5 s. How it ended: "completed",
"released" (let go: the progression does not advance), "fault" (faults: the
latched fault's name; "duty_budget" when the actuator's duty budget cut the
session short), "power_loss" (a boot away from home: recorded once the
table is home, as the profile does; nothing is written at a session's start,
while the table moves). `python -m host_tools logs pull` reads the log.

Telemetry (`main()`): in RUN, one line every 100 ms on the serial console,
`@T1,<ticks_ms>,<STATE>,<angle_mdeg>,<rate_mdps>,<button>,<current_ma>,
<fault>,<duty>*<XX>` (firmware/telemetry.py, written from its buffer without
allocating); `python -m host_tools monitor` shows it.

LED codes while the controller runs (short flashes every 2 s; a latched
fault's alarm, driven by the controller, takes precedence): 1 flash = no
session available (therapy: see the console for why), 2 flashes = config.json
problem (conservative defaults), 3 = both. A failed self-test blinks at 2 Hz
with beeps (above).
"""

import sys

from firmware import limits as L
from firmware import session as S
from firmware.config import ConfigError, Limits, Program, Table
from firmware.controller import Controller, board_imu_type, imu_driver
from firmware.selftest import away_from_home, run_selftest
from firmware.supervisor import FAULT_NAMES

MANIFEST_PATH = "manifest.json"  # relative: the board's root is the current folder
CONFIG_PATH = "config.json"
PROFILE_PATH = "profile.json"
SESSION_LOG_DIR = "."  # sessions.log (firmware/session_log.py) in the board's root

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
_FLASH_MS = 100  # LED codes while running: short flashes...
_FLASH_SLOT_MS = 300  # ...one every 300 ms...
_CODE_PERIOD_MS = 2000  # ...repeated every 2 s
_CODE_NO_SESSION = 1
_CODE_CONFIG = 2
BUDGET_FAULT = "duty_budget"  # in a record's faults: the duty budget cut the session short
_TELEMETRY_MS = 100  # one telemetry line every 100 ms (10 Hz) while the controller runs
_THERAPY_CHECK_MS = 60000  # refused for today: the wall clock is looked at once a minute
# The board's clock counts as set from this date on (2024-01-01): an RTC that
# was never set reads 2000 or 2021 after a power-up.
CLOCK_SET_AFTER_S = 1704067200
_EPOCH_2000_S = 946684800  # ports whose time.time() counts from 2000


def wall_clock_s(board):
    """Seconds since 1970 from the board's clock (its `time`), or None when it
    has none or it was never set. Start-up / end-of-session code."""
    clock = board.clock
    read = getattr(clock, "time", None)
    if read is None:
        return None
    try:
        t = int(read())
        gmtime = getattr(clock, "gmtime", None)
        if gmtime is not None and gmtime(0)[0] == 2000:
            t += _EPOCH_2000_S
    except (OSError, ValueError, TypeError, OverflowError):
        return None
    return t if t >= CLOCK_SET_AFTER_S else None


def read_device_config(path=CONFIG_PATH):
    """(program, limits, table, problems) from config.json, never raising on
    a bad file (firmware/device_config.py); the reader is dropped after."""
    from firmware import device_config

    try:
        return device_config.read_device_config(path)
    finally:
        device_config.drop()


class SessionWatch:
    """Follows the controller between ticks and notices a session ending.

    `update()` runs after every tick: it allocates nothing unless the state
    changed (the SessionRecorder it drives while a session runs allocates
    nothing either). When a session that went head-down is over (back at
    HOME, or SAFE_STOP) it returns its session-log record
    (firmware/session_log.py: start, program, peak angle, time inverted, the
    5 s angle series, how it ended, faults; plus "target_angle_deg", the
    controller's hold target); `therapy_record()` turns it into the record
    firmware/therapy.py takes.
    ended: "fault" if the controller latched a fault (faults: its name), else
    "released" if it went through EMERGENCY_RETURN (the user let go), else
    "fault" with faults ["duty_budget"] if the actuator's duty budget cut it
    short (the controller counts those cuts: `budget.cuts`), else
    "completed" if it went through RETURNING. A boot that found the table
    away from home (STARTUP -> RECOVERING: a session cut by a power
    loss or a reset; the log has no record of it, as nothing is written while
    the table moves) is returned as "power_loss" once home: its figures are
    those of the way home. `wall_clock()`: epoch s or None.
    """

    def __init__(self, clock, wall_clock):
        from firmware.session_record import SessionRecorder

        self._clock = clock
        self._wall_clock = wall_clock
        self.recorder = SessionRecorder(clock)
        self.program = None  # the program in force (a dict): it goes into the record
        self.state = -1
        self.active = False
        self.recovering = False
        self.released = False
        self.returned = False
        self.budget_cuts = 0  # the controller's count when the session began
        self.fault = 0  # the first fault latched during the session
        self.start_ms = 0
        self.start_s = None
        self.peak_mdeg = 0
        self.target_mdeg = 0

    def set_program(self, program):
        """The program in force (a dict, None = no session): the next record's."""
        self.program = program

    def update(self, controller):
        state = controller.session.state
        if self.active or self.recovering:
            angle = controller.estimator.angle_mdeg
            if self.active and angle > self.peak_mdeg:
                self.peak_mdeg = angle
            if self.fault == 0:
                self.fault = controller.fault
            self.recorder.update(self._clock.ticks_ms(), angle)
        if state == self.state:
            return None
        prev = self.state
        self.state = state
        return self._changed(controller, prev, state)

    def _begin(self, controller, program):
        self.start_ms = self._clock.ticks_ms()
        self.start_s = self._wall_clock()
        angle = controller.estimator.angle_mdeg
        self.peak_mdeg = angle
        self.target_mdeg = controller.session.hold_target_mdeg
        self.released = False
        self.returned = False
        self.budget_cuts = controller.budget.cuts
        self.fault = controller.fault
        self.recorder.start(self.start_ms, program)
        self.recorder.update(self.start_ms, angle)

    def _changed(self, controller, prev, state):
        if state == S.DESCENDING and prev == S.HOME:
            self._begin(controller, self.program)
            self.active = True
            self.recovering = False
        elif state == S.RECOVERING and not self.active:
            self._begin(controller, None)  # the lost session's program is not known
            self.recovering = True
        elif state == S.RETURNING:
            self.returned = True
        elif state == S.EMERGENCY_RETURN:
            self.released = True
        elif state == S.HOME or state == S.SAFE_STOP:
            fault = self.fault or controller.fault
            if self.active:
                self.active = False
                faults = (FAULT_NAMES[fault],) if fault else ()
                if fault:
                    ended = "fault"
                elif self.released:
                    ended = "released"
                elif controller.budget.cuts != self.budget_cuts:
                    ended = "fault"
                    faults = (BUDGET_FAULT,)
                elif self.returned:
                    ended = "completed"
                else:
                    ended = "fault"
                return self._record(ended, faults)
            if self.recovering:
                self.recovering = False
                return self._record("power_loss", (FAULT_NAMES[fault],) if fault else ())
        return None

    def _record(self, ended, faults):
        record = self.recorder.finish(self._clock.ticks_ms(), ended, faults, None, self.start_s)
        record["target_angle_deg"] = self.target_mdeg / 1000
        return record


def therapy_record(record):
    """The session-log record (SessionWatch) as firmware/therapy.py takes it:
    its keys only (therapy.RECORD_KEYS); a power loss has no known duration.
    The peak is kept within therapy's -90 .. 90 deg (None, never expected:
    -90, which advances nothing)."""
    peak = record["peak_angle_deg"]
    if peak is None or peak < -90.0:
        peak = -90.0
    elif peak > 90.0:
        peak = 90.0
    return {
        "ended": record["ended"],
        "duration_s": record["duration_s"] if record["ended"] != "power_loss" else 0.0,
        "peak_angle_deg": peak,
        "start_s": record["start_s"],
        "target_angle_deg": record["target_angle_deg"],
    }


def _write_json_safely(path, data):
    """Write `data` as JSON to a temporary file (streamed: no big string),
    then rename it over `path`: a power loss leaves the old file or the new
    one, never half of one."""
    import json
    import os

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    try:
        os.rename(tmp, path)
    except OSError:  # a file system whose rename does not replace
        try:
            os.remove(path)
        except OSError:
            pass
        os.rename(tmp, path)


class Therapy:
    """profile.json on the board: which program the next session gets, and
    each session recorded when it ends (firmware/therapy.py has the rules and
    is imported only for that, then dropped)."""

    def __init__(self, path=PROFILE_PATH, wall_clock=None, log=print, log_dir=None):
        self.path = path  # None: kept in RAM only (the simulator's ProfileDriver)
        self.log_dir = log_dir  # the session log's folder; None: no session log
        self.log_error = None  # the last session-log append's error, if it failed
        self.wall_clock = wall_clock if wall_clock is not None else _no_clock
        self.log = log
        self.profile = None  # the validated profile, or None (no sessions)
        self.problem = None  # why there is no usable profile
        self.ceiling = None  # config.json's program (a dict): the profile's is capped to it
        self.program = None  # the program in force (a dict), None = no session
        self.reason = "not decided yet"  # why there is no session
        self.records = 0
        self.save_error = None
        self.watch = None
        self.recheck_s = None  # a refusal ends at this wall-clock time (the next day)
        self._next_check_ms = 0
        self._pending = False

    def load(self, text=None):
        """Read and check the profile (text: instead of the file)."""
        from firmware import therapy

        try:
            if text is None and self.path is not None:
                text = self._read()
            if text is None:
                self.profile = None
                self.problem = ("no %s on the board: no sessions until the medical-clearance "
                                "questions are answered (python -m host_tools profile new, "
                                "then profile push)" % self.path)
                return
            import json

            try:
                data = json.loads(text)
            except ValueError as err:
                self.profile = None
                self.problem = "%s is not valid JSON (%s): no sessions" % (self.path, err)
                return
            try:
                self.profile = therapy.validate_profile(data)
                self.problem = None
            except therapy.ProfileError as err:
                self.profile = None
                self.problem = "%s: %s: no sessions" % (self.path, err)
        finally:
            therapy.drop()

    def _read(self):
        for name in (self.path, self.path + ".tmp"):  # .tmp: a rename cut short
            try:
                with open(name) as f:
                    return f.read()
            except OSError:
                pass
        return None

    def decide(self, now_s):
        """The next session's program (dict) or None; sets program/reason,
        and when a refusal can end by itself (the next day: recheck_s)."""
        self.recheck_s = None
        if self.profile is None:
            self.program = None
            self.reason = self.problem
            return None
        from firmware import therapy

        try:
            program, reason = therapy.session_program(self.profile, now_s)
            if program is not None:
                program = therapy.cap_program(program, self.ceiling)
            else:
                self.recheck_s = therapy.next_change_s(self.profile, now_s)
        finally:
            therapy.drop()
        self.program = program
        self.reason = reason
        return program

    def start(self, controller, ceiling_program, clock):
        """At boot, with the controller in STARTUP: the first decision.
        ceiling_program: config.json's Program (None: no ceiling)."""
        if ceiling_program is not None:
            from firmware import therapy

            try:
                self.ceiling = therapy.program_dict(ceiling_program)
            finally:
                therapy.drop()
        self.watch = SessionWatch(clock, self.wall_clock)
        self.apply(controller, True)

    def apply(self, controller, announce=False):
        """Decide again and hand the controller the result (at HOME/STARTUP)."""
        before = self.program
        before_reason = self.reason
        program = self.decide(self.wall_clock())
        checked = None
        if program is not None:
            try:
                checked = Program(program)
            except ConfigError as err:  # never expected: refuse rather than guess
                self.program = program = None
                self.reason = "program refused by the firmware's reader: %s" % err
        controller.set_program(checked)  # None: no session
        if checked is not None and not controller.program_ok:
            self.program = program = None
            self.reason = _session_too_long(controller)
        if self.watch is not None:
            self.watch.set_program(program)  # the next session's record names it
        if announce or program != before or (program is None and self.reason != before_reason):
            self.report()

    def report(self):
        if self.program is None:
            self.log("therapy: NO SESSION: %s" % self.reason)
        else:
            p = self.program
            self.log("therapy: next session %.0f deg, hold %.0f s, rocking %.0f deg, down %.1f / "
                  "up %.1f deg/s, rest %.0f s" % (
                      p["target_angle_deg"], p["hold_s"], p["rock_amplitude_deg"],
                      p["descent_rate_dps"], p["return_rate_dps"], p["rest_s"]))

    def record(self, record):
        """One session into the profile, saved; True if the profile changed."""
        if self.profile is None:
            return False
        from firmware import therapy

        try:
            self.profile = therapy.record_session(self.profile, record, self.wall_clock())
        except therapy.ProfileError as err:
            self.log("therapy: session not recorded: %s" % err)
            return False
        finally:
            therapy.drop()
        self.records += 1
        self.log("therapy: session recorded: %s, peak %.1f deg, %.0f s"
                 % (record["ended"], record["peak_angle_deg"], record["duration_s"]))
        if self.path is None:
            return True
        try:
            _write_json_safely(self.path, self.profile)
            self.save_error = None
        except OSError as err:  # kept in RAM: the caps still hold until a reset
            self.save_error = err
            self.log("therapy: %s could not be written (%r)" % (self.path, err))
        return True

    def append_log(self, record):
        """The session's record appended to the session log (firmware/session_log.py:
        power-loss safe, rotating); True if written. Never raises: a full or
        broken file system costs the log line, not the session's bookkeeping."""
        if self.log_dir is None:
            return False
        from firmware.session_log import SessionLog

        try:
            SessionLog(self.log_dir).append(record)
        except (OSError, ValueError) as err:
            self.log_error = err
            self.log("log: session not written to the session log (%r)" % (err,))
            return False
        self.log_error = None
        self.log("log: session written (%s%s)" % (
            record["ended"], ", " + ", ".join(record["faults"]) if record["faults"] else ""))
        return True

    def between_ticks(self, controller, board):
        """After each tick (RUN): no allocation unless a session just ended,
        or, refused for today, once a minute at home (the wall clock)."""
        watch = self.watch
        if watch is None:  # start() not called: nothing to follow
            return
        record = watch.update(controller)
        if record is not None:
            if board.wdt is not None:
                board.wdt.feed()  # the file writes may take a while
            self.append_log(record)
            if board.wdt is not None:
                board.wdt.feed()
            self.record(therapy_record(record))
            self._pending = True
        if controller.session.state != S.HOME:
            return
        if self._pending:
            self._pending = False
            self.apply(controller)
            return
        if self.recheck_s is None:
            return
        # Refused for today: once a minute, is it tomorrow yet?
        clock = board.clock
        now = clock.ticks_ms()
        if clock.ticks_diff(now, self._next_check_ms) >= 0:
            self._next_check_ms = clock.ticks_add(now, _THERAPY_CHECK_MS)
            wall = self.wall_clock()
            if wall is not None and wall >= self.recheck_s:
                self.apply(controller)


def _no_clock():
    return None


class _TextConsole:
    """CPython's console for telemetry: sys.stdout (looked up at each write, so
    a test's capture sees it) taking MicroPython's `write(buf, n)`."""

    def write(self, buf, n=-1):
        if n < 0:
            n = len(buf)
        sys.stdout.write(bytes(buf[:n]).decode())
        return n


def telemetry_stream():
    """Where telemetry lines go: the console's byte stream on MicroPython
    (`write(buf, n)` sends the formatter's buffer without a copy), an adapter
    over sys.stdout on CPython."""
    if sys.implementation.name == "micropython":
        return getattr(sys.stdout, "buffer", sys.stdout)
    return _TextConsole()


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
    """Every motor output to off, whichever bridge the board has, and the
    actuator power relay open (the controller closes it when it starts)."""
    power = getattr(board, "motor_power", None)
    if power is not None:
        power.value(0)
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

    def __init__(self, board, controller, mode, reasons, selftest=None, table=None,
                 config_problems=(), therapy=None, telemetry=False):
        self.board = board
        self.home_mdeg = table.home_mdeg if table is not None else None
        self.selftest = selftest  # the SelfTestResult (None if config failed first)
        self.controller = controller
        self.mode = mode
        self.reasons = list(reasons)
        self.config_problems = list(config_problems)  # config.json: on conservative defaults
        self.therapy = therapy  # a Therapy (main() on a board), or None
        self.overruns = 0
        clock = board.clock
        self._clock = clock
        self._start_ms = clock.ticks_ms()
        self._reported_ms = self._start_ms
        self._code_ms = self._start_ms
        self._code_shown = False
        self._reported_fault = 0
        # Telemetry (firmware/telemetry.py): one line every _TELEMETRY_MS in RUN.
        self.telemetry = None
        self._telemetry_out = None
        self._telemetry_ms = self._start_ms
        if telemetry and controller is not None:
            from firmware.telemetry import TelemetryFormatter

            self.telemetry = TelemetryFormatter(S.STATE_NAMES, FAULT_NAMES)
            self._telemetry_out = telemetry_stream()
        if mode == RUN:
            print("boot: self-test passed; running")
        else:
            self._report()
        self.report_config()

    def report_config(self):
        if not self.config_problems:
            return
        print("config: PROBLEM in config.json; running on conservative defaults (15 deg, "
              "no rocking, slow; limits within the hard caps):")
        for problem in self.config_problems:
            print("  - config: " + problem)

    def led_code(self):
        """Flashes of the running LED code: 0 none, 1 no session, 2 config, 3 both."""
        code = _CODE_CONFIG if self.config_problems else 0
        therapy = self.therapy
        if therapy is not None and therapy.program is None:
            code += _CODE_NO_SESSION
        return code

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
            self._after_tick(controller)
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

    def _after_tick(self, controller):
        """RUN: the console on a fault, the therapy watch, the LED code.
        Allocates nothing unless something changed."""
        fault = controller.fault
        if fault != self._reported_fault:
            self._reported_fault = fault
            print("FAULT %s: state %s, angle %d mdeg"
                  % (controller.fault_name, controller.state_name,
                     controller.estimator.angle_mdeg))
        if self.telemetry is not None:
            self._telemetry_tick(controller)
        if self.therapy is not None:
            self.therapy.between_ticks(controller, self.board)
        if fault:
            return  # the controller's alarm has the LED
        code = self.led_code()
        if code == 0:
            if self._code_shown:
                self._code_shown = False
                self.board.led.value(0)
            return
        self._code_shown = True
        clock = self._clock
        now = clock.ticks_ms()
        t = clock.ticks_diff(now, self._code_ms)
        if t >= _CODE_PERIOD_MS or t < 0:
            self._code_ms = now
            t = 0
        on = t < code * _FLASH_SLOT_MS and t % _FLASH_SLOT_MS < _FLASH_MS
        self.board.led.value(1 if on else 0)

    def _telemetry_tick(self, controller):
        """One telemetry line when _TELEMETRY_MS have passed. No allocation
        (the formatter's buffer, written with its length: no copy)."""
        tele = self.telemetry
        if tele is None:
            return
        clock = self._clock
        now = clock.ticks_ms()
        late = clock.ticks_diff(now, self._telemetry_ms)
        if late < _TELEMETRY_MS:
            return
        if late < 2 * _TELEMETRY_MS:
            self._telemetry_ms = clock.ticks_add(self._telemetry_ms, _TELEMETRY_MS)
        else:  # far behind (or the first line): start again from now
            self._telemetry_ms = now
        est = controller.estimator
        tele.format(now, controller.session.state, est.angle_mdeg, est.rate_mdps,
                    controller.button.held, controller.current_ma, controller.fault,
                    controller.drive.duty)
        tele.write(self._telemetry_out)

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
        """One tick every TICK_MS. An exception in RUN (the control tick, the
        therapy bookkeeping) switches the motor off and ends main.py: the
        unfed watchdog resets the board, and the boot recovers home."""
        clock = self._clock
        next_ms = clock.ticks_add(clock.ticks_ms(), L.TICK_MS)
        try:
            while True:
                self.tick()
                wait = clock.ticks_diff(next_ms, clock.ticks_ms())
                if wait > 0:
                    clock.sleep_ms(wait)
                elif self.mode == RUN:
                    self.overruns += 1
                next_ms = clock.ticks_add(next_ms, L.TICK_MS)
        except Exception:
            if self.controller is not None:
                self.controller.drive.stop()
            motor_off(self.board)  # the watchdog resets the board next
            raise


def _session_too_long(controller):
    """Why `controller` refuses its program (firmware/therapy.py words it)."""
    from firmware import therapy

    try:
        return therapy.session_too_long(controller.budget.need_ms, controller.budget.on_max_ms)
    finally:
        therapy.drop()


def boot(board, config=None, manifest=None, read_file_hash=None, manifest_error=None,
         device_config=None, therapy=None, telemetry=False):
    """Self-test `board` and decide what runs; returns the App (not yet running).

    config: a config dict (strict: a bad one halts, naming the key), else
    device_config: (program, limits, table, problems) from
    read_device_config() (problems: running on its conservative defaults),
    else DEFAULT_CONFIG. therapy: a Therapy whose profile decides each
    session's program (None: the config's program, as given). telemetry:
    print telemetry lines on the console (RUN, 10 Hz).
    """
    motor_off(board)
    problems = []
    try:
        if config is None and device_config is not None:
            program, limits, table, problems = device_config
        else:
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
    if mode != RUN:
        therapy = None  # no sessions anyway
    elif therapy is None and controller is not None and not controller.program_ok:
        print("config: NO SESSION: " + _session_too_long(controller))
    app = App(board, controller, mode, result.reasons, result, table, problems, therapy,
              telemetry)
    if therapy is not None:
        therapy.start(controller, program, board.clock)
    return app


def start(board=None, manifest_path=MANIFEST_PATH, config_path=CONFIG_PATH,
          profile_path=PROFILE_PATH, wall_clock=None, log_dir=SESSION_LOG_DIR, telemetry=True):
    """Everything main() does before the loop: the App, ready to run.

    wall_clock: a function giving epoch seconds or None (default: the
    board's clock, wall_clock_s)."""
    manifest, manifest_error = read_manifest(manifest_path)
    if board is None:
        board = make_board(manifest)
    motor_off(board)
    loaded = read_device_config(config_path)
    therapy = Therapy(profile_path, wall_clock or _board_wall_clock(board), log_dir=log_dir)
    therapy.load()
    return boot(board, manifest=manifest, manifest_error=manifest_error, device_config=loaded,
                therapy=therapy, telemetry=telemetry)


def main(board=None, manifest_path=MANIFEST_PATH):
    start(board, manifest_path).run()


def _board_wall_clock(board):
    def now_s():
        return wall_clock_s(board)

    return now_s


if __name__ == "__main__":
    main()
