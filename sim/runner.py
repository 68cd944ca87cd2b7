"""Run a scenario: the real firmware against the simulated table, tick by tick.

One virtual clock (sim/clock.py) drives everything: each control period the
plant integrates with the duty the firmware last commanded, the clock
advances (firing the H-bridge dead-man timer when due), scenario events are
applied, then the firmware runs one tick and a trace row is recorded.

Watchdog: when the board's watchdog has gone unfed past its timeout the chip
resets: the board's outputs and timers go to their reset state
(SimBoard.cpu_reset), the firmware boots again (a new Controller, STARTUP)
on the same board, and the plant keeps its state. The trace marks that tick
with firmware_reset = 1. A hung CPU (SimBoard.hang_cpu, the `loop_hang`
fault) runs no ticks, so it feeds nothing: the dead-man timer stops the motor
and the watchdog resets the firmware. An exception escaping the firmware's
tick is handled as on the board (Controller.tick_guarded: motor stopped, the
loop halts, the watchdog resets it). A power loss (SimBoard.power_loss)
runs nothing until power returns; then the firmware boots (firmware_reset).
"""

from firmware import limits as L
from firmware.config import Limits, Table
from firmware.controller import Controller, session_need_ms
from firmware.session import Session
from firmware.therapy import session_too_long
from sim import faults
from sim.board import SimBoard
from sim.clock import VirtualClock
from sim.scenario import ScenarioError

TRACE_COLUMNS = (
    "t_s",
    "state",
    "button_held",
    "angle_deg",
    "angle_est_deg",
    "rate_dps",
    "actuator_cmd",
    "actuator_current_a",
    "fault",
    "accel_dps2",
    "target_deg",
    "plan_deg",
    "head_down_permitted",
    "injected_fault",
    "firmware_reset",  # 1 on the first tick after a watchdog reset (a new boot)
)


class Trace:
    """Columns of a run, one list per column (cheap to append, easy to check)."""

    def __init__(self):
        self.columns = {name: [] for name in TRACE_COLUMNS}

    def __len__(self):
        return len(self.columns["t_s"])

    def __getitem__(self, name):
        return self.columns[name]


def firmware_table_config(board):
    """The table section the firmware would read from config.json on this board."""
    data = dict(board.table_geometry)
    data["imu_mount_offset_deg"] = board.imu_mount_offset_mdeg / 1000.0
    return Table(data)


def program_refusal(program, limits, table):
    """Why the firmware refuses every session of `program` on `table` (its
    duty budget, even full, never covers one), or None: the controller's
    own arithmetic, for the simulator and `config check` to say it up front."""
    session = Session(program, limits, table, VirtualClock(), L.DEFAULT_ACCEL_MDPS2,
                      L.DEFAULT_JERK_MDPS3)
    need_ms = session_need_ms(session, program)
    if need_ms <= table.duty_on_max_ms:
        return None
    return session_too_long(need_ms, table.duty_on_max_ms)


