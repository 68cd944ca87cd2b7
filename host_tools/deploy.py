"""Deploy the firmware to a board with mpremote: compile, copy what changed, verify.

    python -m host_tools deploy --port /dev/ttyACM0 --board rpi_pico [--config FILE]
    make flash BOARD=rpi_pico PORT=/dev/ttyACM0 [CONFIG=FILE]

Steps:
1. compile firmware/ and boards/ with mpy-cross (`host_tools.build`);
2. ask the device for the SHA-256 of every file it holds under firmware/ and
   boards/ and of the root files deploy manages (one `mpremote exec`), and
   check that it loads this mpy-cross's .mpy version;
3. copy only the files whose hash differs (`mpremote fs cp`), remove stale
   files in the managed folders (a stale ``firmware/x.py`` would shadow the
   new ``firmware/x.mpy``: MicroPython prefers .py), with ``manifest.json``
   removed first so an interrupted deploy never leaves a manifest that
   vouches for half-copied files;
4. read every file's SHA-256 back from the device and compare; any mismatch
   fails naming the file, and no manifest is written;
5. write ``manifest.json`` last and verify it too.

What lands on the device (paths relative to the device's current folder, "/"
on a real board, the folder of a virtual board):

    firmware/**/*.mpy      compiled firmware
    boards/<board>.mpy     the chosen board's module (other boards are not copied)
    board.py               `from boards.<board> import *` and NAME = "<board>"
                           (main.py builds boards.<manifest board>.Board(), and
                           falls back to `import board` without a manifest)
    main.py, boot.py       the repo's, as source (if they exist)
    config.json            the --config file; without --config a config.json
                           already on the device is kept (and stays listed)
    manifest.json          {"board": "<board>", "files": {path: sha256 hex, ...}}
                           every file above except the manifest itself; the boot
                           self-test verifies the files against it

A second deploy with nothing changed copies nothing. Exit status: 0 deployed
(or verified), 1 deploy or verification failed (the message names the file),
2 bad command line (unknown board, unreadable config, or a config the
firmware would not take: --config FILE is checked as `config check` does,
naming each bad key, before anything is compiled or copied).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from host_tools import build

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BUILD_DIR = REPO / "build" / "device"

MANIFEST = "manifest.json"
CONFIG = "config.json"
BOARD_SHIM = "board.py"
MAIN = "main.py"
# Folders on the device that deploy owns: anything in them not deployed is removed.
MANAGED_DIRS = ("firmware", "boards")
# Root files deploy owns (besides those it writes): the other form of a module
# it deploys (board.mpy would be shadowed by board.py; main.mpy never runs).
ROOT_COUNTERPARTS = ("board.mpy", "main.mpy", "boot.mpy")

# Seconds one mpremote run may take; generous for a slow board or a loaded CI.
DEFAULT_TIMEOUT_S = 120.0

_TAG = "@@"  # prefix of the lines the device scripts print for us


class DeployError(Exception):
    """Deploy or verification failed; the message says which file and why."""


class UsageError(DeployError):
    """Bad input: unknown board, unreadable config (exit status 2)."""


# -- local side ----------------------------------------------------------------


def known_boards(repo: Path = REPO) -> list[str]:
    """Board names: the modules in boards/ (helpers start with an underscore)."""
    return sorted(p.stem for p in (repo / "boards").glob("*.py") if not p.stem.startswith("_"))


def check_board(board: str, repo: Path = REPO) -> None:
    boards = known_boards(repo)
    if board not in boards:
        raise UsageError(
            "unknown board %r; known boards (boards/*.py): %s"
            % (board, ", ".join(boards) or "none")
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def compile_firmware(out_dir: Path, repo: Path = REPO) -> Path:
    """Compile the firmware into out_dir (the one place that picks the compiler)."""
    out_dir = Path(out_dir)
    try:
        build.build(str(out_dir), root=str(repo))
    except build.BuildError as e:
        raise DeployError("build failed:\n  " + "\n  ".join(e.problems)) from e
    return out_dir


def board_shim(board: str) -> bytes:
    return (
        "# Written by host_tools.deploy: the board this device was flashed for.\n"
        "from boards.%s import *  # noqa: F403\n"
        "NAME = %r\n" % (board, board)
    ).encode()


def collect_files(
    build_dir: Path, board: str, repo: Path = REPO, config: bytes | None = None
) -> dict[str, bytes]:
    """Device path -> content for every file deploy writes, except the manifest."""
    boards = set(known_boards(repo))
    check_board(board, repo)
    files: dict[str, bytes] = {}
    for path in sorted(Path(build_dir).rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(build_dir).as_posix()
        parts = rel.split("/")
        if parts[0] == "boards" and len(parts) == 2:
            stem = parts[1].rsplit(".", 1)[0]
            if stem in boards and stem != board:
                continue  # another board's module
        files[rel] = path.read_bytes()
    if not any(p.startswith("firmware/") for p in files):
        raise DeployError("no compiled firmware in %s" % build_dir)
    if "boards/%s.mpy" % board not in files and "boards/%s.py" % board not in files:
        raise DeployError("board module boards/%s.mpy missing from %s" % (board, build_dir))
    main = repo / MAIN
    if MAIN not in files and main.is_file():
        files[MAIN] = main.read_bytes()
    files[BOARD_SHIM] = board_shim(board)
    if config is not None:
        files[CONFIG] = config
    return files


def make_manifest(board: str, hashes: dict[str, str]) -> bytes:
    """The manifest's bytes: deterministic, so an unchanged deploy rewrites nothing."""
    body = {"board": board, "files": dict(sorted(hashes.items()))}
    return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()


