"""One session's figures, collected inside the control tick without allocating.

    rec = SessionRecorder(board.clock)          # once, at start-up
    rec.start(now_ms, program)                  # the tick a session starts
    rec.update(now_ms, angle_mdeg)              # every tick while it runs
    record = rec.finish(now_ms, "completed", ("imu_lost",), boot=7, start_s=None)
    SessionLog().append(record)                 # after the session, outside the tick

`start` and `update` allocate nothing (ints only, the sample buffer made in
`__init__`, every attribute created there) and keep every int inside 31
bits (|x| <= 2**30 - 1), so they may run in the control tick of a 32-bit
board. `finish` builds the record dict (firmware/session_log.py documents
its fields): allocation is fine there, it runs once the session is over.

Time: intervals are `clock.ticks_diff(now, last)` (ticks wrap at 2**30), a
negative one counts as 0. The duration and the time inverted are sums of
those intervals, saturating at about 6 days. The time inverted counts an
interval when the angle at its end is above 0 (head below feet).

Samples: the angle at the first update at or after every 5000 ms from the
start (the first at the start), as int16 decidegrees (rounded half up,
clamped to +-3276.7 deg) in an array("h") of `capacity` (400: 33 min; a
session is at most 30 min, 361 samples). Samples past the capacity are not
kept (`dropped` counts them).
"""

from array import array

from micropython import const

from firmware.session_log import ENDED, RECORD_VERSION

SAMPLE_MS = const(5000)
CAPACITY = const(400)
_ELAPSED_CAP_MS = const(0x20000000)  # 2**29 ms (6.2 days): sums stop growing here
_NO_PEAK = const(-0x3FFFFFFF)
_MDEG_MAX = const(3276700)  # int16 decidegrees
_MDEG_MIN = const(-3276700)

# Program attributes (firmware/config.py Program) -> record keys, with their scale.
_PROGRAM_FIELDS = (
    ("target_mdeg", "target_angle_deg", 1000),
    ("hold_ms", "hold_s", 1000),
    ("rock_amplitude_mdeg", "rock_amplitude_deg", 1000),
    ("rock_period_ms", "rock_period_s", 1000),
    ("rock_cycles", "rock_cycles", 1),
    ("descent_rate_mdps", "descent_rate_dps", 1000),
    ("return_rate_mdps", "return_rate_dps", 1000),
    ("rest_mdeg", "rest_angle_deg", 1000),
    ("rest_ms", "rest_s", 1000),
)


def program_dict(program):
    """The program as the record's dict: a dict is copied; a config.Program
    (or any object with its attributes) is converted to deg, s and deg/s."""
    if program is None:
        return {}
    if isinstance(program, dict):
        return dict(program)
    out = {}
    for attr, key, scale in _PROGRAM_FIELDS:
        if hasattr(program, attr):
            value = getattr(program, attr)
            out[key] = value if scale == 1 else value / scale
    return out


class SessionRecorder:
    """Peak angle, time inverted, duration and a 5 s angle series of one session."""

    def __init__(self, clock, capacity=CAPACITY):
        if not isinstance(capacity, int) or not 1 <= capacity <= 10000:
            raise ValueError("capacity must be an int in 1 .. 10000, got %r" % (capacity,))
        self._clock = clock
        self.capacity = capacity
        self.samples = array("h", bytes(2 * capacity))  # decidegrees
        self.active = False
        self.program = None
        self.start_ms = 0
        self.n_samples = 0
        self.dropped = 0
        self.peak_mdeg = _NO_PEAK
        self.inverted_ms = 0
        self.elapsed_ms = 0
        self.angle_mdeg = 0
        self._last_ms = 0
        self._next_sample_ms = 0

    def start(self, now_ms, program):
        """A session starts now. Allocates nothing (program is only referenced)."""
        self.active = True
        self.program = program
        self.start_ms = now_ms
        self._last_ms = now_ms
        self.n_samples = 0
        self.dropped = 0
        self.peak_mdeg = _NO_PEAK
        self.inverted_ms = 0
        self.elapsed_ms = 0
        self.angle_mdeg = 0
        self._next_sample_ms = 0

    def _advance(self, now_ms, angle_mdeg):
        # Account the interval since the last call; angle_mdeg is the angle at its end.
        dt = self._clock.ticks_diff(now_ms, self._last_ms)  # in [-2**29, 2**29)
        self._last_ms = now_ms
        if dt <= 0:
            return
        if self.elapsed_ms < _ELAPSED_CAP_MS:
            self.elapsed_ms += dt  # < 2**29 + 2**29
        if angle_mdeg > 0 and self.inverted_ms < _ELAPSED_CAP_MS:
            self.inverted_ms += dt  # < 2**29 + 2**29

    def update(self, now_ms, angle_mdeg):
        """Every control tick during the session. Allocates nothing."""
        if not self.active:
            return
        if angle_mdeg > _MDEG_MAX:
            angle_mdeg = _MDEG_MAX
        elif angle_mdeg < _MDEG_MIN:
            angle_mdeg = _MDEG_MIN
        self._advance(now_ms, angle_mdeg)
        self.angle_mdeg = angle_mdeg
        if angle_mdeg > self.peak_mdeg:
            self.peak_mdeg = angle_mdeg
        # A late tick may owe several samples: each gets the angle now.
        while self.elapsed_ms >= self._next_sample_ms:
            if self.n_samples < self.capacity:
                self.samples[self.n_samples] = (angle_mdeg + 50) // 100  # |.| <= 32767
                self.n_samples += 1
            elif self.dropped < _ELAPSED_CAP_MS:
                self.dropped += 1
            if self._next_sample_ms >= _ELAPSED_CAP_MS:
                break
            self._next_sample_ms += SAMPLE_MS  # <= 2**29 + 5000

    def finish(self, now_ms, ended, fault_names=(), boot=None, start_s=None):
        """End the session: the record dict for SessionLog.append (allocates).

        ended: one of session_log.ENDED. fault_names: the faults latched during
        the session (empty names are left out). boot: the boot counter or
        None. start_s: the start in seconds since 1970 if the clock is set.
        The time since the last update counts, at the last angle.
        """
        if not self.active:
            raise ValueError("finish() without start(): no session is being recorded")
        if ended not in ENDED:
            raise ValueError("ended must be one of %s, got %r" % (", ".join(ENDED), ended))
        self._advance(now_ms, self.angle_mdeg)
        self.active = False
        faults = [name for name in fault_names if name]
        series = [self.samples[i] / 10 for i in range(self.n_samples)]
        peak = None if self.peak_mdeg == _NO_PEAK else round(self.peak_mdeg / 1000, 2)
        return {
            "v": RECORD_VERSION,
            "boot": boot,
            "start_s": start_s,
            "start_ms": self.start_ms,
            "program": program_dict(self.program),
            "peak_angle_deg": peak,
            "inverted_s": round(self.inverted_ms / 1000, 2),
            "duration_s": round(self.elapsed_ms / 1000, 2),
            "ended": ended,
            "faults": faults,
            "angle_series_deg": series,
        }