class Run:
    """A scenario in progress; `step()` advances one control tick."""

    def __init__(self, scenario, limits=None, board=None):
        self.scenario = scenario
        self.board = board or SimBoard(scenario.user, seed=scenario.seed)
        self.limits = limits or Limits()
        self.table = firmware_table_config(self.board)
        refusal = program_refusal(scenario.program, self.limits, self.table)
        if refusal is not None:  # the table would wait at home for ever
            raise ScenarioError(refusal)
        self.controller = self._boot()
        self.trace = Trace()
        self.t_ms = 0
        self.injected = []
        self.firmware_resets = 0
        self.exceptions = []  # escaped the tick (each halted the loop)
        self._reset_now = False
        self._was_off = False
        self._events = list(scenario.events)
        # A scenario with a [profile] runs its sessions from the therapy
        # profile, as main.py does on the board (sim/profile_driver.py).
        self.profile_driver = None
        if getattr(scenario, "profile", None) is not None:
            from sim.profile_driver import ProfileDriver
            self.profile_driver = ProfileDriver(scenario)

    def _boot(self):
        return Controller(self.board, self.scenario.program, self.limits, self.table)

    def _apply_events(self):
        while self._events and self._events[0].at_ms <= self.t_ms:
            ev = self._events.pop(0)
            if ev.button == "press":
                self.board.press_button()
            elif ev.button == "release":
                self.board.release_button()
            else:
                faults.inject(self.board, ev.fault)
                self.injected.append(ev.fault)

    def step_until_state(self, name, within_ms):
        """Step until the controller is in state `name`; AssertionError
        naming where it is instead if that takes longer than `within_ms`."""
        until_ms = self.t_ms + within_ms
        while self.controller.state_name != name:
            if self.t_ms >= until_ms:
                raise AssertionError("not %s within %d ms: state %s, fault %s" % (
                    name, within_ms, self.controller.state_name, self.controller.fault_name))
            self.step()

    def step(self):
        board = self.board
        board.step(L.TICK_MS * 1000)
        self.t_ms += L.TICK_MS
        self._apply_events()
        self._reset_now = False
        powered = not board.powered_off
        if powered and (board.wdt.expired or self._was_off):
            # Watchdog reset or power back: the chip starts from reset
            # (outputs off, timers stopped, a hang ended) and the firmware
            # boots again; the table stays where it is.
            self.firmware_resets += 1
            self._reset_now = True
            board.cpu_reset()
            self.controller = self._boot()
        self._was_off = not powered
        if powered and not board.cpu_hung and not self.controller.tick_guarded():
            self.exceptions.append(repr(self.controller.error))
            board.halt_cpu()
        if self.profile_driver is not None:
            self.profile_driver.between_ticks(self)
        self._record()

    def _record(self):
        c = self.trace.columns
        ctl = self.controller
        plant = self.board.plant
        c["t_s"].append(self.t_ms / 1000.0)
        c["state"].append(ctl.state_name)
        c["button_held"].append(1 if self.board.button_pressed else 0)
        c["angle_deg"].append(plant.angle_deg)
        c["angle_est_deg"].append(ctl.estimator.angle_mdeg / 1000.0)
        c["rate_dps"].append(plant.rate_dps)
        c["actuator_cmd"].append(ctl.drive.duty / 10000.0)
        c["actuator_current_a"].append(plant.current_a)
        c["fault"].append(ctl.fault_name)
        c["accel_dps2"].append(plant.accel_dps2)
        c["target_deg"].append(ctl.session.target_mdeg / 1000.0)
        c["plan_deg"].append(ctl.profile.pos_mdeg / 1000.0)
        c["head_down_permitted"].append(1 if ctl.head_down_permitted else 0)
        c["injected_fault"].append(self.injected[-1] if self.injected else "")
        c["firmware_reset"].append(1 if self._reset_now else 0)

    def run(self):
        end_ms = self.scenario.duration_ms
        while self.t_ms < end_ms:
            self.step()
        return self.trace

    def finish_blind_return(self):
        """A blind return still under way runs on to its own end (HOME, or
        SAFE_STOP at its timeout): without a pot it creeps at a fraction of
        a deg/s, longer than a scenario's timeline may allow."""
        limit_ms = self.t_ms + self.controller.blind.timeout_ms + 10_000
        while self.controller.state_name == "BLIND_RETURN" and self.t_ms < limit_ms:
            self.step()
        return self.trace


def run_scenario(scenario, limits=None):
    """Run a whole scenario on CPython; returns the Trace."""
    return Run(scenario, limits=limits).run()


_ROW_FORMAT = "%.3f,%s,%d,%.4f,%.4f,%.4f,%.4f,%.3f,%s,%.3f,%.4f,%.4f,%d,%s,%d\n"


def write_csv(trace, path):
    """The trace contract: a header row, then one row per control tick."""
    cols = [trace.columns[name] for name in TRACE_COLUMNS]
    with open(path, "w") as f:
        f.write(",".join(TRACE_COLUMNS) + "\n")
        f.writelines(_ROW_FORMAT % row for row in zip(*cols, strict=True))
