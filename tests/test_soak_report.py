"""The soak machinery (sim/soak.py, `make soak`) on a handful of sessions: the
report adds up, a session re-run alone by its index gives the same result,
the draw does not depend on the job count, and a violation (a doctored trace,
a failing result, sessions missing) makes the exit status non-zero.

The safety properties themselves are the property tests' (tests/
test_fault_injection_properties.py); this only checks the soak's bookkeeping.
"""

import json

import pytest

from sim import checks, soak

SESSIONS = 6


def _a_seed_dealing_a_control_and_a_board_without_pot():
    """The first master seed whose first sessions include a control session and
    a faulted one without the pot (only the draw: nothing is simulated)."""
    for seed in range(1, 1000):
        params = [soak.session_params(seed, k) for k in range(SESSIONS)]
        if (any(p["fault"] is None for p in params)
                and any(p["fault"] and not p["position_pot"] for p in params)):
            return seed
    raise AssertionError("no seed deals a control and a board without the pot")


SEED = _a_seed_dealing_a_control_and_a_board_without_pot()


@pytest.fixture(scope="module")
def report():
    return soak.soak(SESSIONS, SEED, jobs=1)


def test_the_report_counts_add_up(report):
    assert report["sessions_requested"] == report["sessions_run"] == SESSIONS
    assert [r["index"] for r in report["sessions"]] == list(range(SESSIONS))
    rows = report["per_fault"].values()
    totals = report["totals"]
    for key in ("sessions", "no_pot", "ended_home", "ended_safe_stop", "violations"):
        assert sum(c[key] for c in rows) == totals[key], key
    for c in rows:
        assert c["ended_home"] + c["ended_safe_stop"] <= c["sessions"]
    assert totals["violations"] == len(report["violations"]) == sum(
        1 for r in report["sessions"] if r["problems"])
    assert soak.exit_status(report) == (0 if not report["violations"] else 1)
    # The first block of sessions deals distinct faults from the catalogue.
    dealt = [r["fault"] for r in report["sessions"] if r["fault"]]
    assert len(set(dealt)) == len(dealt) and set(dealt) <= set(soak.FAULTS)
    table = soak.format_table(report)
    assert all(name in table for name in soak.FAULTS) and "TOTAL" in table
    json.dumps(report)  # what --out writes


def test_a_session_rerun_alone_gives_the_same_result(report):
    k = 2
    again = soak.run_session(SEED, k)
    first = report["sessions"][k]
    for key in first:
        if key != "wall_s":
            assert again[key] == first[key], key
    assert soak.session_params(SEED, k) == soak.session_params(SEED, k)
    assert soak.reproduce_line(SEED, k) == "python -m sim.soak --only 2 --seed %d" % SEED


def test_the_draw_depends_on_seed_and_index_only():
    """Every fault is dealt once per block of len(FAULTS) sessions, about 1 in
    10 sessions are controls and 1 in 5 have no pot; other seeds differ."""
    n = len(soak.FAULTS)
    params = [soak.session_params(SEED, k) for k in range(20 * n)]
    for block in range(20):
        dealt = [p["fault"] for p in params[block * n:(block + 1) * n] if p["fault"]]
        assert len(dealt) == len(set(dealt))
    controls = sum(1 for p in params if p["fault"] is None) / len(params)
    no_pot = sum(1 for p in params if not p["position_pot"]) / len(params)
    assert 0.05 < controls < 0.15 and 0.12 < no_pot < 0.28
    assert all(p["position_pot"] for p in params if p["fault"] in soak.NEEDS_POT)
    assert soak.session_params(SEED + 1, 0) != soak.session_params(SEED, 0)
    for p in params:
        assert 40.0 <= p["mass_kg"] <= 150.0 and 1.45 <= p["height_m"] <= 2.00


def test_a_doctored_trace_is_a_violation_and_fails_the_run(report):
    k = next((r["index"] for r in report["sessions"] if not r["problems"]), 0)
    params = soak.session_params(SEED, k)
    _run, trace, at_s = soak.simulate(params)
    before = soak.check(params, trace, at_s)
    assert before == report["sessions"][k]["problems"]
    trace["angle_deg"][len(trace) // 2] = checks.ANGLE_CAP_DEG + 5.0
    problems = soak.check(params, trace, at_s)
    assert [p for p in problems if p not in before and p.startswith("angle reached")]

    failing = dict(report["sessions"][k], problems=problems)
    results = [failing if r["index"] == k else r for r in report["sessions"]]
    bad = soak.build_report(results, SEED, SESSIONS, 1, 0.0)
    assert bad["totals"]["violations"] == report["totals"]["violations"] + (0 if before else 1)
    assert soak.exit_status(bad) == 1
    assert any(v["reproduce"] == soak.reproduce_line(SEED, k) for v in bad["violations"])


def test_fewer_sessions_than_requested_fails_the_run(report):
    ok = [r for r in report["sessions"] if not r["problems"]]
    short = soak.build_report(ok, SEED, len(ok) + 1, 1, 0.0)
    assert soak.exit_status(short) == 1
    assert soak.exit_status(soak.build_report(ok, SEED, len(ok), 1, 0.0)) == 0


def test_a_failing_session_is_printed_with_its_reproduction_and_scenario(report, tmp_path,
                                                                        capsys):
    from sim.scenario import load

    k = 1
    fake = dict(report["sessions"][k], problems=["angle reached 99 deg, cap 90.0"])
    bad = soak.build_report([fake], SEED, 1, 1, 0.0)
    soak.print_violations(bad, str(tmp_path))
    out = capsys.readouterr().out
    assert "VIOLATION session 1" in out
    assert "python -m sim.soak --only 1 --seed %d" % SEED in out
    scenario = load(tmp_path / "session-1.toml")
    built, _at_s = soak.build_scenario(soak.session_params(SEED, k))
    assert scenario.duration_ms == built.duration_ms and scenario.seed == built.seed
    assert [(e.at_ms, e.button, e.fault) for e in scenario.events] == [
        (e.at_ms, e.button, e.fault) for e in built.events]
    assert scenario.program_data == built.program_data


def test_the_command_line_with_two_jobs_gives_the_same_sessions(report, tmp_path, capsys):
    """`python -m sim.soak`: the per-fault table on stdout, the figures as JSON,
    and the sessions the same whatever the job count."""
    out = tmp_path / "soak.json"
    status = soak.main(["--sessions", "2", "--seed", str(SEED), "--jobs", "2",
                        "--out", str(out)])
    written = json.loads(out.read_text())
    assert status == soak.exit_status(written)
    assert written["jobs"] == 2 and written["sessions_run"] == 2
    for mine, theirs in zip(written["sessions"], report["sessions"][:2], strict=False):
        assert {k: v for k, v in mine.items() if k != "wall_s"} == {
            k: v for k, v in theirs.items() if k != "wall_s"}
    printed = capsys.readouterr().out
    assert "TOTAL" in printed and "2 sessions (2 requested)" in printed
