"""The type check sees MicroPython, not CPython: `make typecheck` (host_tools/typecheck.py).

`make typecheck` runs pyright over the real tree (and `make test` needs it to
pass). These tests show the check would catch what it is there for: a module
or method the port does not have is an error, never quietly resolved from the
host's CPython; and every board file is checked against some port's stubs.
"""

import os

import pytest

from host_tools import typecheck as T


def test_every_board_file_belongs_to_a_port():
    ports = T.board_files()
    assert "boards/rpi_pico.py" in ports["rp2"]
    names = sorted(n for n in os.listdir(os.path.join(T.ROOT, "boards")) if n.endswith(".py"))
    covered = {f for files in ports.values() for f in files if f.startswith("boards/")}
    assert covered == {"boards/" + n for n in names}
    if os.path.isfile(os.path.join(T.ROOT, "main.py")):
        assert all(files[-1] == "main.py" for files in ports.values())


def test_a_board_file_of_no_port_is_refused(tmp_path):
    (tmp_path / "boards").mkdir()
    for name in ("rpi_pico.py", "_pins.py", "teensy.py"):
        (tmp_path / "boards" / name).write_text("")
    (tmp_path / "main.py").write_text("")
    with pytest.raises(T.TypecheckError, match=r"boards/teensy\.py"):
        T.board_files(tmp_path)
    (tmp_path / "boards" / "teensy.py").unlink()
    # main.py goes only with a port that has a board to run it on.
    assert T.board_files(tmp_path) == {
        "rp2": ["boards/_pins.py", "boards/rpi_pico.py", "main.py"],
        "esp32": ["boards/_pins.py"],
    }
    (tmp_path / "boards" / "esp32_devkitc.py").write_text("")
    assert T.board_files(tmp_path)["esp32"] == [
        "boards/_pins.py", "boards/esp32_devkitc.py", "main.py"]


PROBE = """\
import functools
import math
from array import array

from micropython import const

_N = const(3)


def probe(clock):
    buf = array("i", [0] * _N)
    buf[0] = math.gcd(4, 6)
    return clock.ticks_diff(1, 2) + functools.reduce(max, buf)
"""


@pytest.mark.parametrize("port", sorted(T.PORTS))
def test_pyright_flags_what_the_port_does_not_have(port, tmp_path):
    stubs = os.path.join(T.DEFAULT_STUBS, port)
    if not os.path.isdir(stubs):
        pytest.skip("no stubs in %s: `make typecheck` installs them" % stubs)
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "__init__.py").write_text("")
    (tmp_path / "firmware" / "probe.py").write_text(PROBE)
    diags, analyzed, _ = T.check_port(port, root=str(tmp_path), files=[],
                                      config_root=str(tmp_path / "cfg"))
    assert analyzed == 2
    found = sorted(
        (d["range"]["start"]["line"] + 1, d["rule"]) for d in diags if d["severity"] == "error"
    )
    # functools exists in CPython (and would resolve from the host's library
    # if the check leaked to it); MicroPython's math has no gcd().
    assert found == [(1, "reportMissingImports"), (12, "reportAttributeAccessIssue")]
