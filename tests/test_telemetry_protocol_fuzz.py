"""The telemetry line protocol: firmware formatter -> host parser, fuzzed.

What these tests protect:
- round trip: any values the firmware may report, formatted by the
  firmware's TelemetryFormatter (firmware/telemetry.py), parse back on the
  host (host_tools/telemetry.py) to exactly those values; ints beyond the
  31-bit range are clamped, not garbled;
- the host's own format_line writes the same bytes as the firmware;
- arbitrary text and bytes, and telemetry-like lines built from random
  fragments, never raise anything but TelemetryError;
- every single-byte change to a valid line is rejected (the XOR checksum
  sees any one changed byte);
- each kind of malformed line is rejected with a message naming what is
  wrong: version, checksum, field count, the bad integer's field, range,
  state, button.
"""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from firmware.controller import FAULT_NAMES
from firmware.session import STATE_NAMES
from firmware.telemetry import TelemetryFormatter
from host_tools.telemetry import (
    TelemetryError,
    TelemetryRecord,
    checksum,
    format_line,
    is_telemetry,
    parse_line,
)

INT_MAX = 2**30 - 1
FMT = TelemetryFormatter(STATE_NAMES, FAULT_NAMES)


def firmware_line(*values):
    n = FMT.format(*values)
    return bytes(FMT.buf[:n])


def with_checksum(payload):
    """'@' + payload + '*XX\\n' with the right checksum (to reach the later checks)."""
    return "@%s*%02X\n" % (payload, checksum(payload.encode()))


_c = with_checksum

values = st.tuples(
    st.integers(0, INT_MAX),  # ticks_ms
    st.integers(0, len(STATE_NAMES) - 1),
    st.integers(-(2**31), 2**31),  # angle_mdeg (clamped past +-(2**30 - 1))
    st.integers(-(2**31), 2**31),  # rate_mdps
    st.booleans(),
    st.integers(-(2**31), 2**31),  # current_ma
    st.integers(0, len(FAULT_NAMES) - 1),
    st.integers(-10000, 10000),  # duty
)


def _clamp(x):
    return max(-INT_MAX, min(INT_MAX, x))


@given(values)
@example((0, 0, 0, 0, False, 0, 0, 0))
@example((INT_MAX, len(STATE_NAMES) - 1, -INT_MAX - 1, INT_MAX + 1, True, -(2**31), 1, -10000))
def test_firmware_format_then_host_parse_round_trips(v):
    ticks, state, angle, rate, button, current, fault, duty = v
    line = firmware_line(*v)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and len(line) <= len(FMT.buf)
    rec = parse_line(line)
    assert rec == TelemetryRecord(
        ticks_ms=ticks, state=STATE_NAMES[state], angle_mdeg=_clamp(angle),
        rate_mdps=_clamp(rate), button=button, current_ma=_clamp(current),
        fault=FAULT_NAMES[fault] or None, duty=duty,
    )  # fmt: skip
    assert format_line(rec).encode() == line
    assert parse_line(line.decode().rstrip("\n") + "\r\n") == rec  # CRLF from a terminal


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
@example("@T1")
@example("@T1*")
@example("@T1,*00")
@example(b"@T1,1,HOME,1,1,1,1,-,1*\xff\xfe")
@example("@T\u0661,1")
def test_arbitrary_text_or_bytes_raise_only_telemetry_error(data):
    try:
        rec = parse_line(data)
    except TelemetryError as e:
        assert str(e)
    else:
        assert isinstance(rec, TelemetryRecord)


fragment = st.one_of(
    st.sampled_from(["@T1", "@T", "@T2", ",", "*", "-", "0", "1", "-0", "HOME", "SAFE_STOP",
                     "imu_lost", "99999999999", "\r", "\n", " ", "+5", "1_0", "٣", "0x10"]),
    st.text(max_size=5),
    st.integers(-(2**40), 2**40).map(str),
)  # fmt: skip


