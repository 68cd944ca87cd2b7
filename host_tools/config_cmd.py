"""`python -m host_tools config ...`: the board's config.json, checked before it goes on.

    config check FILE             check a config file as the firmware reads it
    config show --port P          read config.json from a board, print it, check it
    config push FILE --port P     check, then write it to the board safely, verified

The check is the firmware's own reader (firmware/device_config.py, with
firmware/config.py's Table, Limits and Program): sections table (required),
limits (optional, may only tighten the hard caps) and program (required; on
a board with a therapy profile it is the ceiling of the profile's
programs). Every problem names the section, the key and the allowed range;
JSON errors name the line and column. On the host a key given twice in one
object is refused too (the board's JSON reader would keep the last one).

push writes `config.json.tmp`, checks its SHA-256 on the board, then renames
it over config.json (a rename replaces the file in one step: a power loss
leaves the old config or the new one). If the board has a manifest.json
(written by `deploy`; the boot self-test checks every file it lists), its
config.json entry is updated the same way, so the self-test keeps passing.
The board reads config.json at boot: reset it to apply.

Exit status: 0 good (check, show) or written and verified (push); 1 the
config is bad (nothing written) or the board failed (the message says
which); 2 a file that cannot be read, or a bad command line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import sim  # noqa: F401  (on CPython the firmware's `micropython` comes from sim/mpshim)
from firmware import device_config
from host_tools import deploy as D

CONFIG = D.CONFIG  # "config.json", relative to the board's root
MANIFEST = D.MANIFEST

# Runs on the board: "@@F<TAB>hex of the file" or "@@M" when it is missing.
_READ_SCRIPT = """\
import binascii
try:
    with open(%r, 'rb') as f:
        print('@@F\\t' + binascii.hexlify(f.read()).decode())
except OSError:
    print('@@M')
"""

# Runs on the board: rename each (tmp, final) pair; a file system whose rename
# does not replace an existing file gets the old one removed first.
_RENAME_SCRIPT = """\
import os
for _t, _f in %r:
    try:
        os.rename(_t, _f)
    except OSError:
        try:
            os.remove(_f)
        except OSError:
            pass
        os.rename(_t, _f)
print('@@OK')
"""

_REMOVE_SCRIPT = """\
import os
for _p in %r:
    try:
        os.remove(_p)
    except OSError:
        pass
"""


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey("key '%s' is given twice in one object" % key)
        seen[key] = value
    return seen


def check_bytes(data: bytes, name: str = CONFIG):
    """(problems, sections): problems [] when good; sections the objects read."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return ["%s is not UTF-8 text (byte %d)" % (name, e.start)], {}
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        return ["%s: %s" % (name, e)], {}
    except json.JSONDecodeError as e:
        return ["%s is not valid JSON: %s at line %d, column %d"
                % (name, e.msg, e.lineno, e.colno)], {}
    sections, problems = device_config.read_sections(parsed, name)
    if not problems and all(k in sections for k in ("program", "limits", "table")):
        # Each section reads cleanly, but together they may still refuse
        # every session: the firmware would wait at home saying why.
        from sim.runner import program_refusal

        refusal = program_refusal(sections["program"], sections["limits"], sections["table"])
        if refusal is not None:
            problems.append(refusal)
    return problems, sections


def summary(sections) -> list[str]:
    """What the firmware will run with, one line per section."""
    t = sections["table"]
    lim = sections["limits"]
    p = sections["program"]
    lines = [
        "table:   home %.1f deg, lever %.3f m, base %.3f m, phi offset %.1f deg, actuator "
        "%.3f m/s, IMU offset %.2f deg" % (t.home_mdeg / 1000, t.lever_m, t.base_m,
                                           t.phi_offset_deg, t.noload_speed_mps,
                                           t.imu_mount_offset_mdeg / 1000),
        "limits:  angle <= %.1f deg, head-down <= %.2f deg/s, rate <= %.2f deg/s, accel <= "
        "%.1f deg/s^2, jerk <= %.1f deg/s^3, emergency return %.2f deg/s"
        % (lim.setpoint_max_mdeg / 1000, lim.head_down_rate_max_mdps / 1000,
           lim.rate_max_mdps / 1000, lim.accel_max_mdps2 / 1000, lim.jerk_max_mdps3 / 1000,
           lim.emergency_rate_mdps / 1000),
    ]
    rock = "no rocking"
    if p.rock_amplitude_mdeg > 0:
        rock = "rocking +-%.1f deg, %.0f s period, %d cycles" % (
            p.rock_amplitude_mdeg / 1000, p.rock_period_ms / 1000, p.rock_cycles)
    lines.append(
        "program: %.1f deg, hold %.0f s, %s, down %.2f / up %.2f deg/s, rest %.0f s at %.1f "
        "deg (the ceiling of a therapy profile's programs)"
        % (p.target_mdeg / 1000, p.hold_ms / 1000, rock, p.descent_rate_mdps / 1000,
           p.return_rate_mdps / 1000, p.rest_ms / 1000, p.rest_mdeg / 1000))
    return lines


def _report(name: str, problems, sections) -> int:
    out = sys.stdout
    if problems:
        print("%s: REFUSED (the board would run on conservative defaults):" % name,
              file=sys.stderr)
        for problem in problems:
            print("  - " + problem, file=sys.stderr)
        return 1
    print("%s: OK" % name, file=out)
    for line in summary(sections):
        print("  " + line, file=out)
    return 0


