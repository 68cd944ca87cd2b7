"""The session log on the real MicroPython interpreter (unix port, 1.29).

What these tests protect:
- firmware/session_log.py runs on MicroPython with only what it has (open,
  os.stat/rename/remove, json, binascii.crc32, errno): it appends across a
  rotation and reads back what it wrote;
- a log written by MicroPython reads the same on the host (CPython) and the
  other way round: the CRC and the line format agree between the two
  (MicroPython's json orders keys differently; the CRC covers the bytes as
  written, so that does not matter);
- on MicroPython too, a cut at every byte of the current file reads without
  an exception and loses at most the record being written, and the next
  append after the cut is intact;
- the compiled .mpy (what a board runs) behaves the same as the source.
"""

import json
import os
import subprocess
import textwrap

import pytest

from firmware import session_log as SL
from sim.micropython_runtime import MicroPythonUnavailable, find_micropython, find_mpy_cross

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECORD = """
def record(i, samples):
    return {
        "v": 1, "boot": i // 3, "start_s": None if i % 4 == 0 else 1780000000 + 43200 * i,
        "start_ms": (1073741824 - 5000 + 977 * i) & 0x3FFFFFFF,
        "program": {"target_angle_deg": 15.0 + i, "hold_s": 60.0,
                    "rock_amplitude_deg": 5.0, "rock_period_s": 10.0},
        "peak_angle_deg": 15.25 + i, "inverted_s": 61.5 + i, "duration_s": 120.25 + i,
        "ended": ("completed", "released", "fault", "power_loss")[i % 4],
        "faults": ["imu_lost"] if i % 5 == 4 else [],
        "angle_series_deg": [((i * 7 + k * 13) % 900) / 10 for k in range(samples)],
    }
"""


