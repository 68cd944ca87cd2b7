"""The session log (firmware/session_log.py) survives power loss at any byte.

What these tests protect:
- a log cut at EVERY byte offset (a reset mid-write) reads without an
  exception: every record whose line was complete is returned, in order; at
  most the record being written is lost, and it is named in the problems;
- after such a cut the next boot's append lands intact (the cut line cannot
  swallow it) and nothing before it is lost;
- a single damaged byte anywhere costs at most the record holding it;
- a reset at each step of rotation (before/after removing the old file,
  after the rename, in the middle of the new line's write) loses nothing but
  the record being written (the older .1 records were being dropped anyway);
- the log stays within its bound and keeps the newest records in order;
- bad records and bad settings are refused naming the field and the range.
"""

import os

import pytest

from firmware import session_log as SL
from firmware.session_log import SessionLog, read_records

MAX_BYTES = 4096


@pytest.fixture(autouse=True)
def _no_host_sync(monkeypatch):
    """os.sync() flushes every file system of the host: slow on a busy machine and
    no part of what these tests check (the power cuts are simulated on the bytes).
    test_append_syncs_where_the_port_can checks that append does call it."""
    monkeypatch.setattr(SL, "_sync", lambda: None)


def record(i, samples=20):
    return {
        "v": 1,
        "boot": i // 3,
        "start_s": None if i % 4 == 0 else 1_780_000_000 + 43_200 * i,
        "start_ms": ((1 << 30) - 5000 + 977 * i) & ((1 << 30) - 1),  # crosses the wrap
        "program": {"target_angle_deg": 15.0 + i, "hold_s": 60.0, "rock_amplitude_deg": 0.0,
                    "rock_period_s": 10.0},
        "peak_angle_deg": 15.0 + i + 0.25,
        "inverted_s": 61.5 + i,
        "duration_s": 120.25 + i,
        "ended": SL.ENDED[i % 4],
        "faults": ["imu_lost"] if i % 5 == 4 else [],
        "angle_series_deg": [round(0.1 * ((i * 7 + k * 13) % 900), 1) for k in range(samples)],
    }  # fmt: skip


def _write_log(directory, n, samples=20):
    log = SessionLog(str(directory), max_bytes=MAX_BYTES)
    recs = [record(i, samples) for i in range(n)]
    for r in recs:
        log.append(r)
    return log, recs


def _line_ends(data):
    """Offsets just past each newline."""
    return [i + 1 for i, b in enumerate(data) if b == 0x0A]


def test_records_round_trip_across_a_rotation(tmp_path):
    log, recs = _write_log(tmp_path, 14)
    assert log.rotations >= 1
    got, problems = read_records(str(tmp_path))
    assert problems == []
    # Everything since the rotation, oldest first, and the newest is last.
    assert got == recs[-len(got):]
    assert len(got) >= 7