def read_config(path: str | os.PathLike) -> bytes:
    """The --config file's bytes, checked as the firmware reads config.json
    (host_tools/config_cmd.check_bytes) before anything touches the device: a
    file the firmware would not take raises UsageError naming each key."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError("cannot read config file %s: %s" % (path, e.strerror)) from e
    try:
        parsed = json.loads(data)
    except ValueError as e:
        raise UsageError("config file %s is not valid JSON: %s" % (path, e)) from e
    if not isinstance(parsed, dict):
        raise UsageError("config file %s must hold a JSON object" % path)
    from host_tools import config_cmd  # it imports this module

    problems, _sections = config_cmd.check_bytes(data, str(path))
    if problems:
        raise UsageError(
            "config file %s is not what the firmware takes (nothing written to the "
            "device):\n  %s" % (path, "\n  ".join(problems))
        )
    return data


# -- device side ---------------------------------------------------------------

# Runs on the board: prints the .mpy version it loads, then one line per file:
# "@@H<TAB>path<TAB>sha256 hex", or "@@M<TAB>path" for a missing one; then,
# if asked, the manifest's text on one line ("@@J<TAB>...").
_DEVICE_SCRIPT = """\
import os, sys, hashlib, binascii
def _vh(p):
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
    return binascii.hexlify(h.digest()).decode()
def _vw(d):
    try:
        es = list(os.ilistdir(d))
    except OSError:
        return
    for e in es:
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            _vw(p)
        else:
            print('@@H\\t' + p + '\\t' + _vh(p))
def _vf(p):
    try:
        print('@@H\\t' + p + '\\t' + _vh(p))
    except OSError:
        print('@@M\\t' + p)
print('@@V\\t' + str(getattr(sys.implementation, '_mpy', -1)))
for _d in %(dirs)r:
    _vw(_d)
for _p in %(files)r:
    _vf(_p)
if %(manifest)r:
    try:
        with open(%(manifest)r) as f:
            print('@@J\\t' + f.read().replace('\\n', ' '))
    except (OSError, ValueError):
        pass
