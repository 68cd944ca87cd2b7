"""The hold button counts as held only when both contacts agree it is pressed."""

from hypothesis import given
from hypothesis import strategies as st

from firmware.button import PRESS_CONFIRM_MS, HoldButton
from sim.clock import VirtualClock
from sim.peripherals import SimPin


class Contacts:
    """Levels the two input pins read (pull-ups: an open circuit reads 1)."""

    def __init__(self):
        self.no = 1
        self.nc = 0

    def press(self):
        self.no, self.nc = 0, 1

    def release(self):
        self.no, self.nc = 1, 0


def make():
    clock = VirtualClock()
    c = Contacts()
    pin_no = SimPin("no", SimPin.IN, SimPin.PULL_UP, level_fn=lambda: c.no)
    pin_nc = SimPin("nc", SimPin.IN, SimPin.PULL_UP, level_fn=lambda: c.nc)
    return clock, c, HoldButton(pin_no, pin_nc, clock)


def run_ms(clock, button, ms):
    for _ in range(ms // 10):
        clock.advance_us(10000)
        button.update(clock.ticks_ms())


def test_press_counts_after_confirmation_and_release_at_once():
    clock, c, b = make()
    c.press()
    button_held_early = False
    for _ in range(PRESS_CONFIRM_MS // 10 - 1):
        clock.advance_us(10000)
        b.update(clock.ticks_ms())
        button_held_early |= b.held
    assert not button_held_early
    run_ms(clock, b, 30)
    assert b.held
    c.release()
    b.update(clock.ticks_ms())
    assert not b.held


@given(no=st.integers(0, 1), nc=st.integers(0, 1), hold_ms=st.integers(0, 500))
def test_only_no_closed_and_nc_open_reads_held(no, nc, hold_ms):
    """Broken wire (1,1), welded or disagreeing contacts (0,0) read released."""
    clock, c, b = make()
    c.no, c.nc = no, nc
    run_ms(clock, b, hold_ms + 100)
    assert b.held == (no == 0 and nc == 1)
    assert b.contacts_disagree == (no == nc)


def test_broken_cable_while_held_reads_released():
    clock, c, b = make()
    c.press()
    run_ms(clock, b, 200)
    assert b.held
    c.no, c.nc = 1, 1  # both wires open: pull-ups win
    b.update(clock.ticks_ms())
    assert not b.held


@given(no=st.integers(0, 1), nc=st.integers(0, 1))
def test_only_both_contacts_up_reads_released(no, nc):
    """`released` (which arms a session) needs both contacts to agree the button is up."""
    clock, c, b = make()
    c.no, c.nc = no, nc
    run_ms(clock, b, 200)
    assert b.released == (no == 1 and nc == 0)
    assert not (b.held and b.released)


def test_press_from_power_up_never_reads_released():
    clock, c, b = make()
    c.press()
    for _ in range(20):
        clock.advance_us(10000)
        b.update(clock.ticks_ms())
        assert not b.released
