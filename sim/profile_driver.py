"""The therapy profile in a simulated run: what main.py does on the board.

A scenario with a [profile] section (sim/scenario.py) runs session after
session from that profile. sim/runner.py calls `between_ticks(run)` after
every tick when `scenario.profile` is set; this does what main.py's Therapy
does between ticks on a board, with main.py's own code (Therapy,
SessionWatch) and firmware/therapy.py's rules:

- at boot (the first call, and after every firmware reset: `run.controller`
  is a new object) and whenever a session has ended, the controller gets the
  next program (`run.controller.set_program(Program or None)`; None refuses
  sessions), legal only while it is in STARTUP or HOME;
- when a session ends (the state back at HOME, or SAFE_STOP, after a session
  state) it is recorded in the profile: "fault" if the controller latched a
  fault, "released" if it went through EMERGENCY_RETURN, "completed" if it
  went through RETURNING; a boot away from home (after a reset mid-session)
  is recorded as "power_loss" once the table is home, as on the board;
- at home the decision is renewed every minute of scenario time, so that a
  new day brings sessions back after the daily cap.

The wall clock is scenario time: `scenario.profile_start_s` (from [profile]
start_epoch_s) plus the run's time; None when [profile] clock_set = false.
The profile stays in memory (`driver.profile`); nothing is written.
"""

import main
from firmware.config import Program


class ProfileDriver:
    def __init__(self, scenario, echo=False):
        if scenario.profile is None:
            raise ValueError("ProfileDriver: the scenario has no [profile] section")
        self.start_s = scenario.profile_start_s
        ceiling = scenario.program_ceiling
        self._ceiling_program = Program(ceiling) if ceiling is not None else None
        self.echo = echo
        self.messages = []  # (t_s, line): what main.py would print on the console
        self.records = []  # (t_s, record) of every session recorded
        self.decisions = []  # (t_s, program dict or None, reason) each time it changed
        self._run = None
        self._controller = None
        self.therapy = main.Therapy(None, self._now_s, self._log)
        self.therapy.profile = scenario.profile

    @property
    def profile(self):
        return self.therapy.profile

    def _now_s(self):
        if self.start_s is None or self._run is None:
            return None
        return self.start_s + self._run.t_ms // 1000

    def _t_s(self):
        return self._run.t_ms / 1000.0 if self._run is not None else 0.0

    def _log(self, line):
        self.messages.append((self._t_s(), line))
        if self.echo:
            print("%9.2f s  %s" % (self._t_s(), line))

    def between_ticks(self, run):
        self._run = run
        controller = run.controller
        therapy = self.therapy
        before = (therapy.program, therapy.reason)
        if controller is not self._controller:
            # Boot (or a firmware reset: the board boots again, as main.py).
            self._controller = controller
            therapy.start(controller, self._ceiling_program, run.board.clock)
        else:
            records = therapy.records
            therapy.between_ticks(controller, run.board)
            if therapy.records != records:
                self.records.append((self._t_s(), therapy.profile["history"][-1]))
        if (therapy.program, therapy.reason) != before or not self.decisions:
            self.decisions.append((self._t_s(), therapy.program, therapy.reason))
