"""Boot-time half of the SITL harness (sim/mp/harness.py): the B frame.

Decodes the boot options, builds the board's proxies (first boot) or resets
them (after a watchdog reset), and reads program/limits/table with
firmware/config.py. Imported for one boot and dropped again, like the config
reader: none of this is needed between boots, and in a -X heapsize=64K run
the heap it would hold is the firmware's headroom.
"""

import json
import struct


def configure(h, kinds, sizes):
    """The B frame in h.data: h set up and reset; returns (program, limits,
    table). The frame and its decoded form are gone when this returns.
    `kinds` is the harness's proxy classes (Clock, Pin, PWM, ADC, WDT, Timer, I2C),
    `sizes` its output frame's (fixed part, per PWM) sizes."""
    o = json.loads(h.data)
    h.data = None
    o = _decode(o)
    if h.ctl is None:
        _board(h, o, kinds, sizes)
    _reset(h, o)
    h.heap_lock = o["heap_lock"]
    return _read_config(o)


def _decode(value):
    """Floats travel as 'f:' + the hex of their 8 IEEE bytes: bit-exact.
    Dicts and lists are decoded in place (no second copy at boot)."""
    if isinstance(value, str) and value[:2] == "f:":
        return struct.unpack("<d", bytes(int(value[i:i + 2], 16) for i in range(2, 18, 2)))[0]
    if isinstance(value, dict):
        for k in list(value):
            value[k] = _decode(value[k])
    elif isinstance(value, list):
        for i in range(len(value)):
            value[i] = _decode(value[i])
    return value


class _Values:
    """Attributes only: what firmware/config.py read, without its classes
    (an instance of one would keep the reader's module alive)."""


def _read_config(o):
    """Program, Limits and Table as plain objects: the values the simulator's
    firmware/config.py read (see MicroPythonLink.boot)."""
    out = []
    for key in ("program", "limits", "table"):
        v = _Values()
        for k, x in o[key].items():
            setattr(v, k, x)
        out.append(v)
    return out


def _board(h, o, kinds, sizes):
    """The peripherals, by the names the simulator's board has."""
    for k, v in o["plain"].items():
        setattr(h, k, v)
    for k in o["none"]:
        setattr(h, k, None)
    Clock, Pin, PWM, ADC, WDT, Timer, I2C = kinds
    h.clock = Clock()
    h.i2c = I2C(h)
    h.wdt = WDT()
    h.deadman_timer = Timer()
    h._inputs = [Pin(False) for _ in o["inputs"]]
    h._outputs = [Pin(True) for _ in o["outputs"]]
    h._pwms = [PWM(h) for _ in o["pwms"]]
    h._adcs = [ADC() for _ in o["adcs"]]
    for names, objs in ((o["inputs"], h._inputs), (o["adcs"], h._adcs)):
        for i in range(len(names)):
            setattr(h, names[i], objs[i])
    for i in range(len(o["outputs"])):
        setattr(h, o["outputs"][i][0], h._outputs[i])
    for i in range(len(o["pwms"])):
        setattr(h, o["pwms"][i][0], h._pwms[i])
    if o["pair"]:
        a = getattr(h, o["pair"][0])
        b = getattr(h, o["pair"][1])
        a.partner = b
        b.partner = a
    # The O frame's buffer, allocated once (its size: the PWM count; the
    # layout is harness.py's: `sizes` = (_OUTPUTS_SIZE, _PWM_SIZE)).
    out_size, pwm_size = sizes
    n = out_size + pwm_size * len(h._pwms)
    h._obuf = bytearray(3 + n)
    h._obuf[0] = ord("O")
    h._obuf[1] = n

def _reset(h, o):
    """The board as the simulator has it at boot (after a chip reset:
    outputs off, timer stopped)."""
    for i in range(len(h._outputs)):
        h._outputs[i].out = o["outputs"][i][1]
    for i in range(len(h._pwms)):
        h._pwms[i].f = o["pwms"][i][1]
        h._pwms[i].duty = o["pwms"][i][2]
    for i in range(len(h._inputs)):
        h._inputs[i].level = o["levels"][i]
    for adc in h._adcs:
        adc.value = 0  # the first tick's frame brings the readings
    h.clock.ms = o["ms"]
    h.clock.us = o["us"]
    h.i2c.pending = False
    t = h.deadman_timer
    t.armed = False
    t.callback = None
    h.wdt.feeds = 0
    h.shoot = 0
