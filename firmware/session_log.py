"""The session log on the board's file system: one line per session, power-loss safe.

End-of-session code (allocation is fine here, never in the control tick).

File format (``sessions.log``, text, one record a line)::

    L1 <compact json> <crc32 of everything before the last space, 8 lowercase hex>\\n

``L1`` is the format version. A line counts only if its CRC-32
(``binascii.crc32``, the zlib polynomial) matches and its JSON is an object
with ``"v": 1``; anything else (a line cut by a reset, FAT garbage after a
power cut, a flipped bit) is skipped and named in the problems list
``read_records`` returns. (A last line that lost only its newline still
checks out and counts: the CRC covers every other byte.) Reading never
raises on damaged content; it goes one line at a time, and
``keep_series=False`` drops the angle series of each record as it is read
(on the board, the progression rules need the rest at a quarter of the RAM).

Sizes (measured): a 5-minute session is about 715 bytes (61 samples), a
30-minute one about 2.4 KB (361 samples, ~5.5 bytes a sample); a 16 KB file
holds 22 five-minute or 6 thirty-minute sessions, and the log keeps up to
two files. `python -m host_tools logs pull` archives them on the host.

Record fields (``check_record`` enforces them; extra keys are kept):

    v                 1 (the record version)
    boot              boot counter (int), or null if the board keeps none
    start_s           start time in seconds since 1970-01-01 UTC if the clock
                      is set, else null. MicroPython's epoch differs by port
                      (time.gmtime(0)[0] is 2000 on some): the caller converts
                      (+946684800 from a 2000 epoch).
    start_ms          ticks_ms() at the start (wraps at 2**30; orders sessions
                      within one boot only)
    program           the session's program: target_angle_deg, hold_s,
                      rock_amplitude_deg, rock_period_s, rock_cycles,
                      descent_rate_dps, return_rate_dps, rest_angle_deg, rest_s
    peak_angle_deg    highest angle reached (deg from horizontal), null if no
                      sample was taken
    inverted_s        seconds with the angle above 0 (head below feet)
    duration_s        seconds from start to end
    ended             "completed" | "released" (the user let go) | "fault" |
                      "power_loss" (written after the next boot)
    faults            list of fault names (firmware/controller.py FAULT_NAMES)
    angle_series_deg  the angle every 5 s from the start (deg, 0.1 resolution)

Appending (``SessionLog.append``): the whole line in one ``write`` on a file
opened in append mode, flushed and closed, then ``os.sync()`` where the port
has it. If a reset cut the previous line (the file does not end with a
newline), the new line starts with a newline so the cut line cannot swallow
it. A reset during the write loses at most the line being written.

Rotation, when the line would take the file past ``max_bytes``:

    1. remove sessions.1.log            (the oldest records: meant to go)
    2. rename sessions.log -> sessions.1.log
    3. append the line to a fresh sessions.log

A reset after 1 keeps sessions.log whole (the next append rotates again);
after 2 every kept record is in sessions.1.log and only the new line is lost;
during 3 only the new line can be cut. Rename is never asked to replace a
file (FAT cannot). Disk use stays under 2 x max_bytes.
"""

import binascii
import errno
import io
import json
import os

RECORD_VERSION = 1
LINE_PREFIX = b"L1 "
ENDED = ("completed", "released", "fault", "power_loss")
DEFAULT_NAME = "sessions.log"
DEFAULT_MAX_BYTES = 16384
# The smallest max_bytes: a full 30-minute record (360 samples) must fit.
MIN_MAX_BYTES = 4096
MAX_MAX_BYTES = 1048576

_HEX = b"0123456789abcdef"
_CRC_LEN = 8


def join(directory, name):
    """directory/name; "" and "." mean the current folder (no "./" prefix)."""
    if directory in ("", "."):
        return name
    if directory.endswith("/"):
        return directory + name
    return directory + "/" + name


def rotated_name(name):
    """sessions.log -> sessions.1.log (the older file)."""
    i = name.rfind(".")
    if i <= 0:
        return name + ".1"
    return name[:i] + ".1" + name[i:]


