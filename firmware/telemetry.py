"""Telemetry: one compact, versioned, checksummed line per report on the serial console.

    @T1,<ticks_ms>,<STATE>,<angle_mdeg>,<rate_mdps>,<button>,<current_ma>,<fault>,<duty>*<XX>

- ``@T1``: the marker and protocol version (a host parser refuses others);
- ``ticks_ms``: the board's ticks_ms() (wraps at 2**30);
- ``STATE``: a name from firmware/session.py STATE_NAMES;
- ``angle_mdeg``, ``rate_mdps``: the estimate, mdeg and mdeg/s (signed);
- ``button``: 1 held (both contacts agree), 0 released;
- ``current_ma``: actuator current in mA (signed);
- ``fault``: the latched fault's name, ``-`` for none;
- ``duty``: commanded duty in 1/10000 (-10000 .. 10000, + = head-down);
- ``XX``: XOR of every byte after ``@`` and before ``*``, two uppercase hex
  digits (as NMEA does);
- the line ends with ``\\n``. Fields never contain ``,``, ``*`` or spaces.

`TelemetryFormatter.format` writes a line into a bytearray made once in
``__init__`` and returns its length: digits come from integer arithmetic,
names are encoded to bytes at construction, nothing is allocated, so it may
run in the control tick. Send it without a copy: ``stream.write(fmt.buf, n)``
(MicroPython streams take a length), or ``fmt.write(stream, n)``.

An int field outside +-(2**30 - 1) is clamped to that range (the small-int
range of a 32-bit board). A state or fault number with no name in the
tuples the formatter was given is written as ``?`` (the host parser then
reports an unknown state, or shows the fault as ``?``): the tick never raises.
"""

from micropython import const

VERSION = const(1)
_INT_MAX = const(0x3FFFFFFF)
_INT_DIGITS = const(11)  # "-1073741823"
_FIELDS_FIXED = const(16)  # "@T1" + 8 commas + "*XX" + "\n" + button digit
_HEX = b"0123456789ABCDEF"
_MARK = b"@T1"
_NONE = b"-"
_UNKNOWN = b"?"


def _encode_names(names, what):
    out = []
    for name in names:
        b = name.encode() if name else _NONE
        for c in b:
            if c <= 0x20 or c >= 0x7F or c in b",*@":
                raise ValueError(
                    "%s name %r: only printable ASCII without space , * @ is allowed" % (what, name)
                )
        out.append(b)
    return tuple(out)


class TelemetryFormatter:
    """Formats telemetry lines into `self.buf` (see the module doc)."""

    def __init__(self, state_names, fault_names):
        self._states = _encode_names(state_names, "state")
        self._faults = _encode_names(fault_names, "fault")
        longest = 1
        for b in self._states + self._faults:
            if len(b) > longest:
                longest = len(b)
        # five ints (ticks, angle, rate, current, duty), two names, the rest fixed
        self.buf = bytearray(_FIELDS_FIXED + 5 * _INT_DIGITS + 2 * longest)
        self.n = 0  # length of the last line

    def _put_int(self, pos, value):
        buf = self.buf
        if value > _INT_MAX:
            value = _INT_MAX
        elif value < -_INT_MAX:
            value = -_INT_MAX
        if value < 0:
            buf[pos] = 0x2D  # "-"
            pos += 1
            value = -value
        start = pos
        while True:  # digits backwards, then reversed in place
            buf[pos] = 0x30 + value % 10
            pos += 1
            value //= 10
            if value == 0:
                break
        i = start
        j = pos - 1
        while i < j:
            c = buf[i]
            buf[i] = buf[j]
            buf[j] = c
            i += 1
            j -= 1
        return pos

    def _put_name(self, pos, names, index):
        buf = self.buf
        if 0 <= index < len(names):
            name = names[index]
        else:
            name = _UNKNOWN
        for i in range(len(name)):
            buf[pos + i] = name[i]
        return pos + len(name)

    def format(self, ticks_ms, state, angle_mdeg, rate_mdps, button, current_ma, fault, duty):
        """One line into self.buf; returns its length (also in self.n). No allocation.

        state, fault: indexes into the name tuples given at construction
        (fault 0 = none, written "-"); button: truthy = held.
        """
        buf = self.buf
        buf[0] = 0x40  # "@"
        buf[1] = 0x54  # "T"
        buf[2] = 0x30 + VERSION
        buf[3] = 0x2C  # ","
        pos = self._put_int(4, ticks_ms)
        buf[pos] = 0x2C
        pos = self._put_name(pos + 1, self._states, state)
        buf[pos] = 0x2C
        pos = self._put_int(pos + 1, angle_mdeg)
        buf[pos] = 0x2C
        pos = self._put_int(pos + 1, rate_mdps)
        buf[pos] = 0x2C
        buf[pos + 1] = 0x31 if button else 0x30
        buf[pos + 2] = 0x2C
        pos = self._put_int(pos + 3, current_ma)
        buf[pos] = 0x2C
        pos = self._put_name(pos + 1, self._faults, fault)
        buf[pos] = 0x2C
        pos = self._put_int(pos + 1, duty)
        x = 0
        for i in range(1, pos):
            x ^= buf[i]
        buf[pos] = 0x2A  # "*"
        buf[pos + 1] = _HEX[x >> 4]
        buf[pos + 2] = _HEX[x & 15]
        buf[pos + 3] = 0x0A  # "\n"
        self.n = pos + 4
        return self.n

    def write(self, stream, n=-1):
        """Write the last line (or its first n bytes) to a MicroPython stream, no copy."""
        if n < 0:
            n = self.n
        return stream.write(self.buf, n)
