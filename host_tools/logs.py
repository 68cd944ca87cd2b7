"""Session logs: pull them from a board, plot them.

    python -m host_tools logs pull --port /dev/ttyACM0 [--dest DIR]
    python -m host_tools logs plot LOGFILE... --out sessions.png

pull: copies every sessions*.log from the board (firmware/session_log.py
writes sessions.log and, after a rotation, sessions.1.log) into DEST
(default logs/) with mpremote (host_tools.deploy.Device: attached with
`resume`, no soft reset), checks each copy against the SHA-256 the board
computes, then adds every record not seen before to DEST/archive.log, so the
history outlives the board's rotation. Damaged lines (a record cut by a
power loss) are reported and skipped, never fatal.

plot: a PNG with two panels: the angle against time of every session (from
its 5 s angle series), and the progression over days: the peak angle and
the minutes inverted per day (local time of this machine; sessions recorded
without a set clock are placed by session number instead when no session
has a date).

Exit status: 0 done; 1 the board or a copy failed, or no record to plot;
2 bad command line (unreadable log file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from firmware import session_log as SL
from host_tools.deploy import DEFAULT_TIMEOUT_S, DeployError, Device

ARCHIVE = "archive.log"
SAMPLE_S = 5.0  # firmware/session_record.py SAMPLE_MS
_TAG = "@@L"

# Runs on the board: one line per session log file: "@@L<TAB>name<TAB>size".
_LIST_SCRIPT = """\
import os
_d = %(dir)r
for _n in sorted(os.listdir(_d or '.')):
    if _n.startswith(%(prefix)r) and _n.endswith(%(suffix)r):
        _p = _d + '/' + _n if _d else _n
        print('@@L\\t' + _p + '\\t' + str(os.stat(_p)[6]))