def test_cut_at_every_offset_loses_at_most_the_record_being_written(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    log, recs = _write_log(src, 16)
    assert log.rotations == 1
    older = (src / "sessions.1.log").read_bytes()
    current = (src / "sessions.log").read_bytes()
    older_recs, _ = SL.parse_log(older)
    ends = _line_ends(current)
    assert len(ends) >= 3
    n_current = len(ends)
    current_recs = recs[-n_current:]
    assert older_recs + current_recs == recs[-len(older_recs) - n_current:]
    next_boot = record(99)
    next_line = SL.encode_record(next_boot)

    work = tmp_path / "work"
    work.mkdir()
    cut_problems = 0
    for cut in range(len(current) + 1):
        (work / "sessions.1.log").write_bytes(older)
        (work / "sessions.log").write_bytes(current[:cut])
        got, problems = read_records(str(work))
        complete = sum(1 for e in ends if e <= cut)
        # A last line missing only its newline still checks out (the CRC covers the rest).
        whole_but_newline = (cut + 1) in ends
        expected = older_recs + current_recs[: complete + whole_but_newline]
        assert got == expected, "cut at %d" % cut
        partial = cut not in ends and cut != 0 and not whole_but_newline
        assert bool(problems) == partial, (cut, problems)
        if partial:
            cut_problems += 1
            assert len(problems) == 1 and "cut short" in problems[0]
            assert problems[0].startswith(str(work / "sessions.log") + " line %d:" % (complete + 1))

        # The next boot appends: the cut line cannot swallow the new record.
        # (If the file is too full for it, it rotates first: the old .1 goes.)
        SessionLog(str(work), max_bytes=MAX_BYTES).append(next_boot)
        rotated = cut > 0 and cut + len(next_line) + 1 > MAX_BYTES
        got, problems = read_records(str(work))
        kept = current_recs[: complete + whole_but_newline]
        assert got == ([] if rotated else older_recs) + kept + [next_boot], "append after %d" % cut
        assert len(problems) == partial, (cut, problems)
    assert cut_problems > len(current) // 2


def test_cut_in_the_rotated_file_reads_without_exception(tmp_path):
    _, _ = _write_log(tmp_path, 12)
    older = (tmp_path / "sessions.1.log").read_bytes()
    ends = _line_ends(older)
    whole, _ = SL.parse_log(older)
    for cut in range(0, len(older) + 1, 7):
        got, problems = SL.parse_log(older[:cut], "x")
        complete = sum(1 for e in ends if e <= cut) + ((cut + 1) in ends)
        assert got == whole[:complete]
        assert len(problems) <= 1


def test_one_damaged_byte_costs_at_most_its_own_record(tmp_path):
    _, recs = _write_log(tmp_path, 6, samples=8)
    data = (tmp_path / "sessions.log").read_bytes()
    whole, problems = SL.parse_log(data)
    assert problems == [] and whole == recs
    ends = [0, *_line_ends(data)]
    for pos in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[pos] ^= flip
            got, problems = SL.parse_log(bytes(damaged), "x")
            hit = max(i for i, e in enumerate(ends) if e <= pos)  # index of the line hit
            others = whole[:hit] + whole[hit + 1:]
            # Every other record survives, in order (the hit one may survive a
            # harmless change, e.g. a flipped newline resynchronised).
            assert [r for r in got if r in others] == others, (pos, flip)
            assert len(got) >= len(whole) - 1
            assert all(r in whole for r in got)


def test_glued_cut_line_gives_up_only_the_cut_record(tmp_path):
    a, b = SL.encode_record(record(1)), SL.encode_record(record(2))
    # A writer without the newline repair: a cut line, then the next record glued on.
    got, problems = SL.parse_log(a + a[:40] + b, "log")
    assert got == [record(1), record(2)]
    assert problems == ["log line 2: 40 damaged bytes before a good record skipped"]


class PowerCut(Exception):
    pass


class _FlakyOS:
    """os as session_log sees it, losing power before the k-th file-system change."""

    def __init__(self, cut_at):
        self.cut_at = cut_at
        self.changes = 0
        self.stat = os.stat

    def _change(self):
        if self.changes == self.cut_at:
            raise PowerCut
        self.changes += 1

    def remove(self, path):
        self._change()
        os.remove(path)

    def rename(self, a, b):
        self._change()
        os.rename(a, b)

    def sync(self):
        pass


class _CutFile:
    """A file opened for append that loses power after `keep` bytes of the write."""

    def __init__(self, path, keep):
        if keep < 0:
            raise PowerCut  # before the new file is even created
        self.f = open(path, "ab")
        self.keep = keep

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[: self.keep])
        raise PowerCut

    def flush(self):
        self.f.flush()


@pytest.mark.parametrize(
    "step",
    ["before_remove", "after_remove", "after_rename", "write_0", "write_1", "write_half",
     "write_all_but_1", "done"],
)  # fmt: skip
def test_reset_at_each_step_of_rotation_loses_only_the_new_record(tmp_path, monkeypatch, step):
    log, _ = _write_log(tmp_path, 12)
    assert log.rotations == 1
    older, _ = SL.parse_log((tmp_path / "sessions.1.log").read_bytes())
    current, _ = SL.parse_log((tmp_path / "sessions.log").read_bytes())
    # A record that makes this append rotate.
    size = (tmp_path / "sessions.log").stat().st_size
    new = record(50, samples=20)
    samples = 20
    while size + len(SL.encode_record(new)) + 1 <= MAX_BYTES:
        samples += 20
        new = record(50, samples=samples)
    line = SL.encode_record(new)

    cut_at = {"before_remove": 0, "after_remove": 1}.get(step, 99)
    flaky = _FlakyOS(cut_at)
    monkeypatch.setattr(SL, "os", flaky)
    keep = {"after_rename": -1, "write_0": 0, "write_1": 1, "write_half": len(line) // 2,
            "write_all_but_1": len(line) - 1}.get(step)  # fmt: skip
    if keep is not None:
        monkeypatch.setattr(SL, "open", lambda p, m="r": _CutFile(p, keep) if m == "ab"
                            else open(p, m), raising=False)  # fmt: skip
    fresh = SessionLog(str(tmp_path), max_bytes=MAX_BYTES)
    if step == "done":
        fresh.append(new)
    else:
        with pytest.raises(PowerCut):
            fresh.append(new)
    monkeypatch.undo()

    # Power back: every record of sessions.log survives; the .1 records go only
    # once their removal has happened; the new one is whole or absent.
    got, problems = read_records(str(tmp_path))
    expected_older = older if step == "before_remove" else []
    assert got[: len(expected_older) + len(current)] == expected_older + current
    tail = got[len(expected_older) + len(current):]
    assert tail == ([new] if step in ("done", "write_all_but_1") else [])
    if step in ("write_1", "write_half"):
        assert len(problems) == 1 and "cut short" in problems[0]
    else:
        assert problems == []

    # And the next boot's record lands after them.
    after = record(51)
    SessionLog(str(tmp_path), max_bytes=MAX_BYTES).append(after)
    got2, _ = read_records(str(tmp_path))
    assert got2[-1] == after
    for r in current:
        assert r in got2, "a record written before the reset was lost"
    assert (tmp_path / "sessions.log").stat().st_size <= MAX_BYTES


