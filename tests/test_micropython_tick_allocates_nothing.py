"""On the real MicroPython interpreter the control tick allocates nothing, in every state.

Floats and big ints are heap objects on MicroPython, and a tick that
allocates eventually runs the garbage collector inside the 10 ms loop; the
firmware is integer fixed point so that it never does. Two independent
checks on the unix port, over sessions that together put the controller in
every state of firmware/session.py for at least MIN_TICKS ticks each:

1. heap_lock: every controller.tick() and every dead-man timer callback runs
   under micropython.heap_lock() (sim/mp/harness.py); an allocation raises
   MemoryError there and the run stops naming the controller state. Blind
   spot: under the lock MicroPython raises an exception without allocating
   (its emergency exception object, no traceback), so an exception raised
   and caught inside the tick passes unseen.
2. replay: the same sessions, recorded, are replayed in a fresh interpreter
   with the collector off and gc.mem_alloc() read around each tick
   (sim/mp/replay.py): every difference must be 0. This sees exceptions too
   (it found the OSError a lost IMU's read raised every tick, 160 bytes,
   during the whole blind return; the controller no longer reads a lost IMU,
   and only the reads that detect the loss may allocate: machine.I2C makes
   the exception object on a board too).

Sessions:
- a full session (descend, hold, rock, rest, return, home), then a release
  mid-descent (EMERGENCY_RETURN);
- power back with the table at +25 deg, then four more power cuts early in
  the way home: each boot spends its settling time in STARTUP, then
  RECOVERING (an accelerometer kept implausible would now latch a fault);
- the IMU lost mid-descent with a broken home switch and no position pot:
  BLIND_RETURN (dead reckoning) until its
  timeout (about 33 min of travel allowance; the blind phase is driven with
  50 ms between ticks, the longest step the firmware integrates, to keep the
  test short), then SAFE_STOP.

And: the whole default scenario runs in a small fixed heap (firmware
precompiled with mpy-cross, -X heapsize=SMALL_HEAP), and the live heap after
it equals the live heap after boot (nothing accumulates).
"""

import collections
import os
import tomllib

import pytest

from firmware.session import STATE_NAMES
from sim.board import SimBoard
from sim.micropython_runtime import MicroPythonError, MicroPythonRun, replay
from sim.scenario import load, parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN_TICKS = 1000
IMU_FAIL_TICKS = 3  # failed IMU reads before the controller declares it lost
# The unix port is 64-bit (every object twice the size it is on the
# RP2040/ESP32). The live heap after boot is 61.6 KB with the safety layer:
# the firmware's modules and objects ~44 KB (mpy-cross -O3), the SITL harness
# ~14 KB (its code native, outside the heap), the interpreter ~3 KB; 3.0 KB
# free at 64K. 63K fails at boot (fragmentation in Controller.__init__): about
# 1 KB of margin (sim/mp/harness.py: Harness.boot).
SMALL_HEAP = "64K"

_SESSION = """
duration_s = {duration}
seed = {seed}
[user]
mass_kg = 80.0
height_m = 1.78
[program]
target_angle_deg = 30.0
hold_s = 15.0
rock_amplitude_deg = {rock}
rock_period_s = 8.0
rock_cycles = 2
rest_s = 5.0
"""


def _scenario(duration, seed, events, rock=5.0):
    text = _SESSION.format(duration=duration, seed=seed, rock=rock)
    for at_s, key, value in events:
        text += '[[event]]\nat_s = %s\n%s = "%s"\n' % (at_s, key, value)
    return parse(tomllib.loads(text), "alloc")


def _full_session(run):
    run.run()


def _startup_then_recovering(run):
    """Four power cuts early in the recovery: each boot spends its settling
    time in STARTUP (an IMU kept bad would now be a latched fault instead)."""
    board = run.board
    for _ in range(4):
        until = run.t_ms + 4000
        while run.t_ms < until:
            run.step()
        board.power_loss(300)
    while run.t_ms < run.scenario.duration_ms:
        run.step()