def run_mp(script, cwd, path=ROOT):
    try:
        exe = find_micropython()
    except MicroPythonUnavailable as err:
        pytest.skip(str(err))
    proc = subprocess.run(
        [exe, "-c", RECORD + textwrap.dedent(script)], cwd=cwd,
        env=dict(os.environ, MICROPYPATH=path + ":.frozen"),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _records_py(n, samples=20):
    ns = {}
    exec(RECORD, ns)
    return [ns["record"](i, samples) for i in range(n)]


WRITE_AND_CUT = """
import json, os
from firmware.session_log import SessionLog, read_records, parse_log
log = SessionLog("log", max_bytes=4096)
for i in range(16):
    log.append(record(i, 20))
recs, problems = read_records("log")
with open("log/sessions.log", "rb") as f:
    data = f.read()
with open("orig.log", "wb") as f:
    f.write(data)
counts = []
n_problems = []
for cut in range(len(data) + 1):
    r, p = parse_log(data[:cut], "x")
    counts.append(len(r))
    n_problems.append(len(p))
# The next boot's append after a cut in the middle of the last line.
ends = [i for i in range(len(data)) if data[i] == 10]
with open("log/sessions.log", "wb") as f:
    f.write(data[: ends[-2] + 20])
log.append(record(99, 3))
after, after_problems = read_records("log")
print(json.dumps({"n": len(recs), "problems": problems, "rotations": log.rotations,
                  "counts": counts, "n_problems": n_problems,
                  "after": [r["boot"] for r in after], "after_problems": after_problems}))
"""


def test_micropython_writes_rotates_and_reads_its_log(tmp_path):
    (tmp_path / "log").mkdir()
    out = run_mp(WRITE_AND_CUT, tmp_path)
    assert out["rotations"] == 1 and out["problems"] == []
    expected = _records_py(16)
    data = (tmp_path / "orig.log").read_bytes()  # sessions.log before the cut
    older, p1 = SL.read_file(str(tmp_path / "log" / "sessions.1.log"))
    current, p2 = SL.parse_log(data)
    host = older + current
    assert p1 == p2 == []
    assert host == expected[-len(host):]  # MicroPython's files read the same on the host
    assert out["n"] == len(host)

    # Every cut offset: MicroPython finds the records the host finds.
    ends = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    for cut in range(len(data) + 1):
        complete = sum(1 for e in ends if e <= cut) + ((cut + 1) in ends)
        assert out["counts"][cut] == complete, cut
        partial = cut not in (0, *ends) and (cut + 1) not in ends
        assert out["n_problems"][cut] == partial, cut
    # After the cut: one record lost (the cut one), the new one intact behind it.
    before = [r["boot"] for r in host]
    assert out["after"] == [*before[:-1], 99 // 3]
    after, _ = SL.read_records(str(tmp_path / "log"))
    assert [r["boot"] for r in after] == out["after"]
    assert len(out["after_problems"]) == 1 and "cut short" in out["after_problems"][0]


def test_host_written_log_reads_the_same_on_micropython(tmp_path):
    log = SL.SessionLog(str(tmp_path / "log"), max_bytes=4096)
    (tmp_path / "log").mkdir()
    recs = _records_py(16)
    for r in recs:
        log.append(r)
    out = run_mp("""
        import json
        from firmware.session_log import read_records
        recs, problems = read_records("log")
        print(json.dumps({"recs": recs, "problems": problems}))
    """, tmp_path)  # fmt: skip
    assert out["problems"] == []
    assert out["recs"] == recs[-len(out["recs"]):]
    assert len(out["recs"]) >= 5


def test_compiled_mpy_behaves_like_the_source(tmp_path):
    try:
        cross = find_mpy_cross()
    except MicroPythonUnavailable as err:
        pytest.skip(str(err))
    lib = tmp_path / "lib" / "firmware"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    subprocess.run([cross, "-o", str(lib / "session_log.mpy"), "-s", "session_log.py",
                    os.path.join(ROOT, "firmware", "session_log.py")], check=True)  # fmt: skip
    (tmp_path / "log").mkdir()
    out = run_mp("""
        import json
        import firmware.session_log as SL
        log = SL.SessionLog("log", max_bytes=4096)
        for i in range(16):
            log.append(record(i, 20))
        recs, problems = SL.read_records("log")
        print(json.dumps({"file": SL.__file__, "n": len(recs), "problems": problems}))
    """, tmp_path, path=str(tmp_path / "lib"))  # fmt: skip
    assert out["file"].endswith("session_log.mpy")
    host, problems = SL.read_records(str(tmp_path / "log"))
    assert problems == [] and out["problems"] == []
    assert out["n"] == len(host) and host == _records_py(16)[-len(host):]


def test_reading_without_series_keeps_little_ram_on_micropython(tmp_path):
    """keep_series=False (what progression rules need on the board) keeps every
    record but not its angle series: a full log (two 16 KB files) then holds
    a fraction of the RAM. Measured with gc.mem_alloc() on the unix port
    (64-bit: objects are about twice their size on an RP2040)."""
    (tmp_path / "log").mkdir()
    log = SL.SessionLog(str(tmp_path / "log"))  # the default 16 KB
    for r in _records_py(60, samples=61):  # 5-minute sessions
        log.append(r)
    assert log.rotations >= 1
    out = run_mp("""
        import gc, json
        from firmware.session_log import read_records
        def held(keep):
            gc.collect()
            m0 = gc.mem_alloc()
            recs, problems = read_records("log", keep_series=keep)
            gc.collect()
            return len(recs), problems, gc.mem_alloc() - m0, recs
        n_full, p_full, full, _ = held(True)
        n_lean, p_lean, lean, recs = held(False)
        print(json.dumps({"n": [n_full, n_lean], "problems": p_full + p_lean,
                          "full": full, "lean": lean,
                          "series": ["angle_series_deg" in r for r in recs]}))
    """, tmp_path)  # fmt: skip
    host, _ = SL.read_records(str(tmp_path / "log"))
    assert out["n"] == [len(host), len(host)] and out["problems"] == []
    assert not any(out["series"])
    assert out["lean"] * 3 < out["full"], out
    print("RAM held by %d records: %d bytes with series, %d without" % (
        len(host), out["full"], out["lean"]))  # fmt: skip