"""


@dataclass
class DeviceState:
    mpy: int  # sys.implementation._mpy, -1 if unknown
    hashes: dict[str, str | None]  # path -> sha256 hex, None if missing
    manifest: dict | None = None  # the device's manifest.json, if asked and readable


class Device:
    """The board behind `port`, driven by the mpremote command line.

    Every connection attaches with `resume` (no soft reset): mpremote's Ctrl-C
    stops the running program and the raw REPL does the rest. A soft reset
    would end a virtual board's unix port, and on a real board it would also
    stop any timer the firmware left feeding the watchdog, which then resets
    the board mid-deploy. soft_reset=True: soft-reset on the first connection
    anyway (mpremote's default; a clean heap, boot.py runs, main.py does not).
    """

    def __init__(
        self,
        port: str,
        *,
        soft_reset: bool = False,
        timeout: float = DEFAULT_TIMEOUT_S,
        mpremote: list[str] | None = None,
    ) -> None:
        self.port = port
        self.timeout = timeout
        self.mpremote = mpremote or [sys.executable, "-m", "mpremote"]
        self._reset_pending = bool(soft_reset)

    def run(self, *commands: list[str]) -> str:
        """Run mpremote commands (chained with '+') in one connection; stdout."""
        argv = [*self.mpremote, "connect", self.port]
        if not self._reset_pending:
            argv.append("resume")
        for i, cmd in enumerate(commands):
            if i:
                argv.append("+")
            argv.extend(cmd)
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise DeployError(
                "mpremote on %s gave no answer within %.0f s (board busy, wrong port, or "
                "a program running that ignores Ctrl-C?)" % (self.port, self.timeout)
            ) from e
        except OSError as e:
            raise DeployError("cannot run mpremote (%s): %s" % (self.mpremote[0], e)) from e
        if proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
            raise DeployError("mpremote failed on %s: %s" % (self.port, detail))
        self._reset_pending = False
        return proc.stdout

    def state(
        self,
        dirs: tuple[str, ...],
        files: list[str],
        read_manifest: bool = False,
        before: tuple[list[str], ...] = (),
    ) -> DeviceState:
        """SHA-256 of every file under `dirs` and of each of `files`.

        before: mpremote commands run first in the same connection (copies).
        """
        script = _DEVICE_SCRIPT % {
            "dirs": list(dirs),
            "files": sorted(set(files)),
            "manifest": MANIFEST if read_manifest else "",
        }
        out = self.run(*before, ["exec", script])
        mpy = None
        manifest = None
        hashes: dict[str, str | None] = {}
        for line in out.splitlines():
            if not line.startswith(_TAG):
                continue
            fields = line.rstrip("\r").split("\t")
            if fields[0] == "@@V" and len(fields) == 2:
                mpy = int(fields[1])
            elif fields[0] == "@@H" and len(fields) == 3:
                hashes[fields[1]] = fields[2]
            elif fields[0] == "@@M" and len(fields) == 2:
                hashes[fields[1]] = None
            elif fields[0] == "@@J" and len(fields) == 2:
                try:
                    manifest = json.loads(fields[1])
                except ValueError:
                    manifest = None
        if mpy is None:
            raise DeployError("unexpected answer from the device on %s: %r" % (self.port, out))
        if not isinstance(manifest, dict):
            manifest = None
        return DeviceState(mpy=mpy, hashes=hashes, manifest=manifest)


def _remote_dirs(paths) -> list[str]:
    """Every parent folder of `paths`, parents first."""
    dirs = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def _prepare_script(remove: list[str], mkdirs: list[str]) -> str:
    return (
        "import os\n"
        "for _p in %r:\n"
        "    try:\n"
        "        os.remove(_p)\n"
        "    except OSError:\n"
        "        pass\n"
        "for _d in %r:\n"
        "    try:\n"
        "        os.mkdir(_d)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('@@OK')\n" % (remove, mkdirs)
    )


# -- deploy --------------------------------------------------------------------


@dataclass
class DeployResult:
    board: str
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    def summary(self) -> str:
        return "%d copied, %d unchanged, %d removed, %d verified (board %s)" % (
            len(self.copied),
            len(self.unchanged),
            len(self.removed),
            len(self.verified),
            self.board,
        )


def _check_mpy_version(state: DeviceState, files: dict[str, bytes], port: str) -> None:
    sample = next((d for p, d in sorted(files.items()) if p.endswith(".mpy")), None)
    if sample is None or state.mpy < 0:
        return
    if len(sample) < 2 or sample[0] != ord("M"):
        raise DeployError("compiled file is not an .mpy file (bad header)")
    if (state.mpy & 0xFF) != sample[1]:
        raise DeployError(
            "the board on %s loads .mpy version %d, mpy-cross made version %d: "
            "update the board's MicroPython (or the pinned mpy-cross)"
            % (port, state.mpy & 0xFF, sample[1])
        )


def _expected_config(state: DeviceState, files: dict[str, bytes]) -> str | None:
    """Without --config: the device's config.json is kept; its expected hash."""
    current = state.hashes.get(CONFIG)
    if CONFIG in files or current is None:
        return None
    recorded = None
    if state.manifest is not None and isinstance(state.manifest.get("files"), dict):
        recorded = state.manifest["files"].get(CONFIG)
    if recorded is not None and recorded != current:
        raise DeployError(
            "config.json on the device does not match its manifest (sha256 %s, manifest "
            "says %s): corrupted? deploy again with --config FILE" % (current, recorded)
        )
    return current


def _mismatches(expected: dict[str, str], actual: dict[str, str | None]) -> list[str]:
    problems = []
    for path, want in sorted(expected.items()):
        got = actual.get(path)
        if got is None:
            problems.append("%s: missing on the device" % path)
        elif got != want:
            problems.append("%s: sha256 on the device %s, expected %s" % (path, got, want))
    return problems


def _root_files(files) -> list[str]:
    return sorted({*[p for p in files if "/" not in p], *ROOT_COUNTERPARTS, MANIFEST, CONFIG})


@dataclass
class Plan:
    expected: dict[str, str]  # device path -> sha256 the device must hold (but the manifest)
    manifest: bytes  # the manifest to write
    copy: list[str]  # files whose hash differs on the device
    remove: list[str]  # stale files in the folders deploy owns


def _plan(files: dict[str, bytes], board: str, state: DeviceState) -> Plan:
    expected = {p: sha256_hex(d) for p, d in files.items()}
    kept_config = _expected_config(state, files)
    if kept_config is not None:
        expected[CONFIG] = kept_config
    copy = [p for p in sorted(files) if state.hashes.get(p) != expected[p]]
    wanted = set(files) | {MANIFEST, CONFIG}
    remove = sorted(
        p
        for p, h in state.hashes.items()
        if h is not None
        and p not in wanted
        and (p.split("/")[0] in MANAGED_DIRS or p in ROOT_COUNTERPARTS)
    )
    return Plan(expected, make_manifest(board, expected), copy, remove)


def _built(build_dir, tmp: str, repo: Path, skip_build: bool) -> Path:
    """The folder of compiled files: built now, or as it is with skip_build."""
    out = Path(build_dir) if build_dir is not None else Path(tmp) / "device"
    if skip_build:
        if not out.is_dir():
            raise DeployError("nothing built in %s (run `make build`, or drop --no-build)" % out)
        return out
    return compile_firmware(out, repo)


def deploy(
    port: str,
    board: str,
    config: str | os.PathLike | None = None,
    *,
    build_dir: str | os.PathLike | None = None,
    repo: Path = REPO,
    soft_reset: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    skip_build: bool = False,
    log=print,
) -> DeployResult:
    """Compile, copy what changed, verify; raises DeployError naming the file.

    skip_build: deploy build_dir as it is (already built by `make build`).
    """
    config_bytes = read_config(config) if config is not None else None
    check_board(board, repo)  # before compiling: a quick, clear refusal
    device = Device(port, soft_reset=soft_reset, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="deploy-") as tmp:
        out = _built(build_dir, tmp, repo, skip_build)
        files = collect_files(out, board, repo, config_bytes)

        state = device.state(MANAGED_DIRS, _root_files(files), read_manifest=True)
        _check_mpy_version(state, files, port)
        plan = _plan(files, board, state)
        copy, remove, manifest, expected = plan.copy, plan.remove, plan.manifest, plan.expected
        result = DeployResult(board=board, manifest=json.loads(manifest))
        result.unchanged = [p for p in sorted(files) if p not in copy]
        manifest_current = state.hashes.get(MANIFEST) == sha256_hex(manifest)

        if not copy and not remove and manifest_current:
            result.verified = sorted([*expected, MANIFEST])
            log("up to date: " + result.summary())
            return result

        # One connection: no manifest while files change, stale files out,
        # folders in, the changed files copied, then every hash read back.
        stage = Path(tmp) / "stage"
        cmds = [["exec", _prepare_script([MANIFEST, *remove], _remote_dirs(copy))]]
        for p in copy:
            local = stage / p
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(files[p])
            cmds.append(["fs", "cp", "-f", str(local), ":" + p])
        after = device.state((), list(expected), before=tuple(cmds))
        for p in copy:
            log("copied " + p)
        for p in remove:
            log("removed stale " + p)
        result.copied, result.removed = copy, remove
        problems = _mismatches(expected, after.hashes)
        if problems:
            raise DeployError(
                "verification failed on %s (no manifest written):\n  %s"
                % (port, "\n  ".join(problems))
            )
        # The manifest last, read back too.
        local_manifest = stage / MANIFEST
        local_manifest.parent.mkdir(parents=True, exist_ok=True)
        local_manifest.write_bytes(manifest)
        final = device.state(
            (), [MANIFEST], before=(["fs", "cp", "-f", str(local_manifest), ":" + MANIFEST],)
        )
        problems = _mismatches({MANIFEST: sha256_hex(manifest)}, final.hashes)
        if problems:
            raise DeployError("verification failed on %s:\n  %s" % (port, "\n  ".join(problems)))
        result.verified = sorted([*expected, MANIFEST])
        log("deployed: " + result.summary())
        return result


def verify(
    port: str,
    board: str,
    config: str | os.PathLike | None = None,
    *,
    build_dir: str | os.PathLike | None = None,
    repo: Path = REPO,
    soft_reset: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    skip_build: bool = False,
) -> list[str]:
    """Compare the device with what deploy would write; the problems (empty = ok)."""
    config_bytes = read_config(config) if config is not None else None
    device = Device(port, soft_reset=soft_reset, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
        out = _built(build_dir, tmp, repo, skip_build)
        files = collect_files(out, board, repo, config_bytes)
        state = device.state(MANAGED_DIRS, _root_files(files), read_manifest=True)
        try:
            plan = _plan(files, board, state)
        except DeployError as e:
            return [str(e)]
        problems = _mismatches(plan.expected, state.hashes)
        problems += _mismatches({MANIFEST: sha256_hex(plan.manifest)}, state.hashes)
        problems += ["%s: on the device but not deployed (stale)" % p for p in plan.remove]
        return problems


# -- command line --------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    parser.add_argument(
        "--board", required=True, help="board module in boards/: %s" % ", ".join(known_boards())
    )
    parser.add_argument("--config", help="JSON file written to the device as config.json")
    parser.add_argument(
        "--build-dir",
        default=str(DEFAULT_BUILD_DIR),
        help="where the compiled files go (default build/device)",
    )
    parser.add_argument(
        "--no-build",
        dest="skip_build",
        action="store_true",
        help="deploy --build-dir as it is (e.g. after `make build`)",
    )
    parser.add_argument(
        "--verify-only",
        action="store_true",
        help="copy nothing: compare the device with what deploy would write",
    )
    parser.add_argument(
        "--soft-reset",
        action="store_true",
        help="soft-reset the board before deploying (default: attach with mpremote's "
        "`resume`; a soft reset ends a virtual board)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds one mpremote run may take (default %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.verify_only:
            problems = verify(
                args.port,
                args.board,
                args.config,
                build_dir=args.build_dir,
                soft_reset=args.soft_reset,
                timeout=args.timeout,
                skip_build=args.skip_build,
            )
            if problems:
                print(
                    "verification failed on %s:\n  %s" % (args.port, "\n  ".join(problems)),
                    file=sys.stderr,
                )
                return 1
            print("verified: the device on %s matches the build" % args.port)
            return 0
        deploy(
            args.port,
            args.board,
            args.config,
            build_dir=args.build_dir,
            soft_reset=args.soft_reset,
            timeout=args.timeout,
            skip_build=args.skip_build,
        )
        return 0
    except UsageError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 2
    except DeployError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m host_tools deploy", description=__doc__.split("\n")[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
