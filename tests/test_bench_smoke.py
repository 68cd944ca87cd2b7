"""The benchmark machinery (bench/run_all.py) end to end on tiny inputs.

Seconds, not minutes: a few seconds of each stream, a handful of moves and
releases, a 20 s simulated session. Checks that build/bench.json's keys are
there and every number is finite; no timing or performance assertions (those
are what `make bench` reports). Peers that are not installed (they come from
requirements-bench.txt) must show as null, never as a made-up number.
"""

import importlib.util
import json
import math
import sys

import pytest

from bench import run_all

REQUIRED = {
    "estimator": ("ours_rms_deg", "ours_max_deg", "fusion_rms_deg", "fusion_max_deg",
                  "mahony_rms_deg", "madgwick_rms_deg"),
    "motion": ("time_ratio_vs_ruckig_median", "time_ratio_vs_ruckig_max", "limit_violations"),
    "sim": ("realtime_factor",),
    "tick": ("us_per_tick_micropython", "bytes_per_tick", "mpy_bytes"),
    "release": ("latency_ticks_max", "overshoot_deg_max"),
}
# keys that may be null only because an optional piece is absent
NEEDS = {
    ("estimator", "fusion_rms_deg"): "imufusion",
    ("estimator", "fusion_max_deg"): "imufusion",
    ("estimator", "mahony_rms_deg"): "ahrs",
    ("estimator", "madgwick_rms_deg"): "ahrs",
    ("motion", "time_ratio_vs_ruckig_median"): "ruckig",
    ("motion", "time_ratio_vs_ruckig_max"): "ruckig",
}


def _installed(name):
    return importlib.util.find_spec(name) is not None


def _numbers(obj, path=""):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, "%s.%s" % (path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, "%s[%d]" % (path, i))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    result = run_all.run_all(quick=True, jobs=1, out_path=str(out), log=lambda *_: None)
    with open(out) as f:
        data = json.load(f)
    return result, data


def _check_required(data):
    for section, keys in REQUIRED.items():
        assert section in data, section
        for key in keys:
            assert key in data[section], "%s.%s missing" % (section, key)
            value = data[section][key]
            if value is None:
                if section == "tick":
                    assert data["tick"]["status"] != "ok"
                    continue
                need = NEEDS.get((section, key))
                assert need is not None and not _installed(need), (
                    "%s.%s is null although nothing it needs is missing" % (section, key))
                continue
            assert isinstance(value, (int, float)) and not isinstance(value, bool)
            assert math.isfinite(value), "%s.%s = %r" % (section, key, value)
    for path, value in _numbers(data):
        assert math.isfinite(value), "%s = %r" % (path, value)


def test_quick_run_writes_every_key_with_finite_numbers(quick_run):
    result, data = quick_run
    assert data == json.loads(json.dumps(result, default=run_all._json_default))
    _check_required(data)
    # the estimator replay is the firmware's own in-loop estimate
    streams = data["estimator"]["streams"]
    assert streams
    assert all(s["replay_matches_firmware_in_loop"] for s in streams.values())
    # the I2C figure is computed, whatever the tick module does
    assert data["tick"]["i2c_read_us_400khz"] > 0
    assert data["motion"]["moves"] > 0 and data["release"]["cases"] > 0


def test_markdown_table_names_every_section(quick_run):
    text = run_all.markdown(quick_run[0])
    for word in ("Estimator", "Ruckig", "Simulator", "MicroPython", "Release"):
        assert word in text


def test_missing_peers_are_reported_as_null_not_invented(monkeypatch):
    for name in ("imufusion", "ahrs", "ahrs.filters", "ruckig"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    result = run_all.run_all(quick=True, jobs=1, out_path=None, log=lambda *_: None)
    data = json.loads(json.dumps(result, default=run_all._json_default))
    for key in ("fusion_rms_deg", "fusion_max_deg", "mahony_rms_deg", "madgwick_rms_deg"):
        assert data["estimator"][key] is None
    assert math.isfinite(data["estimator"]["ours_rms_deg"])
    assert data["motion"]["time_ratio_vs_ruckig_median"] is None
    assert data["motion"]["status"].startswith("missing")
    assert isinstance(data["motion"]["limit_violations"], int)
    assert "n/a" in run_all.markdown(result)
