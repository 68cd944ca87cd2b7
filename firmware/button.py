"""The handheld hold-to-invert button, read through two contacts.

One normally-open contact (reads 0 while pressed) and one normally-closed
contact (reads 1 while pressed), both with pull-ups. The button counts as held
only when both agree that it is pressed: a broken cable, an open circuit, a
welded contact or any disagreement reads as released. A press must be stable
for PRESS_CONFIRM_MS before it counts; a release counts at the first sample.

`released` is the positive opposite: both contacts agree that the button is
up, stably for PRESS_CONFIRM_MS. Only that arms a new session, so a button
held since power-up, or a broken cable, never starts one.
"""

from micropython import const

PRESS_CONFIRM_MS = const(50)
_LEVEL_UNKNOWN = const(0)  # contacts disagree: neither pressed nor up
_LEVEL_PRESSED = const(1)
_LEVEL_UP = const(2)


class HoldButton:
    def __init__(self, pin_no, pin_nc, clock):
        self._no = pin_no
        self._nc = pin_nc
        self._clock = clock
        self.held = False
        self.released = False
        self.contacts_disagree = False
        self._since_ms = 0
        self._level = _LEVEL_UNKNOWN

    def update(self, now_ms):
        no_closed = self._no.value() == 0
        nc_open = self._nc.value() == 1
        self.contacts_disagree = no_closed != nc_open
        if self.contacts_disagree:
            level = _LEVEL_UNKNOWN
        elif no_closed:
            level = _LEVEL_PRESSED
        else:
            level = _LEVEL_UP
        if level != self._level:
            self._level = level
            self._since_ms = now_ms
            self.held = False  # a release (or any change) counts at once
            self.released = False
        elif self._clock.ticks_diff(now_ms, self._since_ms) >= PRESS_CONFIRM_MS:
            self.held = level == _LEVEL_PRESSED
            self.released = level == _LEVEL_UP
