"""The firmware's telemetry formatter allocates nothing on the real MicroPython interpreter.

What this protects: TelemetryFormatter.format() and .write() may run in the
control tick. On the unix port both run 3000 times under
micropython.heap_lock() (any allocation raises MemoryError), with values
across every field's range, every state and every fault name the firmware
has, and the lines they print to stdout parse on the host to exactly the
values given (ints clamped to +-(2**30 - 1)). A control run shows the lock
does catch an allocation (slicing the buffer).
"""

import json
import os
import subprocess

import pytest

from firmware.controller import FAULT_NAMES
from firmware.session import STATE_NAMES
from host_tools.telemetry import parse_line
from sim.micropython_runtime import MicroPythonUnavailable, find_micropython

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 3000
INT_MAX = 2**30 - 1

SCRIPT = """
import json, sys, micropython
from firmware.telemetry import TelemetryFormatter
STATES = %(states)r
FAULTS = %(faults)r
N = %(n)d

def value(k, span):
    # deterministic spread over +-span, with the extremes
    if k %% 17 == 0:
        return span
    if k %% 19 == 0:
        return -span
    return (k * 7919 + 104729) %% (2 * span + 1) - span

def run(fmt, out):
    longest = 0
    for k in range(N):
        n = fmt.format((k * 1000003) & 0x3FFFFFFF, k %% len(STATES), value(k, 0x3FFFFFFF),
                       value(k + 1, 200000), k & 1, value(k + 2, 40000), k %% len(FAULTS),
                       value(k + 3, 10000))
        fmt.write(out)
        if n > longest:
            longest = n
    return longest

fmt = TelemetryFormatter(STATES, FAULTS)
out = sys.stdout.buffer
longest = 0
micropython.heap_lock()
try:
    longest = run(fmt, out)
finally:
    micropython.heap_unlock()
caught = False
micropython.heap_lock()
try:
    out.write(fmt.buf[:fmt.n])
except MemoryError:
    caught = True
finally:
    micropython.heap_unlock()
print(json.dumps({"longest": longest, "buf": len(fmt.buf), "caught": caught}))
"""


def _value(k, span):
    if k % 17 == 0:
        return span
    if k % 19 == 0:
        return -span
    return (k * 7919 + 104729) % (2 * span + 1) - span


def test_format_and_write_allocate_nothing_and_parse_on_the_host():
    try:
        exe = find_micropython()
    except MicroPythonUnavailable as err:
        pytest.skip(str(err))
    script = SCRIPT % {"states": STATE_NAMES, "faults": FAULT_NAMES, "n": N}
    proc = subprocess.run([exe, "-c", script], cwd=ROOT, capture_output=True,
                          env=dict(os.environ, MICROPYPATH=ROOT + ":.frozen"),
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr).decode(errors="replace")[-3000:]
    lines = proc.stdout.split(b"\n")
    summary = json.loads(lines[-2])
    assert summary["caught"] is True  # the lock does see an allocation
    assert summary["longest"] <= summary["buf"]
    telemetry = [line + b"\n" for line in lines[:N]]
    assert len(telemetry) == N
    for k, line in enumerate(telemetry):
        rec = parse_line(line)
        assert rec.ticks_ms == (k * 1000003) & INT_MAX
        assert rec.state == STATE_NAMES[k % len(STATE_NAMES)]
        assert rec.angle_mdeg == _value(k, INT_MAX)
        assert rec.rate_mdps == _value(k + 1, 200000)
        assert rec.button == bool(k & 1)
        assert rec.current_ma == _value(k + 2, 40000)
        assert rec.fault == (FAULT_NAMES[k % len(FAULT_NAMES)] or None)
        assert rec.duty == _value(k + 3, 10000)