def _blind_return_to_safe_stop(run):
    board = run.board
    board.home_switch.level_fn = lambda: 0  # broken: never reports home
    while run.t_ms < 40000:  # press, descend, IMU lost at 20 s, 20 s of blind return
        run.step()
    safe_stop = STATE_NAMES.index("SAFE_STOP")
    while run.controller.session.state != safe_stop:
        board.step(40000)  # 50 ms between ticks: the blind return's clock runs 5x
        run.step()
        assert run.t_ms < 3_000_000
    for _ in range(MIN_TICKS + 200):
        run.step()


SESSIONS = {
    "full_session_then_release": (
        _scenario(190.0, 21, [(2.0, "button", "press"), (140.0, "button", "release"),
                              (142.0, "button", "press"), (169.0, "button", "release")]),
        {}, _full_session),
    "startup_then_recovering": (
        _scenario(80.0, 22, []), {"angle_deg": 25.0}, _startup_then_recovering),
    "blind_return_to_safe_stop": (
        _scenario(60.0, 23, [(2.0, "button", "press"), (20.0, "fault", "imu_disconnect")],
                  rock=0.0),
        # No position pot: the blind return is the dead reckoning to the home
        # switch, which times out (with a pot it would come home on the pot).
        {"position_pot": False}, _blind_return_to_safe_stop),
}


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Each session run with heap_lock and recorded, then replayed."""
    tmp = tmp_path_factory.mktemp("alloc")
    results = {}
    for name, (scenario, board_options, drive) in SESSIONS.items():
        board = SimBoard(scenario.user, seed=scenario.seed, **board_options)
        rec = tmp / (name + ".rec")
        error = None
        with open(rec, "wb") as f:
            run = MicroPythonRun(scenario, board=board, heap_lock=True, record=f)
            try:
                drive(run)
            except MicroPythonError as err:
                error = err
            finally:
                run.close()
        sample = None
        if error is None:
            sample = replay(str(rec))
            assert len(sample.alloc) == run.link.ticks_sent
        results[name] = (run.trace, error, sample)
    return results


def test_no_tick_allocates_under_heap_lock(sessions):
    for name, (_trace, error, _sample) in sessions.items():
        assert error is None, "%s: a tick allocated in state %s:\n%s" % (
            name, error.state, error.text)


def test_every_state_was_ticked_thousands_of_times(sessions):
    counts = collections.Counter()
    for trace, _error, _sample in sessions.values():
        counts.update(trace["state"])
    assert set(counts) == set(STATE_NAMES), "covered %s" % sorted(counts)
    thin = {s: n for s, n in counts.items() if n < MIN_TICKS}
    assert not thin, "fewer than %d ticks in %r" % (MIN_TICKS, thin)


def test_replayed_ticks_allocate_zero_bytes(sessions):
    """Except where the IMU read raised: the bus error is an exception object
    made by the I2C layer (machine.I2C on a board). Those are the few ticks
    before the controller declares the IMU lost; after that it is not read."""
    for name, (_trace, error, sample) in sessions.items():
        assert error is None, name
        assert len(sample.alloc) > 1000
        allocating = [(i, STATE_NAMES[sample.state[i]], sample.alloc[i])
                      for i in range(len(sample.alloc))
                      if sample.alloc[i] and not sample.imu_raised[i]]
        assert not allocating, "%s: %d ticks allocated, first (tick, state, bytes): %r" % (
            name, len(allocating), allocating[:5])
        assert sum(sample.imu_raised) <= IMU_FAIL_TICKS, name


def test_default_scenario_in_a_small_heap_leaves_the_live_heap_unchanged():
    scenario = load(os.path.join(ROOT, "scenarios", "default.toml"))
    run = MicroPythonRun(scenario, heapsize=SMALL_HEAP)
    try:
        live_after_boot, _free = run.link.memory()
        while run.t_ms < scenario.duration_ms:
            run.step()
        live_at_end, _free = run.link.memory()
    finally:
        run.close()
    assert run.trace["state"][-1] == "HOME"
    assert {"ROCKING", "EMERGENCY_RETURN"} <= set(run.trace["state"])
    assert live_at_end == live_after_boot
