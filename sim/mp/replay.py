"""Replay a recorded SITL session in MicroPython, measuring every tick.

    MICROPYPATH=<dir with harness and firmware> micropython [-X heapsize=H] sim/mp/replay.py REC OUT

(sim.micropython_runtime.replay() runs it; bench/tick_micropython.py and
tests/test_micropython_tick_allocates_nothing.py use it.)

REC holds the frames the simulator sent to sim/mp/harness.py during a
session (MicroPythonRun(record=...)); the harness reads them from the file
instead of a pipe, and its answers go nowhere, so the firmware sees exactly
the inputs it saw in the session, with no simulator and no pipe in the way.
Each controller.tick() is timed with time.ticks_us() and bracketed by
gc.mem_alloc() with the automatic collector off (collections run only
between ticks, every 100 ticks), so a non-zero difference is an allocation
inside the tick (less what the harness's I2C forwarding allocated: the
first ticks forward the IMU burst while the simulator learns it; their
time includes that forwarding). gc.mem_alloc() walks the heap's allocation
table, so the replay runs in a small heap (the precompiled firmware needs
little) to keep that walk short. OUT receives one 10-byte record per tick:
u32 microseconds, i32 bytes allocated, u8 state at the start of the tick,
u8 1 if the IMU read raised OSError in it (the bus error a board's
machine.I2C raises, which allocates the exception there as well).
"""

import gc
import struct
import sys
import time

import harness

_RECORD = "<IiBB"  # us, bytes allocated, state, IMU read raised
_RECORD_SIZE = 10
_CHUNK = 1000  # ticks per write
_GC_EVERY = 100  # ticks per garbage collection (the collector is off otherwise)


class _Sink:
    def write(self, data):
        return len(data)


class Replay(harness.Harness):
    def __init__(self, inp, out):
        super().__init__(inp, _Sink())
        self.results = out
        self.chunk = bytearray(_RECORD_SIZE * _CHUNK)
        self.count = 0

    def send(self, kind, payload):
        if kind == "E":  # the harness reports and goes on; a replay stops
            sys.stderr.write(payload.decode())
            raise SystemExit(1)

    def handle(self, kind):
        if kind != "T":
            return super().handle(kind)
        self.tick_inputs(self.data)
        ctl = self.ctl
        state = ctl.session.state
        p0 = self.proxy_alloc
        a0 = gc.mem_alloc()
        t0 = time.ticks_us()
        ctl.tick()
        t1 = time.ticks_us()
        a1 = gc.mem_alloc()
        i = self.count % _CHUNK
        struct.pack_into(_RECORD, self.chunk, i * _RECORD_SIZE, time.ticks_diff(t1, t0),
                         a1 - a0 - (self.proxy_alloc - p0), state, self.i2c.raised)
        self.count += 1
        if i == _CHUNK - 1:
            self.flush()
        elif i % _GC_EVERY == _GC_EVERY - 1:
            gc.collect()
        self.outputs()
        return None

    def flush(self):
        n = self.count % _CHUNK or _CHUNK
        self.results.write(memoryview(self.chunk)[:n * _RECORD_SIZE])
        gc.collect()


def main():
    rec, out = sys.argv[1], sys.argv[2]
    gc.collect()
    gc.disable()  # collections only between ticks (Replay.flush)
    with open(rec, "rb") as f, open(out, "wb") as results:
        r = Replay(f, results)
        r.serve()
        if r.count % _CHUNK:
            r.flush()
    gc.enable()


main()