@given(st.lists(fragment, max_size=14), st.booleans())
def test_telemetry_like_fragments_raise_only_telemetry_error(parts, fix_checksum):
    text = "".join(parts)
    if fix_checksum and text.startswith("@") and text.isascii():
        text = with_checksum(text[1:].replace("*", ""))
    try:
        rec = parse_line(text)
    except TelemetryError:
        return
    # Accepted: it must really be a well-formed line.
    assert format_line(rec).rstrip("\n") == text.rstrip("\r\n")


@given(values, st.data())
def test_every_single_byte_change_is_rejected(v, data):
    line = firmware_line(*v)
    pos = data.draw(st.integers(0, len(line) - 2), label="pos")  # not the final newline
    new = data.draw(st.integers(0, 255).filter(lambda b: b != line[pos]), label="byte")
    damaged = line[:pos] + bytes([new]) + line[pos + 1:]
    with pytest.raises(TelemetryError):
        parse_line(damaged)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("hello world", r"not a telemetry line \(it must start with '@T'\)"),
        ("@T2,1,2,3*00", r"unknown telemetry version 'T2' \(this parser reads @T1\)"),
        ("@T1,1,HOME,0,0,0,0,-,0", r"no checksum \(the line must end with \*XX\)"),
        ("@T1,1,HOME,0,0,0,0,-,0*3g", r"malformed checksum '3g'"),
        ("@T1,1,HOME,0,0,0,0,-,0*00", r"checksum mismatch: line says 00, computed [0-9A-F]{2}"),
        (_c("T1,1,HOME,0,0,0,0,-"), r"wrong field count: 7 fields after @T1, expected 8"),
        (_c("T1,1,HOME,0,0,0,0,-,0,9"), r"wrong field count: 9 fields"),
        (_c("T1,1,HOME,1.5,0,0,0,-,0"), r"bad integer in field angle_mdeg: '1\.5'"),
        (_c("T1,1,HOME,0,+3,0,0,-,0"), r"bad integer in field rate_mdps: '\+3'"),
        (_c("T1,,HOME,0,0,0,0,-,0"), r"bad integer in field ticks_ms: ''"),
        (_c("T1,1,HOME,-0,0,0,0,-,0"), r"bad integer in field angle_mdeg: '-0'"),
        (_c("T1,1,HOME,0,0,0,007,-,0"), r"bad integer in field current_ma: '007'"),
        (_c("T1,1,HOME,0,0,0,0,-,10001"), r"field duty = 10001 out of range -10000 \.\. 10000"),
        (_c("T1,-1,HOME,0,0,0,0,-,0"), r"field ticks_ms = -1 out of range 0 \.\. 1073741823"),
        (_c("T1,1,FLYING,0,0,0,0,-,0"), r"unknown state 'FLYING' \(known: STARTUP, HOME"),
        (_c("T1,1,HOME,0,0,2,0,-,0"), r"field button must be 0 or 1, got '2'"),
        (_c("T1,1,HOME,0,0,0,0,,0"), r"bad fault name ''"),
        ("@T1,1,HOME,0,0,0,0,-,0*0" + "0" * 600, r"line too long"),
        ("@T1,\u00e9", r"not ASCII"),
        (b"@T1,\xff", r"not ASCII \(byte 0xff at 4\)"),
    ],
)  # fmt: skip
def test_malformed_lines_are_rejected_naming_what_is_wrong(line, message):
    with pytest.raises(TelemetryError, match=message):
        parse_line(line)


def test_unknown_names_and_bad_names():
    # A state or fault number with no name is written "?": the host names the state.
    n = FMT.format(1, 99, 0, 0, 0, 0, 0, 0)
    with pytest.raises(TelemetryError, match=r"unknown state '\?'"):
        parse_line(bytes(FMT.buf[:n]))
    n = FMT.format(1, 1, 0, 0, 0, 0, 99, 0)
    assert parse_line(bytes(FMT.buf[:n])).fault == "?"
    with pytest.raises(ValueError, match=r"fault name 'bad name'.*without space , \* @"):
        TelemetryFormatter(STATE_NAMES, ("", "bad name"))
    assert is_telemetry("@T1,...") and is_telemetry(b"@T9") and not is_telemetry("hello")