def _crc_hex(body):
    return b"%08x" % (binascii.crc32(body) & 0xFFFFFFFF)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_record(record):
    """Raise ValueError naming the first field that is missing or wrong."""
    if not isinstance(record, dict):
        raise ValueError("session record must be a dict, got %s" % type(record).__name__)

    def need(key):
        if key not in record:
            raise ValueError("session record: missing field %r" % key)
        return record[key]

    if need("v") != RECORD_VERSION:
        raise ValueError("session record: 'v' must be %d, got %r" % (RECORD_VERSION, record["v"]))
    for key in ("boot", "start_s"):
        x = need(key)
        if x is not None and not _is_number(x):
            raise ValueError("session record: %r must be a number or null, got %r" % (key, x))
    x = need("start_ms")
    if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < (1 << 30):
        raise ValueError("session record: 'start_ms' must be an int in 0 .. 2**30-1, got %r" % x)
    if not isinstance(need("program"), dict):
        raise ValueError("session record: 'program' must be a dict")
    x = need("peak_angle_deg")
    if x is not None and not _is_number(x):
        raise ValueError("session record: 'peak_angle_deg' must be a number or null, got %r" % x)
    for key in ("inverted_s", "duration_s"):
        x = need(key)
        if not _is_number(x) or x < 0:
            raise ValueError("session record: %r must be a number >= 0, got %r" % (key, x))
    x = need("ended")
    if x not in ENDED:
        raise ValueError(
            "session record: 'ended' must be one of %s, got %r" % (", ".join(ENDED), x)
        )
    faults = need("faults")
    if not isinstance(faults, list):
        raise ValueError("session record: 'faults' must be a list of names")
    for f in faults:
        if not isinstance(f, str):
            raise ValueError("session record: 'faults' must hold names (str), got %r" % (f,))
    series = need("angle_series_deg")
    if not isinstance(series, list):
        raise ValueError("session record: 'angle_series_deg' must be a list of numbers")
    for a in series:
        if not _is_number(a):
            raise ValueError("session record: 'angle_series_deg' holds %r, not a number" % (a,))


def encode_record(record):
    """The record's log line (bytes, newline included); checks it first."""
    check_record(record)
    body = LINE_PREFIX + json.dumps(record, separators=(",", ":")).encode()
    return body + b" " + _crc_hex(body) + b"\n"


def decode_line(line):
    """One line (without its newline) -> the record dict; ValueError says why not."""
    if not line.startswith(LINE_PREFIX):
        if len(line) > 1 and line[0] == 0x4C and 0x30 <= line[1] <= 0x39:  # "L<digit>"
            n = 2
            while n < len(line) and n < 8 and 0x30 <= line[n] <= 0x39:
                n += 1
            raise ValueError(
                "record format %s unknown (this reader knows L1)" % line[:n].decode()
            )
        raise ValueError("not a record line (it must start with 'L1 ')")
    if len(line) < len(LINE_PREFIX) + 3 + _CRC_LEN:
        raise ValueError("too short for a record (%d bytes)" % len(line))
    if line[-_CRC_LEN - 1] != 0x20:
        raise ValueError("no checksum at the end of the line (cut short by a reset, or damaged)")
    crc = line[-_CRC_LEN:]
    for c in crc:
        if c not in _HEX:
            raise ValueError("checksum is not 8 lowercase hex digits")
    body = line[: -_CRC_LEN - 1]
    if _crc_hex(body) != crc:
        raise ValueError("checksum mismatch (damaged record)")
    try:
        record = json.loads(body[len(LINE_PREFIX):].decode())
    except ValueError:  # UnicodeError is a ValueError too
        raise ValueError("checksum good but JSON unreadable") from None
    if not isinstance(record, dict) or record.get("v") != RECORD_VERSION:
        raise ValueError("not a version %d session record" % RECORD_VERSION)
    return record


def _parse_stream(stream, label, keep_series):
    # One line at a time (readline): on a board only one line is in RAM at once.
    records = []
    problems = []
    n = 0
    while True:
        raw = stream.readline()
        if not raw:
            break
        n += 1
        complete = raw[-1] == 0x0A
        line = raw[:-1] if complete else raw
        if not line:
            continue
        rec = None
        why = ""
        try:
            rec = decode_line(line)
        except ValueError as e:
            why = str(e)
        if rec is None:
            # A cut line the next record was glued onto: retry from each later "L1 ".
            j = line.find(LINE_PREFIX, 1)
            while j > 0:
                try:
                    rec = decode_line(line[j:])
                    break
                except ValueError:
                    j = line.find(LINE_PREFIX, j + 1)
            if rec is not None:
                why = "%d damaged bytes before a good record skipped" % j
            elif not complete:
                why = (
                    "cut short (%d bytes, no end of line): the record being written when "
                    "the board lost power or reset" % len(line)
                )
            problems.append("%s line %d: %s" % (label, n, why))
        if rec is not None:
            if not keep_series:
                rec.pop("angle_series_deg", None)
            records.append(rec)
    return records, problems


