"""VirtualClock: MicroPython ticks semantics (30-bit wrap), integer time, timers."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.clock import VirtualClock
from sim.peripherals import SimTimer

PERIOD = 2**30
HALF = 2**29


# Reference: the MicroPython documentation's rules, written independently of
# the implementation (explicit signed wrap, no masking trick).
def reference_ticks_diff(ticks1, ticks2):
    diff = (ticks1 - ticks2) % PERIOD
    if diff >= HALF:
        diff -= PERIOD
    return diff


def reference_ticks_add(ticks, delta):
    if delta <= -HALF or delta >= HALF:
        raise OverflowError("ticks interval overflow")
    return (ticks + delta) % PERIOD


ticks_values = st.integers(min_value=0, max_value=PERIOD - 1)
legal_deltas = st.integers(min_value=-HALF + 1, max_value=HALF - 1)


def test_default_start_is_five_seconds_before_the_ticks_ms_wrap():
    clock = VirtualClock()
    assert clock.ticks_ms() == PERIOD - 5000
    assert clock.elapsed_us == 0


def test_ticks_ms_runs_across_the_wrap_and_ticks_diff_sees_through_it():
    clock = VirtualClock()
    before = clock.ticks_ms()
    clock.advance_us(6_000_000)
    after = clock.ticks_ms()
    assert after == 1000  # wrapped
    assert after < before
    assert clock.ticks_diff(after, before) == 6000
    assert clock.ticks_diff(before, after) == -6000


def test_ticks_us_wraps_every_2_pow_30_us_and_diff_stays_right():
    clock = VirtualClock(start_ms=0)
    clock.advance_us(PERIOD - 10)
    before = clock.ticks_us()
    assert before == PERIOD - 10
    clock.advance_us(25)
    assert clock.ticks_us() == 15
    assert clock.ticks_diff(clock.ticks_us(), before) == 25


@given(total_us=st.integers(min_value=0, max_value=2**45))
def test_ticks_are_derived_from_the_integer_microsecond_counter(total_us):
    clock = VirtualClock(start_ms=0)
    clock.advance_us(total_us)
    assert clock.elapsed_us == total_us
    assert clock.ticks_ms() == (total_us // 1000) % PERIOD
    assert clock.ticks_us() == total_us % PERIOD


@given(a=ticks_values, b=ticks_values)
def test_ticks_diff_matches_the_micropython_rule(a, b):
    clock = VirtualClock()
    diff = clock.ticks_diff(a, b)
    assert diff == reference_ticks_diff(a, b)
    assert -HALF <= diff < HALF


@given(t=ticks_values, delta=legal_deltas)
def test_ticks_add_matches_the_rule_and_round_trips_through_ticks_diff(t, delta):
    clock = VirtualClock()
    later = clock.ticks_add(t, delta)
    assert later == reference_ticks_add(t, delta)
    assert 0 <= later < PERIOD
    assert clock.ticks_diff(later, t) == delta
    assert clock.ticks_diff(t, later) == -delta


@pytest.mark.parametrize("delta", [HALF, -HALF, PERIOD, -PERIOD - 1, 2**40])
def test_ticks_add_refuses_deltas_ticks_diff_cannot_return(delta):
    with pytest.raises(OverflowError):
        VirtualClock().ticks_add(0, delta)


def test_ticks_add_refuses_a_float_delta_like_micropython():
    with pytest.raises(TypeError):
        VirtualClock().ticks_add(0, 1.5)


@given(steps=st.lists(st.integers(min_value=0, max_value=HALF // 1000 - 1), max_size=20))
def test_elapsed_time_measured_with_ticks_ms_is_exact_across_the_wrap(steps):
    clock = VirtualClock()
    for step_ms in steps:
        start = clock.ticks_ms()
        clock.advance_us(step_ms * 1000)
        assert clock.ticks_diff(clock.ticks_ms(), start) == step_ms


def test_a_million_10ms_steps_accumulate_without_float_drift():
    clock = VirtualClock()
    for _ in range(1_000_000):
        clock.advance_us(10_000)
    assert clock.elapsed_us == 10_000_000_000
    assert type(clock.elapsed_us) is int
    assert clock.ticks_ms() == (PERIOD - 5000 + 10_000_000) % PERIOD


def test_sleep_advances_time_and_negative_sleep_does_not():
    clock = VirtualClock()
    clock.sleep_ms(12)
    clock.sleep_us(345)
    assert clock.elapsed_us == 12_345
    clock.sleep_ms(-5)
    clock.sleep_us(-5)
    assert clock.elapsed_us == 12_345


@pytest.mark.parametrize("call", ["sleep_ms", "sleep_us", "advance_us"])
def test_float_durations_are_refused(call):
    with pytest.raises(TypeError):
        getattr(VirtualClock(), call)(1.0)


def test_time_cannot_go_backwards():
    with pytest.raises(ValueError):
        VirtualClock().advance_us(-1)


def test_start_ms_sets_the_first_ticks_ms():
    assert VirtualClock(start_ms=1234).ticks_ms() == 1234


def test_timers_fire_in_time_order_at_their_due_times():
    clock = VirtualClock()
    fired = []
    fast = SimTimer(clock)
    slow = SimTimer(clock)
    fast.init(
        mode=SimTimer.PERIODIC,
        period=3,
        callback=lambda t: fired.append(("fast", clock.elapsed_us)),
    )
    slow.init(
        mode=SimTimer.ONE_SHOT,
        period=5,
        callback=lambda t: fired.append(("slow", clock.elapsed_us)),
    )
    clock.advance_us(10_000)  # one call: the timers still fire at their own instants
    assert fired == [
        ("fast", 3000),
        ("slow", 5000),
        ("fast", 6000),
        ("fast", 9000),
    ]
    assert clock.elapsed_us == 10_000


@given(chunks=st.lists(st.integers(min_value=1, max_value=7000), min_size=1, max_size=30))
def test_timer_firing_times_do_not_depend_on_how_time_is_chopped(chunks):
    clock = VirtualClock()
    fired = []
    timer = SimTimer(clock)
    timer.init(mode=SimTimer.PERIODIC, period=2, callback=lambda t: fired.append(clock.elapsed_us))
    for chunk in chunks:
        clock.advance_us(chunk)
    total = sum(chunks)
    assert fired == list(range(2000, total + 1, 2000))


def test_a_sleep_inside_the_firmware_also_runs_due_timers():
    clock = VirtualClock()
    fired = []
    SimTimer(clock).init(
        mode=SimTimer.ONE_SHOT, period=4, callback=lambda t: fired.append(clock.ticks_ms())
    )
    clock.sleep_ms(10)
    assert fired == [(PERIOD - 5000 + 4) % PERIOD]


def test_us_until_next_timer_reports_the_gap_or_none():
    clock = VirtualClock()
    assert clock.us_until_next_timer() is None
    timer = SimTimer(clock)
    timer.init(mode=SimTimer.ONE_SHOT, period=7, callback=None)
    clock.advance_us(2500)
    assert clock.us_until_next_timer() == 4500
    timer.deinit()
    assert clock.us_until_next_timer() is None
