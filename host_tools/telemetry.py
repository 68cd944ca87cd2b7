"""Host side of the telemetry line protocol (firmware/telemetry.py writes it).

    @T1,<ticks_ms>,<STATE>,<angle_mdeg>,<rate_mdps>,<button>,<current_ma>,<fault>,<duty>*<XX>

`parse_line(text)` returns a `TelemetryRecord` or raises `TelemetryError`
whose message names what was wrong: not a telemetry line, unknown version,
missing or malformed checksum, checksum mismatch, wrong field count, a bad
integer (naming the field), a value out of its range (naming the range), an
unknown state. Any str or bytes input gives a record or a TelemetryError,
never another exception (fuzzed in tests/test_telemetry_protocol_fuzz.py).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import sim  # noqa: F401  (the `micropython` stand-in the firmware's imports need on CPython)
from firmware.session import STATE_NAMES

MARK = "@T"
VERSION = 1
FIELDS = ("ticks_ms", "state", "angle_mdeg", "rate_mdps", "button", "current_ma", "fault", "duty")
INT_MAX = 2**30 - 1
DUTY_MAX = 10000
# Longest line accepted: the firmware's longest is well under 200 bytes.
MAX_LINE = 512

_INT = re.compile(r"(0|-?[1-9][0-9]{0,9})\Z")  # canonical: as the firmware writes
# printable ASCII but space , * @ (what the firmware's formatter accepts)
_NAME = re.compile(r"[!-)+\-.-?A-~]{1,64}\Z")
_HEX2 = re.compile(r"[0-9A-F]{2}\Z")


class TelemetryError(ValueError):
    """A line that is not valid telemetry; the message says what is wrong."""


class TelemetryRecord(NamedTuple):
    ticks_ms: int
    state: str
    angle_mdeg: int
    rate_mdps: int
    button: bool
    current_ma: int
    fault: str | None  # None: no fault ("-" on the wire)
    duty: int  # 1/10000, + = head-down

    @property
    def angle_deg(self) -> float:
        return self.angle_mdeg / 1000.0

    @property
    def rate_dps(self) -> float:
        return self.rate_mdps / 1000.0

    @property
    def current_a(self) -> float:
        return self.current_ma / 1000.0


def checksum(payload: bytes) -> int:
    """XOR of the bytes between '@' and '*'."""
    x = 0
    for c in payload:
        x ^= c
    return x


def is_telemetry(text: str | bytes) -> bool:
    """The line claims to be telemetry (it starts with "@T"): parse it, or report it."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text[:2]) == b"@T"
    return isinstance(text, str) and text.startswith(MARK)


def _text(line: str | bytes | bytearray) -> str:
    if isinstance(line, (bytes, bytearray, memoryview)):
        try:
            return bytes(line).decode("ascii")
        except UnicodeDecodeError as e:
            bad = bytes(line)[e.start]
            raise TelemetryError("not ASCII (byte 0x%02x at %d)" % (bad, e.start)) from None
    if not isinstance(line, str):
        raise TelemetryError("expected str or bytes, got %s" % type(line).__name__)
    if not line.isascii():
        raise TelemetryError("not ASCII")
    return line


def _int(name: str, text: str, lo: int, hi: int) -> int:
    if not _INT.match(text):
        raise TelemetryError("bad integer in field %s: %r" % (name, text[:20]))
    value = int(text)
    if not lo <= value <= hi:
        raise TelemetryError("field %s = %d out of range %d .. %d" % (name, value, lo, hi))
    return value


def parse_line(line: str | bytes, state_names=STATE_NAMES) -> TelemetryRecord:
    """One telemetry line (with or without its line end) -> TelemetryRecord.

    state_names: the states the firmware may report (firmware/session.py).
    """
    text = _text(line)
    text = text.removesuffix("\n").removesuffix("\r")
    if len(text) > MAX_LINE:
        raise TelemetryError("line too long (%d characters, at most %d)" % (len(text), MAX_LINE))
    if not text.startswith(MARK):
        raise TelemetryError("not a telemetry line (it must start with %r)" % MARK)
    head = text.split(",", 1)[0].split("*", 1)[0]
    if head != "%s%d" % (MARK, VERSION):
        raise TelemetryError(
            "unknown telemetry version %r (this parser reads %s%d)" % (head[1:12], MARK, VERSION)
        )
    star = text.rfind("*")
    if star < 0:
        raise TelemetryError("no checksum (the line must end with *XX)")
    given = text[star + 1 :]
    if not _HEX2.match(given):
        raise TelemetryError("malformed checksum %r (two uppercase hex digits)" % given[:10])
    payload = text[1:star]
    computed = checksum(payload.encode("ascii"))
    if int(given, 16) != computed:
        raise TelemetryError("checksum mismatch: line says %s, computed %02X" % (given, computed))
    fields = payload.split(",")[1:]
    if len(fields) != len(FIELDS):
        raise TelemetryError(
            "wrong field count: %d fields after %s%d, expected %d (%s)"
            % (len(fields), MARK, VERSION, len(FIELDS), ", ".join(FIELDS))
        )
    ticks_s, state, angle_s, rate_s, button_s, current_s, fault_s, duty_s = fields
    if state not in state_names:
        raise TelemetryError(
            "unknown state %r (known: %s)" % (state[:40], ", ".join(state_names))
        )
    if button_s not in ("0", "1"):
        raise TelemetryError("field button must be 0 or 1, got %r" % button_s[:20])
    if not _NAME.match(fault_s):
        raise TelemetryError(
            "bad fault name %r (1 to 64 printable ASCII characters but space , * @)"
            % fault_s[:40]
        )
    return TelemetryRecord(
        ticks_ms=_int("ticks_ms", ticks_s, 0, INT_MAX),
        state=state,
        angle_mdeg=_int("angle_mdeg", angle_s, -INT_MAX, INT_MAX),
        rate_mdps=_int("rate_mdps", rate_s, -INT_MAX, INT_MAX),
        button=button_s == "1",
        current_ma=_int("current_ma", current_s, -INT_MAX, INT_MAX),
        fault=None if fault_s == "-" else fault_s,
        duty=_int("duty", duty_s, -DUTY_MAX, DUTY_MAX),
    )


def format_line(rec: TelemetryRecord) -> str:
    """The line for a record (the firmware's format, for tests and tools)."""
    payload = "T%d,%d,%s,%d,%d,%d,%d,%s,%d" % (
        VERSION,
        rec.ticks_ms,
        rec.state,
        rec.angle_mdeg,
        rec.rate_mdps,
        1 if rec.button else 0,
        rec.current_ma,
        rec.fault or "-",
        rec.duty,
    )
    return "@%s*%02X\n" % (payload, checksum(payload.encode("ascii")))
