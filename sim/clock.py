"""Virtual time for the simulator: MicroPython `time` semantics, stepped by the sim.

The firmware is handed a `VirtualClock` where it would use the `time` module on
the board. Time moves only when the simulator calls `advance_us` (or the
firmware sleeps), SITL style, so runs are deterministic and much faster than
real time. Time is kept as an integer microsecond counter: a float seconds
accumulator would drift and lose resolution over a long run.
"""

# MicroPython on a 32-bit port: ticks are 30-bit (small ints are 31-bit signed).
TICKS_PERIOD = 1 << 30
TICKS_MASK = TICKS_PERIOD - 1
TICKS_HALF_PERIOD = TICKS_PERIOD // 2

# Default start: ticks_ms() is this many ms before its wrap, so every run
# crosses the 2**30 wrap early and wrap bugs show up in ordinary tests.
START_MS_BEFORE_WRAP = 5000


def _require_int(value):
    # mp_obj_get_int() accepts int and bool, refuses float and the rest.
    if type(value) is not int and type(value) is not bool:
        raise TypeError(f"can't convert {type(value).__name__} to int")
    return int(value)


class VirtualClock:
    """One simulated clock: `ticks_ms/ticks_us/ticks_diff/ticks_add/sleep_ms/sleep_us`
    exactly as MicroPython's `time` module on a 32-bit port, plus the
    simulator-side `advance_us` (which also fires due `SimTimer` callbacks, in
    time order, at their due times) and `elapsed_us`.
    """

    def __init__(self, start_ms=None):
        if start_ms is None:
            start_ms = TICKS_PERIOD - START_MS_BEFORE_WRAP
        start_ms = _require_int(start_ms)
        if start_ms < 0:
            raise ValueError("start_ms must be >= 0")
        self._start_us = start_ms * 1000
        self._now_us = self._start_us  # total µs; ticks are derived from it
        self._timers = []  # armed SimTimer objects, fired by advance_us

    # --- MicroPython `time` API ---------------------------------------------

    def ticks_ms(self):
        return (self._now_us // 1000) & TICKS_MASK

    def ticks_us(self):
        return self._now_us & TICKS_MASK

    def ticks_diff(self, ticks1, ticks2):
        # Same formula as extmod/modtime.c: signed result in [-2**29, 2**29).
        return ((ticks1 - ticks2 + TICKS_HALF_PERIOD) & TICKS_MASK) - TICKS_HALF_PERIOD

    def ticks_add(self, ticks, delta):
        delta = _require_int(delta)
        # modtime.c refuses deltas ticks_diff could not give back unchanged.
        if not -TICKS_HALF_PERIOD < delta < TICKS_HALF_PERIOD:
            raise OverflowError("ticks interval overflow")
        return (ticks + delta) & TICKS_MASK

    def sleep_ms(self, ms):
        ms = _require_int(ms)
        if ms > 0:  # MicroPython does not wait for a negative delay
            self.advance_us(ms * 1000)

    def sleep_us(self, us):
        us = _require_int(us)
        if us > 0:
            self.advance_us(us)

    # --- simulator side -------------------------------------------------------

    @property
    def elapsed_us(self):
        """Microseconds since this clock was created (simulator only)."""
        return self._now_us - self._start_us

    def advance_us(self, us):
        """Move time forward by `us`, firing due timers at their due times."""
        us = _require_int(us)
        if us < 0:
            raise ValueError("time cannot go backwards")
        target_us = self._now_us + us
        timers = self._timers
        while timers:
            # Few timers: a linear scan beats a heap. min() keeps arming order
            # among timers due at the same instant.
            timer = min(timers, key=_due_us_of)
            due_us = timer._due_us
            if due_us > target_us:
                break
            self._now_us = max(self._now_us, due_us)
            timer._fire()
        self._now_us = max(self._now_us, target_us)

    def us_until_next_timer(self):
        """µs until the earliest armed timer is due (0 if overdue), None if none."""
        if not self._timers:
            return None
        due_us = min(timer._due_us for timer in self._timers)
        return max(0, due_us - self._now_us)

    # Used by SimTimer only.
    def _arm(self, timer):
        if timer not in self._timers:
            self._timers.append(timer)

    def _disarm(self, timer):
        if timer in self._timers:
            self._timers.remove(timer)


def _due_us_of(timer):
    return timer._due_us