def _read_local(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise D.UsageError("cannot read %s: %s" % (path, e.strerror)) from e


# -- the board -----------------------------------------------------------------


def read_remote(device: D.Device, remote: str) -> bytes | None:
    """A file's bytes from the board, None when it is not there."""
    out = device.run(["exec", _READ_SCRIPT % remote])
    for raw in out.splitlines():
        line = raw.rstrip("\r")
        if line == "@@M":
            return None
        if line.startswith("@@F\t"):
            return bytes.fromhex(line[4:])
    raise D.DeployError("unexpected answer from the board on %s: %r" % (device.port, out[-500:]))


def push_file(device: D.Device, remote: str, data: bytes, update_manifest: bool,
              log=print) -> dict:
    """Write `data` to `remote` on the board: a temporary name, checked by
    SHA-256, then renamed over it, verified again. With update_manifest, the
    manifest's entry for `remote` (if the board has a manifest) follows the
    same way. Returns {path: sha256} as verified on the board."""
    digest = D.sha256_hex(data)
    state = device.state((), [remote, MANIFEST], read_manifest=update_manifest)
    staged = {remote: data}
    if update_manifest and state.manifest is not None:
        manifest = state.manifest
        files = manifest.get("files")
        if not isinstance(files, dict) or not isinstance(manifest.get("board"), str):
            raise D.DeployError("manifest.json on the board is not a deploy manifest: deploy "
                                "first (python -m host_tools deploy)")
        files = dict(files)
        files[remote] = digest
        staged[MANIFEST] = D.make_manifest(manifest["board"], files)
    elif update_manifest and state.hashes.get(MANIFEST) is not None:
        raise D.DeployError("manifest.json on the board cannot be read: deploy first "
                            "(python -m host_tools deploy)")
    expected = {path: D.sha256_hex(blob) for path, blob in staged.items()}
    with tempfile.TemporaryDirectory(prefix="push-") as tmp:
        copies = []
        for path, blob in staged.items():
            local = Path(tmp) / path.replace("/", "_")
            local.write_bytes(blob)
            copies.append(["fs", "cp", "-f", str(local), ":" + path + ".tmp"])
        written = device.state((), [p + ".tmp" for p in staged], before=tuple(copies))
    bad = D._mismatches({p + ".tmp": h for p, h in expected.items()}, written.hashes)
    if bad:
        device.run(["exec", _REMOVE_SCRIPT % [p + ".tmp" for p in staged]])
        raise D.DeployError("the copy to the board failed verification (nothing replaced):\n  "
                            + "\n  ".join(bad))
    # The file first, then the manifest that vouches for it.
    pairs = [(p + ".tmp", p) for p in sorted(staged, key=lambda p: p == MANIFEST)]
    final = device.state((), list(staged), before=(["exec", _RENAME_SCRIPT % pairs],))
    bad = D._mismatches(expected, final.hashes)
    if bad:
        raise D.DeployError("verification after the rename failed:\n  " + "\n  ".join(bad))
    for path in staged:
        log("wrote %s (sha256 %s), verified" % (path, expected[path][:16]))
    if update_manifest and MANIFEST not in staged:
        log("note: no manifest.json on the board (not deployed with `deploy`): only %s written"
            % remote)
    return expected


# -- commands ------------------------------------------------------------------


def cmd_check(args) -> int:
    data = _read_local(args.file)
    problems, sections = check_bytes(data, args.file)
    return _report(args.file, problems, sections)


def cmd_show(args) -> int:
    device = D.Device(args.port, timeout=args.timeout)
    data = read_remote(device, CONFIG)
    if data is None:
        print("%s on %s: no such file: the firmware runs on conservative defaults "
              "(push one with `config push FILE --port %s`)" % (CONFIG, args.port, args.port),
              file=sys.stderr)
        return 1
    print("# %s on %s (%d bytes, sha256 %s)" % (CONFIG, args.port, len(data),
                                                D.sha256_hex(data)))
    print(data.decode("utf-8", "replace").rstrip("\n"))
    problems, sections = check_bytes(data, CONFIG)
    return _report("%s on %s" % (CONFIG, args.port), problems, sections)


def cmd_push(args) -> int:
    data = _read_local(args.file)
    problems, sections = check_bytes(data, args.file)
    if problems:
        _report(args.file, problems, sections)
        print("config push: nothing written to %s" % args.port, file=sys.stderr)
        return 1
    device = D.Device(args.port, timeout=args.timeout)
    push_file(device, CONFIG, data, update_manifest=True)
    print("config push: %s is on %s; reset the board to run with it" % (args.file, args.port))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="check a config file as the firmware reads it")
    check.add_argument("file", help="the config JSON file")
    check.set_defaults(config_run=cmd_check)
    show = sub.add_parser("show", help="read config.json from a board and check it")
    show.set_defaults(config_run=cmd_show)
    push = sub.add_parser("push", help="check a config file, then write it to a board, verified")
    push.add_argument("file", help="the config JSON file")
    push.set_defaults(config_run=cmd_push)
    for p in (show, push):
        p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
        p.add_argument("--timeout", type=float, default=D.DEFAULT_TIMEOUT_S,
                       help="seconds one mpremote run may take (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        return args.config_run(args)
    except D.UsageError as e:
        print("config: %s" % e, file=sys.stderr)
        return 2
    except D.DeployError as e:
        print("config: %s" % e, file=sys.stderr)
        return 1
