"""`python -m host_tools logs ...` and `... monitor`, against a virtual board and a pty.

What these tests protect:
- logs pull: the session logs the firmware's SessionLog wrote ON the board
  (MicroPython, across a rotation, the last record cut by a "power loss")
  arrive byte for byte through mpremote (checked against the board's own
  SHA-256); every intact record goes into the archive, the cut one is
  reported, not fatal; a second pull adds only new records, and records the
  board has rotated away stay in the archive; a board without logs and an
  unreachable port give clear answers;
- logs plot: writes a PNG (two panels) from pulled logs; the per-day
  progression (peak angle, minutes inverted) is computed right; a missing
  file is a usage error (2), no records is 1;
- monitor: telemetry lines printed by the board with the firmware's own
  formatter, through the virtual board's serial port, become status lines
  (angle, state, button, current, fault); other console lines pass through;
  a corrupted telemetry line is shown with the parser's reason; --count and
  --timeout end it, with status 1 when the count was not reached;
- both commands are registered in `python -m host_tools`.
"""

import datetime as dt
import json
import os
import pty
import selectors
import shutil
import subprocess
import sys
import time
import tty

import pytest

from firmware import session_log as SL
from firmware.controller import FAULT_NAMES
from firmware.session import STATE_NAMES
from firmware.telemetry import TelemetryFormatter
from host_tools import logs as L
from host_tools.virtual_board import VirtualBoard, VirtualBoardError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 60

BOARD_RECORD = """
def record(i, samples):
    return {
        "v": 1, "boot": 7, "start_s": 1780000000 + 43200 * i,
        "start_ms": (1000 + 977 * i) & 0x3FFFFFFF,
        "program": {"target_angle_deg": 15.0 + i, "hold_s": 60.0,
                    "rock_amplitude_deg": 0.0, "rock_period_s": 10.0},
        "peak_angle_deg": 15.0 + i, "inverted_s": 60.0 + i, "duration_s": 120.0 + i,
        "ended": ("completed", "released")[i % 2], "faults": [],
        "angle_series_deg": [((i * 7 + k * 13) % 300) / 10 for k in range(samples)],
    }
"""