"""


class LogsError(Exception):
    """Pull or plot failed; the message says why."""


class UsageError(LogsError):
    """Bad input (exit status 2)."""


def _pattern(name: str) -> tuple[str, str]:
    """sessions.log -> ("sessions", ".log"): sessions.log and sessions.1.log match."""
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext) if dot else (name, "")


def list_device_logs(device: Device, device_dir: str = "", name: str = SL.DEFAULT_NAME):
    """[(device path, size)] of the session log files on the board."""
    prefix, suffix = _pattern(name)
    out = device.run(
        ["exec", _LIST_SCRIPT % {"dir": device_dir.rstrip("/"), "prefix": prefix,
                                 "suffix": suffix}]
    )  # fmt: skip
    found = []
    for line in out.splitlines():
        fields = line.rstrip("\r").split("\t")
        if fields[0] == _TAG and len(fields) == 3:
            found.append((fields[1], int(fields[2])))
    return found


def _record_key(rec: dict) -> str:
    return json.dumps(rec, sort_keys=True, separators=(",", ":"))


def merge_into_archive(archive: Path, records: list[dict]) -> tuple[int, list[str]]:
    """Append the records not already in the archive, in order; (added, problems).

    The archive is rewritten through a temporary file and a rename, so an
    interrupted pull leaves the old archive whole.
    """
    old: list[dict] = []
    problems: list[str] = []
    if archive.exists():
        old, problems = SL.read_file(str(archive))
    seen = {_record_key(r) for r in old}
    new_lines = []
    for rec in records:
        key = _record_key(rec)
        if key in seen:
            continue
        try:
            new_lines.append(SL.encode_record(rec))
        except ValueError as e:
            problems.append("record not archived: %s" % e)
            continue
        seen.add(key)
    if new_lines:
        archive.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".archive-", dir=archive.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                if archive.exists():
                    data = archive.read_bytes()
                    f.write(data)
                    if data and not data.endswith(b"\n"):
                        f.write(b"\n")
                f.writelines(new_lines)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, archive)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return len(new_lines), problems


def pull(
    port: str,
    dest: str | os.PathLike = "logs",
    *,
    device_dir: str = "",
    name: str = SL.DEFAULT_NAME,
    timeout: float = DEFAULT_TIMEOUT_S,
    soft_reset: bool = False,
    log=print,
) -> dict:
    """Copy the board's session logs into dest and merge them into the archive.

    Returns {"files": [local paths], "records": n, "added": n, "problems": [...]}.
    Raises LogsError (DeployError's message) if the board or a copy fails.
    """
    dest = Path(dest)
    device = Device(port, soft_reset=soft_reset, timeout=timeout)
    try:
        found = list_device_logs(device, device_dir, name)
        if not found:
            log("no session log on the board (%s)" % (device_dir or "its current folder"))
            return {"files": [], "records": 0, "added": 0, "problems": []}
        dest.mkdir(parents=True, exist_ok=True)
        copies = []
        for remote, _size in found:
            local = dest / Path(remote).name
            copies.append(["fs", "cp", ":" + remote, str(local)])
        # Copy, then let the board hash what it holds, in one connection.
        state = device.state((), [r for r, _ in found], before=tuple(copies))
    except DeployError as e:
        raise LogsError(str(e)) from e
    files = []
    mismatches = []
    for remote, _size in found:
        local = dest / Path(remote).name
        want = state.hashes.get(remote)
        got = hashlib.sha256(local.read_bytes()).hexdigest() if local.exists() else None
        if want is None or got != want:
            mismatches.append(
                "%s: copy %s does not match the board (sha256 %s, board %s)"
                % (remote, local, got, want)
            )
        files.append(local)
    if mismatches:
        raise LogsError("\n  ".join(["copy check failed:", *mismatches]))
    # Oldest first: sessions.1.log before sessions.log.
    rotated = SL.rotated_name(name)
    files.sort(key=lambda p: (p.name != rotated, p.name))
    records: list[dict] = []
    problems: list[str] = []
    for path in files:
        recs, probs = SL.read_file(str(path))
        records += recs
        problems += probs
        log("pulled %s: %d records%s" % (path, len(recs), ", %d damaged lines" % len(probs)
                                         if probs else ""))  # fmt: skip
    added, archive_problems = merge_into_archive(dest / ARCHIVE, records)
    problems += archive_problems
    log("%d new records in %s" % (added, dest / ARCHIVE))
    return {"files": [str(p) for p in files], "records": len(records), "added": added,
            "problems": problems}  # fmt: skip


# -- plot ------------------------------------------------------------------------------


def load(paths) -> tuple[list[dict], list[str]]:
    """Records from log files, duplicates (the same record in several files) once,
    in time order: dated ones by start time, undated ones in file order after them."""
    records: list[dict] = []
    problems: list[str] = []
    seen = set()
    for path in paths:
        if not Path(path).is_file():
            raise UsageError("cannot read log file %s: no such file" % path)
        recs, probs = SL.read_file(str(path))
        problems += probs
        for rec in recs:
            key = _record_key(rec)
            if key not in seen:
                seen.add(key)
                records.append(rec)
    dated = sorted((r for r in records if _start_s(r) is not None), key=_start_s)
    undated = [r for r in records if _start_s(r) is None]
    return dated + undated, problems


def _start_s(rec):
    s = rec.get("start_s")
    return s if isinstance(s, (int, float)) and not isinstance(s, bool) else None


def _num(rec, key, default=0.0):
    x = rec.get(key)
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else default


def daily_progress(records, tz=None) -> list[dict]:
    """Per calendar day (tz: a tzinfo, default this machine's local time) of the
    dated sessions: {"day", "sessions", "peak_angle_deg", "minutes_inverted"}."""
    days: dict[dt.date, dict] = {}
    for rec in records:
        s = _start_s(rec)
        if s is None:
            continue
        day = dt.datetime.fromtimestamp(s, tz).date()
        d = days.setdefault(day, {"day": day, "sessions": 0, "peak_angle_deg": None,
                                  "minutes_inverted": 0.0})  # fmt: skip
        d["sessions"] += 1
        peak = rec.get("peak_angle_deg")
        if isinstance(peak, (int, float)) and (d["peak_angle_deg"] is None
                                               or peak > d["peak_angle_deg"]):  # fmt: skip
            d["peak_angle_deg"] = float(peak)
        d["minutes_inverted"] += _num(rec, "inverted_s") / 60.0
    return [days[k] for k in sorted(days)]


def _label(rec, index, tz=None):
    s = _start_s(rec)
    when = (
        dt.datetime.fromtimestamp(s, tz).strftime("%Y-%m-%d %H:%M")
        if s is not None
        else "#%d (boot %s)" % (index + 1, rec.get("boot"))
    )
    return "%s %s" % (when, rec.get("ended", "?"))


def plot(records, out: str | os.PathLike, tz=None, title: str = "") -> Path:
    """Write the PNG (see the module doc); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_p) = plt.subplots(2, 1, figsize=(11, 9))
    cmap = plt.get_cmap("viridis")
    n = len(records)
    for i, rec in enumerate(records):
        series = [a for a in rec.get("angle_series_deg") or [] if isinstance(a, (int, float))]
        t_min = [k * SAMPLE_S / 60.0 for k in range(len(series))]
        ax_s.plot(t_min, series, lw=1.2, color=cmap(i / max(1, n - 1)),
                  label=_label(rec, i, tz))  # fmt: skip
    ax_s.axhline(0, color="grey", lw=0.8)
    ax_s.set_xlabel("time in session [min]")
    ax_s.set_ylabel("angle [deg]\n0 = flat, +90 = head-down")
    ax_s.set_title("angle against time, %d session%s" % (n, "" if n == 1 else "s"))
    if 0 < n <= 12:
        ax_s.legend(fontsize=7, loc="upper right")
    ax_s.grid(alpha=0.3)

    days = daily_progress(records, tz)
    ax_m = ax_p.twinx()
    undated = sum(1 for r in records if _start_s(r) is None)
    if days:
        x = [d["day"] for d in days]
        peak = [d["peak_angle_deg"] if d["peak_angle_deg"] is not None else float("nan")
                for d in days]  # fmt: skip
        ax_m.bar(x, [d["minutes_inverted"] for d in days], width=0.8, color="tab:orange",
                 alpha=0.4, label="minutes inverted per day")  # fmt: skip
        ax_p.plot(x, peak, "o-", color="tab:blue", label="peak angle per day")
        ax_p.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax_p.set_xlabel(
            "day" + (" (%d sessions without a date not shown)" % undated if undated else "")
        )
        for label in ax_p.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")
    else:
        # No clock ever set: by session number.
        x = list(range(1, n + 1))
        ax_m.bar(x, [_num(r, "inverted_s") / 60.0 for r in records], width=0.8,
                 color="tab:orange", alpha=0.4, label="minutes inverted")  # fmt: skip
        ax_p.plot(x, [_num(r, "peak_angle_deg", float("nan")) for r in records], "o-",
                  color="tab:blue", label="peak angle")  # fmt: skip
        ax_p.set_xlabel("session (no session has a date: the board's clock was not set)")
    # The progression panel reads left to right: keep the angle line above the bars.
    ax_p.set_zorder(ax_m.get_zorder() + 1)
    ax_p.patch.set_visible(False)
    ax_p.set_ylabel("peak angle [deg]", color="tab:blue")
    ax_m.set_ylabel("minutes inverted", color="tab:orange")
    ax_p.set_title("progression")
    ax_p.grid(alpha=0.3)
    lines = ax_p.get_legend_handles_labels()
    bars = ax_m.get_legend_handles_labels()
    ax_p.legend(lines[0] + bars[0], lines[1] + bars[1], fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


# -- command line ----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="logs_command", metavar="ACTION", required=True)
    p = sub.add_parser("pull", help="copy the session logs from a board (mpremote)")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    p.add_argument("--dest", default="logs", help="local folder (default %(default)s)")
    p.add_argument("--device-dir", default="", help="folder on the board (default: its current)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help="seconds one mpremote run may take (default %(default)s)")  # fmt: skip
    p.add_argument("--soft-reset", action="store_true",
                   help="soft-reset the board first (default: attach with `resume`)")  # fmt: skip
    q = sub.add_parser("plot", help="PNG: angle against time per session, progression per day")
    q.add_argument("logfiles", nargs="+", metavar="LOGFILE", help="session log files")
    q.add_argument("--out", required=True, help="the PNG to write")
    q.add_argument("--title", default="", help="a title for the figure")
    q.add_argument("--utc", action="store_true", help="days in UTC (default: local time)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.logs_command == "pull":
            result = pull(args.port, args.dest, device_dir=args.device_dir,
                          timeout=args.timeout, soft_reset=args.soft_reset)  # fmt: skip
            for p in result["problems"]:
                print("logs: warning: %s" % p, file=sys.stderr)
            return 0
        records, problems = load(args.logfiles)
        for p in problems:
            print("logs: warning: %s" % p, file=sys.stderr)
        if not records:
            print("logs: no session record in %s" % ", ".join(args.logfiles), file=sys.stderr)
            return 1
        out = plot(records, args.out, tz=dt.UTC if args.utc else None, title=args.title)
        print("wrote %s (%d sessions)" % (out, len(records)))
        return 0
    except UsageError as e:
        print("logs: %s" % e, file=sys.stderr)
        return 2
    except LogsError as e:
        print("logs: %s" % e, file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m host_tools logs",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