def test_log_stays_bounded_and_keeps_the_newest_records(tmp_path):
    log = SessionLog(str(tmp_path), max_bytes=MAX_BYTES)
    recs = [record(i, samples=5 + (i * 17) % 60) for i in range(120)]
    for r in recs:
        log.append(r)
        for name in ("sessions.log", "sessions.1.log"):
            p = tmp_path / name
            assert not p.exists() or p.stat().st_size <= MAX_BYTES
    got, problems = log.read()
    assert problems == []
    assert got == recs[-len(got):]
    assert log.rotations > 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions.1.log", "sessions.log"]


def test_line_format_is_versioned_and_self_checking():
    line = SL.encode_record(record(3))
    assert line.startswith(b"L1 {") and line.endswith(b"\n")
    body, crc = line[:-1].rsplit(b" ", 1)
    import binascii

    assert crc == b"%08x" % (binascii.crc32(body) & 0xFFFFFFFF)
    assert b" " not in body[3:]  # compact JSON: the only spaces are the separators
    with pytest.raises(ValueError, match="record format L2 unknown"):
        SL.decode_line(b"L2 " + line[3:-1])
    with pytest.raises(ValueError, match="checksum mismatch"):
        SL.decode_line(line[:-2] + (b"0" if line[-2:-1] != b"0" else b"1"))


@pytest.mark.parametrize(
    ("change", "message"),
    [({"ended": "crashed"}, "'ended' must be one of completed, released, fault, power_loss"),
     ({"v": 2}, "'v' must be 1"),
     ({"start_ms": -1}, "'start_ms' must be an int in 0 .. 2\\*\\*30-1"),
     ({"duration_s": -0.5}, "'duration_s' must be a number >= 0"),
     ({"faults": ["x", 3]}, "'faults' must hold names"),
     ({"angle_series_deg": [1.0, "a"]}, "'angle_series_deg' holds 'a'"),
     ({"program": None}, "'program' must be a dict")],
)  # fmt: skip
def test_bad_records_are_refused_naming_the_field(tmp_path, change, message):
    bad = {**record(1), **change}
    with pytest.raises(ValueError, match=message):
        SessionLog(str(tmp_path)).append(bad)
    incomplete = record(1)
    del incomplete["inverted_s"]
    with pytest.raises(ValueError, match="missing field 'inverted_s'"):
        SessionLog(str(tmp_path)).append(incomplete)
    assert not (tmp_path / "sessions.log").exists()


def test_bad_settings_and_oversized_records_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"max_bytes must be an int in 4096 \.\. 1048576, got 100"):
        SessionLog(str(tmp_path), max_bytes=100)
    with pytest.raises(ValueError, match="name must be a file name"):
        SessionLog(str(tmp_path), name="a/b.log")
    with pytest.raises(ValueError, match=r"session record is \d+ bytes, more than max_bytes 4096"):
        SessionLog(str(tmp_path), max_bytes=4096).append(record(1, samples=1000))


def test_append_syncs_where_the_port_can(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real _sync

    class CountingOS:
        def __init__(self):
            self.syncs = 0

        def __getattr__(self, name):
            return getattr(os, name)

        def sync(self):
            self.syncs += 1

    fake = CountingOS()
    monkeypatch.setattr(SL, "os", fake)
    log = SessionLog(str(tmp_path), max_bytes=MAX_BYTES)
    log.append(record(1))
    assert fake.syncs == 1
    appends = 1
    while log.rotations == 0:
        log.append(record(2))
        appends += 1
    assert fake.syncs == appends + 1  # each append, and the rotation's rename
