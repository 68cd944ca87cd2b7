"""Live telemetry from the board's serial console.

    python -m host_tools monitor --port /dev/ttyACM0 [--baud 115200] [--count N] [--timeout S]

Reads the console, parses the telemetry lines (firmware/telemetry.py,
host_tools/telemetry.py) and shows one live status line: time, state, angle,
rate, button, current, duty, fault. Every other console line (boot messages,
errors, the REPL) is passed through above the status line. A line that
claims to be telemetry but does not parse is shown with the parser's reason.
When the output is not a terminal (a pipe, a file, a test) each status is
printed on its own line instead.

Stops after --count telemetry lines, after --timeout seconds, when the port
fails or closes (board unplugged), or on Ctrl-C. Exit status: 0 done (or
Ctrl-C); 1 the port could not be opened or stopped before --count lines
(or, without --count, at all before --timeout); 2 bad command line.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from host_tools.telemetry import TelemetryError, TelemetryRecord, is_telemetry, parse_line

DEFAULT_BAUD = 115200
_READ_TIMEOUT_S = 0.05
_MAX_PENDING = 4096  # a "line" longer than this without a newline is passed through as is


class MonitorError(Exception):
    """The port could not be opened or read."""


STATUS = "%-16s %7.2f deg %6.2f deg/s  button %-4s %5.2f A  duty %6.1f%%  fault %s  t %.1f s"


def status_text(rec: TelemetryRecord) -> str:
    """The one-line status: state, angle, rate, button, current, duty, fault, board time."""
    return STATUS % (
        rec.state,
        rec.angle_deg,
        rec.rate_dps,
        "HELD" if rec.button else "up",
        rec.current_a,
        rec.duty / 100.0,
        rec.fault or "-",
        rec.ticks_ms / 1000.0,
    )


class Display:
    """One live status line on a terminal; plain lines otherwise."""

    def __init__(self, out, live: bool):
        self.out = out
        self.live = live
        self.status = ""

    def _clear(self):
        if self.live and self.status:
            self.out.write("\r\x1b[K")

    def line(self, text: str) -> None:
        """A console line, passed through."""
        self._clear()
        self.out.write(text + "\n")
        if self.live and self.status:
            self.out.write(self.status)
        self.out.flush()

    def show(self, status: str) -> None:
        if self.live:
            # One terminal row: a wrapped status line could not be redrawn in place.
            width = shutil.get_terminal_size((100, 24)).columns - 1
            status = status[:width]
            self.out.write("\r\x1b[K" + status)
        else:
            self.out.write(status + "\n")
        self.status = status
        self.out.flush()

    def close(self) -> None:
        if self.live and self.status:
            self.out.write("\n")
            self.out.flush()


class Monitor:
    """Splits a byte stream into lines and routes them (testable without a port)."""

    def __init__(self, display: Display, err=None):
        self.display = display
        self.err = err if err is not None else sys.stderr
        self.pending = bytearray()
        self.records = 0
        self.bad = 0
        self.last: TelemetryRecord | None = None
        self.error: str | None = None  # why reading stopped early, if it did

    def feed(self, data: bytes) -> None:
        self.pending += data
        while True:
            i = self.pending.find(b"\n")
            if i < 0:
                break
            raw = bytes(self.pending[:i])
            del self.pending[: i + 1]
            self._line(raw)
        if len(self.pending) > _MAX_PENDING:
            raw = bytes(self.pending)
            self.pending.clear()
            self._line(raw)

    def flush(self) -> None:
        if self.pending:
            raw = bytes(self.pending)
            self.pending.clear()
            self._line(raw)

    def _line(self, raw: bytes) -> None:
        raw = raw.rstrip(b"\r")
        if is_telemetry(raw):
            try:
                rec = parse_line(raw)
            except TelemetryError as e:
                self.bad += 1
                self.display.line(
                    "[bad telemetry: %s] %s" % (e, raw.decode("ascii", "replace")[:200])
                )
                return
            self.records += 1
            self.last = rec
            self.display.show(status_text(rec))
        else:
            self.display.line(raw.decode("utf-8", "replace"))


def open_port(port: str, baud: int):
    import serial  # pyserial

    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=_READ_TIMEOUT_S)
    except (serial.SerialException, OSError, ValueError) as e:
        raise MonitorError("cannot open %s: %s" % (port, e)) from e


def monitor(ser, out=None, err=None, *, count=None, timeout=None, live=None) -> Monitor:
    """Read `ser` (pyserial-like: read(n), in_waiting) until count/timeout/EOF."""
    out = out if out is not None else sys.stdout
    if live is None:
        live = bool(getattr(out, "isatty", lambda: False)())
    mon = Monitor(Display(out, live), err)
    deadline = None if timeout is None else time.monotonic() + timeout
    import serial

    try:
        while count is None or mon.records < count:
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                data = ser.read(ser.in_waiting or 1)
            except (serial.SerialException, OSError) as e:
                # Unplugged board, or the other end of a pty closed: the end.
                mon.error = str(e)
                break
            if data:
                mon.feed(data)
                if count is not None and mon.records >= count:
                    break
        mon.flush()
    finally:
        mon.display.close()
    return mon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                        help="baud rate (default %(default)s; USB CDC ignores it)")  # fmt: skip
    parser.add_argument("--count", type=int, default=None,
                        help="stop after this many telemetry lines")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop after this many seconds")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        print("monitor: --count must be 1 or more, got %d" % args.count, file=sys.stderr)
        return 2
    if args.timeout is not None and not args.timeout > 0:
        print("monitor: --timeout must be more than 0 s, got %s" % args.timeout, file=sys.stderr)
        return 2
    try:
        ser = open_port(args.port, args.baud)
    except MonitorError as e:
        print("monitor: %s" % e, file=sys.stderr)
        return 1
    try:
        mon = monitor(ser, count=args.count, timeout=args.timeout)
    except MonitorError as e:
        print("monitor: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        ser.close()
    if mon.error is not None:
        print("monitor: reading %s stopped: %s" % (args.port, mon.error), file=sys.stderr)
    if args.count is not None and mon.records < args.count:
        print("monitor: %d of %d telemetry lines%s" % (
            mon.records, args.count,
            " within %.1f s" % args.timeout if args.timeout is not None else "",
        ), file=sys.stderr)  # fmt: skip
        return 1
    if mon.bad:
        print("monitor: %d malformed telemetry lines" % mon.bad, file=sys.stderr)
    return 1 if mon.error is not None and args.count is None else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m host_tools monitor",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