def parse_log(data, label="log", keep_series=True):
    """The bytes of one log file -> (records, problems). Never raises on content.

    A line that fails but holds a later "L1 " (a cut line the next record was
    glued onto) is retried from there. A last line without its newline is
    kept if it checks out (its CRC covers every other byte), else reported as
    cut short. keep_series=False drops each record's angle series once read
    (on a board: what progression rules need, without the RAM the series take).
    """
    return _parse_stream(io.BytesIO(data), label, keep_series)


def read_file(path, keep_series=True):
    """One log file -> (records, problems); a missing file gives ([], [])."""
    try:
        f = open(path, "rb")
    except OSError as e:
        if e.args and e.args[0] == errno.ENOENT:  # no log yet
            return [], []
        return [], ["%s: cannot be read (%s)" % (path, e)]
    try:
        return _parse_stream(f, path, keep_series)
    except OSError as e:
        return [], ["%s: cannot be read (%s)" % (path, e)]
    finally:
        f.close()


def read_records(directory=".", name=DEFAULT_NAME, keep_series=True):
    """Every readable record, oldest first (the rotated file, then the current one),
    and a list of problems (each names the file and line). Never raises on
    damaged content. keep_series=False: see parse_log."""
    older, p1 = read_file(join(directory, rotated_name(name)), keep_series)
    newer, p2 = read_file(join(directory, name), keep_series)
    return older + newer, p1 + p2


def _size(path):
    """File size in bytes, -1 if it does not exist."""
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def _ends_with_newline(path, size):
    try:
        with open(path, "rb") as f:
            f.seek(size - 1)
            return f.read(1) == b"\n"
    except OSError:
        return False


def _sync():
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()


class SessionLog:
    """Appends session records to directory/name, rotating into name.1 (see module doc)."""

    def __init__(self, directory=".", name=DEFAULT_NAME, max_bytes=DEFAULT_MAX_BYTES):
        if not isinstance(max_bytes, int) or not MIN_MAX_BYTES <= max_bytes <= MAX_MAX_BYTES:
            raise ValueError(
                "max_bytes must be an int in %d .. %d, got %r"
                % (MIN_MAX_BYTES, MAX_MAX_BYTES, max_bytes)
            )
        if not name or "/" in name:
            raise ValueError("name must be a file name without '/', got %r" % (name,))
        self.directory = directory
        self.name = name
        self.max_bytes = max_bytes
        self.path = join(directory, name)
        self.old_path = join(directory, rotated_name(name))
        self.rotations = 0  # rotations done by this object (for tests and the console)

    def append(self, record):
        """Append one record (see check_record); returns the bytes written.

        Raises ValueError if the record is wrong or its line is longer than
        max_bytes, OSError if the file system refuses.
        """
        line = encode_record(record)
        if len(line) + 1 > self.max_bytes:
            raise ValueError(
                "session record is %d bytes, more than max_bytes %d allows"
                % (len(line), self.max_bytes)
            )
        size = _size(self.path)
        # +1: room for the newline that may have to close a cut line.
        if size > 0 and size + len(line) + 1 > self.max_bytes:
            self.rotate()
            size = -1
        if size > 0 and not _ends_with_newline(self.path, size):
            line = b"\n" + line
        with open(self.path, "ab") as f:
            f.write(line)
            f.flush()
        _sync()
        return len(line)

    def rotate(self):
        """sessions.log -> sessions.1.log (the previous .1 removed first)."""
        try:
            os.remove(self.old_path)
        except OSError:
            pass
        os.rename(self.path, self.old_path)
        _sync()
        self.rotations += 1

    def read(self):
        """(records oldest first, problems): read_records for this log."""
        return read_records(self.directory, self.name)