def cli(*args, timeout=TIMEOUT_S):
    return subprocess.run(
        [sys.executable, "-m", "host_tools", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def _install_firmware(root, *names):
    (root / "firmware").mkdir(exist_ok=True)
    shutil.copy(os.path.join(ROOT, "firmware", "__init__.py"), root / "firmware")
    for name in names:
        shutil.copy(os.path.join(ROOT, "firmware", name), root / "firmware" / name)


def _board_appends(vb, first, last):
    script = BOARD_RECORD + (
        "from firmware.session_log import SessionLog\n"
        "log = SessionLog('.', max_bytes=4096)\n"
        "for i in range(%d, %d):\n"
        "    log.append(record(i, 30))\n"
        "print('@@rot', log.rotations)\n" % (first, last)
    )
    out = vb.mpremote("exec", script, timeout=TIMEOUT_S)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _records(first, last):
    ns = {}
    exec(BOARD_RECORD, ns)
    return [ns["record"](i, 30) for i in range(first, last)]


@pytest.fixture(scope="module")
def board():
    try:
        vb = VirtualBoard().start()
    except VirtualBoardError as e:
        pytest.skip(str(e))
    try:
        _install_firmware(vb.root, "session_log.py")
        yield vb
    finally:
        vb.stop()


def test_pull_copies_the_boards_logs_and_archives_every_intact_record(board, tmp_path):
    vb = board
    assert "@@rot 1" in _board_appends(vb, 0, 14)  # one rotation on the board
    # Power lost in the middle of the next record's write.
    line = SL.encode_record(_records(14, 15)[0])
    with open(vb.root / "sessions.log", "ab") as f:
        f.write(line[: len(line) // 2])
    board_older = (vb.root / "sessions.1.log").read_bytes()
    board_current = (vb.root / "sessions.log").read_bytes()

    dest = tmp_path / "pulled"
    out = cli("logs", "pull", "--port", vb.port, "--dest", str(dest), "--timeout", str(TIMEOUT_S))
    assert out.returncode == 0, out.stdout + out.stderr
    assert (dest / "sessions.1.log").read_bytes() == board_older
    assert (dest / "sessions.log").read_bytes() == board_current
    assert "cut short" in out.stderr and "sessions.log line" in out.stderr
    archived, problems = SL.read_file(str(dest / "archive.log"))
    assert problems == []
    expected = _records(0, 14)
    assert archived == expected[-len(archived):] and len(archived) >= 9
    assert "%d new records" % len(archived) in out.stdout

    # More sessions: the board rotates the oldest away; the archive keeps them.
    _board_appends(vb, 15, 25)
    result = L.pull(vb.port, dest, timeout=TIMEOUT_S, log=lambda _m: None)
    archived2, _ = SL.read_file(str(dest / "archive.log"))
    assert archived2[: len(archived)] == archived  # nothing lost, nothing repeated
    on_board, _ = SL.read_records(str(vb.root))
    assert archived2[len(archived):] == on_board[-result["added"]:]
    assert archived[0] not in on_board  # rotated away on the board, kept on the host
    assert len({json.dumps(r, sort_keys=True) for r in archived2}) == len(archived2)


def test_pull_from_a_board_without_logs_and_from_no_board(tmp_path):
    try:
        vb = VirtualBoard().start()
    except VirtualBoardError as e:
        pytest.skip(str(e))
    try:
        out = cli("logs", "pull", "--port", vb.port, "--dest", str(tmp_path / "d"))
        assert out.returncode == 0, out.stderr
        assert "no session log on the board" in out.stdout
        assert not (tmp_path / "d").exists()
    finally:
        vb.stop()
    out = cli("logs", "pull", "--port", "/dev/ttyNOPE", "--dest", str(tmp_path / "d"))
    assert out.returncode == 1
    assert "mpremote failed on /dev/ttyNOPE" in out.stderr and "Traceback" not in out.stderr


def _history():
    """Three weeks, two sessions a day, progressing 15 -> 45 deg; one undated session."""
    recs = []
    start = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC).timestamp()
    for day in range(21):
        for session in range(2):
            angle = 15.0 + 1.5 * day
            recs.append({
                "v": 1, "boot": day, "start_s": int(start + day * 86400 + session * 36000),
                "start_ms": 1000 + session, "program": {"target_angle_deg": angle},
                "peak_angle_deg": angle + session, "inverted_s": 90.0 + 30 * session,
                "duration_s": 300.0, "ended": "completed", "faults": [],
                "angle_series_deg": [min(angle, -60 + 10 * k) for k in range(60)],
            })  # fmt: skip
    recs.append({**recs[0], "start_s": None, "boot": None})
    return recs


def test_daily_progress_per_day_peak_and_minutes():
    days = L.daily_progress(_history(), tz=dt.UTC)
    assert len(days) == 21
    assert days[0] == {"day": dt.date(2026, 3, 2), "sessions": 2, "peak_angle_deg": 16.0,
                       "minutes_inverted": 3.5}  # fmt: skip
    assert days[-1]["peak_angle_deg"] == 15.0 + 1.5 * 20 + 1
    assert [d["sessions"] for d in days] == [2] * 21  # the undated one is not on a day


def test_plot_writes_a_png_from_logs(tmp_path):
    log = SL.SessionLog(str(tmp_path / "a"), max_bytes=65536)
    (tmp_path / "a").mkdir()
    for rec in _history():
        log.append(rec)
    png = tmp_path / "out" / "sessions.png"
    # The same records twice (a pulled copy and the archive): plotted once.
    shutil.copy(tmp_path / "a" / "sessions.log", tmp_path / "copy.log")
    out = cli("logs", "plot", str(tmp_path / "a" / "sessions.log"), str(tmp_path / "copy.log"),
              "--out", str(png), "--utc", "--title", "test")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "wrote %s (43 sessions)" % png in out.stdout
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    import matplotlib.image

    height, width = matplotlib.image.imread(str(png)).shape[:2]
    assert (width, height) == (1100, 900)

    # Undated only: by session number, still a PNG.
    undated = tmp_path / "undated.log"
    undated.write_bytes(SL.encode_record({**_history()[0], "start_s": None}))
    out = cli("logs", "plot", str(undated), "--out", str(tmp_path / "u.png"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "u.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_refuses_a_missing_file_and_an_empty_log(tmp_path):
    out = cli("logs", "plot", str(tmp_path / "nope.log"), "--out", str(tmp_path / "x.png"))
    assert out.returncode == 2
    assert "cannot read log file %s" % (tmp_path / "nope.log") in out.stderr
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"L1 {not a record} 00000000\n")
    out = cli("logs", "plot", str(junk), "--out", str(tmp_path / "x.png"))
    assert out.returncode == 1
    assert "no session record" in out.stderr and "checksum mismatch" in out.stderr
    assert not (tmp_path / "x.png").exists()


# --- monitor --------------------------------------------------------------------------

FMT = TelemetryFormatter(STATE_NAMES, FAULT_NAMES)


def tline(*values):
    n = FMT.format(*values)
    return bytes(FMT.buf[:n])


def _pty():
    master, slave = pty.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def _wait_until_reading(proc, master, deadline_s=30):
    """Write "sync" lines until the monitor echoes one (pyserial drops what came
    before it opened the port); returns the output read so far."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen = b""
    end = time.monotonic() + deadline_s
    try:
        while b"sync\n" not in seen:
            assert time.monotonic() < end, "monitor never started reading: %r" % seen
            assert proc.poll() is None, proc.stderr.read()
            os.write(master, b"sync\n")
            if sel.select(0.2):
                seen += os.read(proc.stdout.fileno(), 4096)
    finally:
        sel.close()
    return seen


def test_monitor_shows_status_passes_console_lines_and_names_bad_telemetry():
    master, slave, port = _pty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host_tools", "monitor", "--port", port, "--count", "3",
             "--timeout", "60"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        head = _wait_until_reading(proc, master)
        bad = bytearray(tline(200, 3, 30000, 0, 1, 1500, 0, 2500))
        bad[10] ^= 0x01
        chunks = [
            b"MicroPython boot: self-test ok\r\n",
            tline(100, 2, 12345, 2000, 1, 3200, 0, 4500),
            bytes(bad),
            b"config: using defaults (config.json: bad key)\n",
            tline(110, 3, 30002, -10, 1, 800, 0, 120)[:20],  # split across reads
        ]
        for c in chunks:
            os.write(master, c)
            time.sleep(0.05)
        os.write(master, tline(110, 3, 30002, -10, 1, 800, 0, 120)[20:])
        os.write(master, tline(120, 6, 29000, -3500, 0, -900, 1, -6000))
        rest, err_b = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    out = (head + rest).decode()
    err = err_b.decode()
    assert proc.returncode == 0, out + err
    lines = [ln for ln in out.splitlines() if ln != "sync"]
    assert lines[0] == "MicroPython boot: self-test ok"
    assert lines[1].startswith("DESCENDING") and "12.35 deg" in lines[1]
    assert "2.00 deg/s" in lines[1] and "button HELD" in lines[1] and "3.20 A" in lines[1]
    assert "duty   45.0%" in lines[1] and "fault -" in lines[1] and "t 0.1 s" in lines[1]
    assert lines[2].startswith("[bad telemetry: checksum mismatch")
    assert lines[3] == "config: using defaults (config.json: bad key)"
    assert lines[4].startswith("HOLDING") and "30.00 deg" in lines[4]
    assert lines[5].startswith("EMERGENCY_RETURN") and "button up" in lines[5]
    assert "fault imu_lost" in lines[5] and "-0.90 A" in lines[5]
    assert "1 malformed telemetry lines" in err


def test_monitor_count_not_reached_within_timeout_is_status_1():
    master, slave, port = _pty()
    try:
        t0 = time.monotonic()
        out = cli("monitor", "--port", port, "--count", "5", "--timeout", "1.5")
        took = time.monotonic() - t0
    finally:
        os.close(master)
        os.close(slave)
    assert out.returncode == 1
    assert "0 of 5 telemetry lines within 1.5 s" in out.stderr
    assert took < 15
    assert cli("monitor", "--port", port, "--count", "0").returncode == 2
    out = cli("monitor", "--port", "/dev/ttyNOPE", "--timeout", "1")
    assert out.returncode == 1 and "cannot open /dev/ttyNOPE" in out.stderr


DEMO = """
import sys, time
from firmware.telemetry import TelemetryFormatter
from firmware.session import STATE_NAMES
fmt = TelemetryFormatter(STATE_NAMES, %r)
out = sys.stdout.buffer
for k in range(3000):
    if k %% 10 == 5:
        print("board says %%d" %% k)
    fmt.format(time.ticks_ms(), 3, 30000 + k, -k, 1, 1200, 0, 2500)
    fmt.write(out)
    time.sleep_ms(10)
"""


def test_monitor_reads_the_firmware_formatter_through_the_virtual_board(tmp_path):
    try:
        vb = VirtualBoard().start()
    except VirtualBoardError as e:
        pytest.skip(str(e))
    try:
        _install_firmware(vb.root, "telemetry.py", "session.py")
        (vb.root / "tele_demo.py").write_text(DEMO % (FAULT_NAMES,))
        import serial

        with serial.serial_for_url(vb.port, baudrate=115200, timeout=1) as s:
            s.write(b"import tele_demo\r")
            s.flush()
        out = cli("monitor", "--port", vb.port, "--count", "40", "--timeout", "30")
    finally:
        vb.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    status = [ln for ln in lines if ln.startswith("HOLDING")]
    assert len(status) == 40
    assert all("button HELD" in ln and "1.20 A" in ln and "fault -" in ln for ln in status)
    angles = [float(ln.split()[1]) for ln in status]
    assert angles == sorted(angles) and 30.0 <= angles[0] < 33.0
    assert any(ln.startswith("board says ") for ln in lines)
    assert "bad telemetry" not in out.stdout


def test_logs_and_monitor_are_host_tools_commands():
    out = cli("--help")
    assert out.returncode == 0
    assert "logs" in out.stdout and "monitor" in out.stdout
    out = cli("logs", "--help")
    assert "pull" in out.stdout and "plot" in out.stdout
