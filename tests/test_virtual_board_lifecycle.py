"""The virtual board (host_tools/virtual_board.py) that the deploy tests flash.

The MicroPython unix port on a raw pseudo-terminal, relayed to a second one
that the real mpremote opens like a serial port. These tests protect what the
deploy tests rely on: mpremote reaches the interpreter, the board's files are
its temporary folder, and starting, stopping or losing the board leaves no
process, thread, descriptor or folder behind and never leaves a client
waiting forever.
"""

import gc
import os
import signal
import threading
import time

import pytest

from host_tools.virtual_board import VirtualBoard, VirtualBoardError

# Generous: a loaded 2-core CI machine.
TIMEOUT_S = 60


def _open_fds():
    gc.collect()  # a file object of an earlier test, closed now rather than mid-test
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass  # the listing's own descriptor, already closed
    return fds


def _leaked(before):
    """Descriptors opened since `before` and still open (pty ends, pipes...)."""
    return {fd: target for fd, target in _open_fds().items() if before.get(fd) != target}


def _relay_threads():
    return [t for t in threading.enumerate() if t.name == "virtual-board-relay"]


def _group_gone(pid):
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_mpremote_runs_code_and_sees_the_board_folder(tmp_path):
    local = tmp_path / "hello.txt"
    local.write_bytes(b"hello board\n")
    with VirtualBoard() as vb:
        assert vb.port.startswith("/dev/pts/")
        out = vb.mpremote("exec", "print(6 * 7)", timeout=TIMEOUT_S)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "42"

        # Files mpremote writes land in vb.root, and the board reads them back.
        out = vb.mpremote("fs", "cp", str(local), ":hello.txt", timeout=TIMEOUT_S)
        assert out.returncode == 0, out.stderr
        assert (vb.root / "hello.txt").read_bytes() == b"hello board\n"
        out = vb.mpremote("exec", "print(open('hello.txt').read())", timeout=TIMEOUT_S)
        assert out.stdout.strip() == "hello board"

        # sys.path as on a board, relative to the board's folder.
        out = vb.mpremote("exec", "import sys, os; print(sys.path)", timeout=TIMEOUT_S)
        assert out.stdout.strip() == "['', '.frozen', 'lib']"


def test_consecutive_clients_reuse_the_same_interpreter():
    with VirtualBoard() as vb:
        pid = vb.proc.pid
        assert vb.mpremote("exec", "shared = 5", timeout=TIMEOUT_S).returncode == 0
        out = vb.mpremote("exec", "print(shared + 1)", timeout=TIMEOUT_S)
        assert out.stdout.strip() == "6"
        assert vb.alive and vb.proc.pid == pid


def test_stop_leaves_no_process_thread_descriptor_or_folder():
    fds_before = _open_fds()
    threads_before = _relay_threads()
    vb = VirtualBoard()
    with vb:
        assert vb.alive
        root, pid = vb.root, vb.proc.pid
        assert root.is_dir()
        assert vb.mpremote("exec", "print(1)", timeout=TIMEOUT_S).returncode == 0
    assert vb.proc.returncode is not None
    assert _group_gone(pid)
    assert not root.exists()
    assert _relay_threads() == threads_before
    assert _leaked(fds_before) == {}
    vb.stop()  # idempotent


def test_a_given_root_is_kept(tmp_path):
    with VirtualBoard(tmp_path / "board") as vb:
        assert vb.mpremote("exec", "open('x', 'w').write('1')", timeout=TIMEOUT_S).returncode == 0
    assert (tmp_path / "board" / "x").read_text() == "1"


def test_board_exit_fails_the_client_at_once_instead_of_hanging():
    fds_before = _open_fds()
    with VirtualBoard() as vb:
        # SystemExit ends the unix port (as a soft reset would).
        vb.mpremote("exec", "import sys; sys.exit(3)", timeout=TIMEOUT_S)
        deadline = time.monotonic() + TIMEOUT_S
        while vb.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not vb.alive
        started = time.monotonic()
        out = vb.mpremote("exec", "print(1)", timeout=TIMEOUT_S)
        assert out.returncode != 0
        assert time.monotonic() - started < TIMEOUT_S / 2
    assert _leaked(fds_before) == {}
    assert _relay_threads() == []


def test_an_interpreter_that_exits_at_once_is_reported(tmp_path):
    fds_before = _open_fds()
    with pytest.raises(VirtualBoardError, match="exited"):
        VirtualBoard(micropython="/bin/false").start()
    assert _leaked(fds_before) == {}
    assert _relay_threads() == []


def test_an_interpreter_that_never_prompts_times_out_and_is_killed(tmp_path):
    fake = tmp_path / "silent"
    fake.write_text("#!/bin/sh\necho starting\nexec sleep 600\n")
    fake.chmod(0o755)
    fds_before = _open_fds()
    vb = VirtualBoard(micropython=str(fake), startup_timeout=1.0)
    with pytest.raises(VirtualBoardError, match="no prompt") as err:
        vb.start()
    assert "starting" in str(err.value)  # what it printed, for diagnosis
    assert vb.proc.returncode == -signal.SIGTERM
    assert _group_gone(vb.proc.pid)
    assert _leaked(fds_before) == {}
