"""Tilt estimator: the firmware's TiltEstimator against Fusion, Mahony, Madgwick.

All filters get the same raw MPU-6050 counts the firmware read in the sim
(bench/streams.py), at 100 Hz, scaled to g and deg/s (rad/s for `ahrs`).
The peers are full 3-D filters and get all six axes; ours uses ax, az, gy.

Angle convention (README): angle = atan2(-ax, az) - mount offset, gy positive
when the angle increases. The sensor frame (x headward, y pivot, z out of the
board) is right-handed, a head-down tilt is a positive rotation about +y, and
at rest the accelerometer reads (-sin ts, 0, cos ts) g. For every peer the
tilt is read the same way from its estimated gravity direction in the sensor
frame, g_b = R^T (0, 0, 1): tilt = atan2(-g_b.x, g_b.z) - mount offset (not
Euler pitch, which folds back at 90 deg). The same known mount offset is
subtracted from every filter.

Tuning (peers): gains chosen by a small sweep on the calibration stream only
(streams.CALIBRATION), lowest RMS error after the warm-up wins:
  Fusion (imufusion): sample_rate 100, NWU, gyroscope_range 250 dps (the
    firmware's range), rejection_timeout 5 s; sweep: gain {0.25, 0.5
    (default), 1, 2, 4, 8, 16} x gyro Bias (offset) module {off, default
    3 dps / 3 s, 3 dps / 1 s} x acceleration_rejection {10 deg (README), off
    (library default)}. Also reported as `fusion_default`: out of the box
    (gain 0.5, Bias module with defaults, rejection 10 deg / 5 s).
  Mahony (ahrs): k_P {0.5, 1, 2, 4} x k_I / (k_P^2 / 4) {0.25, 1, 4}
  Madgwick (ahrs): beta {0.01, 0.02, 0.033 (default), 0.05, 0.1, 0.2, 0.5}
  Mahony and Madgwick start from the first accelerometer sample (acc2q),
  as ours does; Fusion uses its own start-up (gain ramp from 10 over 3 s).
Ours: TiltEstimator exactly as firmware/controller.py builds it (defaults);
not tuned here.

Metrics, per stream, error = estimate - true angle (deg):
  rms / max |error| over the samples after WARMUP_S (every filter's start-up
  is over), pooled over the test streams (RMS weighted by samples, max of
  maxima). Settling (`*_settle_s_max`) is measured on the power-up streams
  (table still at home, 20 s): time from power-up until |error| < 0.5 deg for
  the rest of the stream, worst stream; null if some stream never gets there.
  (Per test stream, `settle_s` is the same "in band for good" time over the
  whole session; a stream whose error leaves the band late shows a late time.)
  `accel_bias_floor_*`: the error a perfect filter would still have because
  of the simulated accelerometer bias (not observable, common to all).
"""

import math

import sim  # noqa: F401
from bench import streams as S
from firmware.estimator import TiltEstimator

WARMUP_S = 5.0
SETTLE_BAND_DEG = 0.5

FUSION_GAINS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# Bias (gyro offset) estimator variants: None = off; else (threshold dps, period s).
FUSION_BIAS = (None, (3.0, 3.0), (3.0, 1.0))
# Out of the box: library gain, the Bias module with its defaults, the README's
# recommended rejection (10 deg, 5 s).
FUSION_DEFAULT = {"gain": 0.5, "bias": (3.0, 3.0), "rejection": 10.0}
# Acceleration rejection: 10 deg (README recommendation) or 0 (off, the
# library default).
FUSION_REJECTION = (10.0, 0.0)
MAHONY_KP = (0.5, 1.0, 2.0, 4.0)
MAHONY_KI_FACTORS = (0.25, 1.0, 4.0)
MADGWICK_BETAS = (0.01, 0.02, 0.033, 0.05, 0.1, 0.2, 0.5)


def peers_available():
    """Which peer packages import; a missing one is reported, not fatal."""
    out = {}
    try:
        import imufusion  # noqa: F401

        out["fusion"] = True
    except ImportError:
        out["fusion"] = False
    try:
        from ahrs.filters import Madgwick, Mahony  # noqa: F401

        out["ahrs"] = True
    except ImportError:
        out["ahrs"] = False
    return out


def _tilt_from_gravity(gx, gz, offset_deg):
    return math.degrees(math.atan2(-gx, gz)) - offset_deg


def _tilt_from_quaternion(q, offset_deg):
    """[w, x, y, z], body-to-earth: g_b = R^T (0,0,1)."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    gbx = 2.0 * (x * z - w * y)
    gbz = w * w - x * x - y * y + z * z
    return _tilt_from_gravity(gbx, gbz, offset_deg)


# --- the filters: each returns a list of angle estimates (deg), one a sample ---

def run_ours(data):
    from firmware.drivers.mpu6050 import ACCEL_LSB_PER_G, GYRO_LSB_PER_DPS_X10

    est = TiltEstimator(
        accel_lsb_per_g=ACCEL_LSB_PER_G,
        gyro_lsb_per_dps=GYRO_LSB_PER_DPS_X10 / 10,
        mount_offset_mdeg=data["mount_offset_mdeg"],
    )
    out = []
    update = est.update
    for ax, ay, az, gy, dt in zip(data["ax"], data["ay"], data["az"], data["gy"],
                                  data["dt_ms"], strict=True):
        update(ax, ay, az, gy, dt)
        out.append(est.angle_mdeg / 1000.0)
    return out


def _arrays(data):
    import numpy as np

    acc = np.column_stack([data["ax"], data["ay"], data["az"]]).astype(float)
    gyr = np.column_stack([data["gx"], data["gy"], data["gz"]]).astype(float)
    acc /= S.ACCEL_COUNTS_PER_G  # g
    gyr /= S.GYRO_COUNTS_PER_DPS  # deg/s
    return acc, gyr


def run_fusion(data, gain, bias, rejection=10.0):
    import imufusion

    acc, gyr = _arrays(data)
    offset = data["mount_offset_mdeg"] / 1000.0
    ahrs = imufusion.Ahrs()
    ahrs.set_settings(imufusion.AhrsSettings(
        sample_rate=100.0, convention=imufusion.CONVENTION_NWU, gain=gain,
        gyroscope_range=250.0, acceleration_rejection=rejection, magnetic_rejection=0.0,
        rejection_timeout=5.0 if rejection else 0.0,
    ))
    bias_filter = None
    if bias is not None:
        bias_filter = imufusion.Bias()
        bias_filter.set_settings(imufusion.BiasSettings(
            sample_rate=100.0, stationary_threshold=bias[0], stationary_period=bias[1]))
    out = []
    for i in range(len(acc)):
        g = gyr[i]
        if bias_filter is not None:
            g = bias_filter.update(g)
        ahrs.update_no_magnetometer(g, acc[i])
        grav = ahrs.get_gravity()
        out.append(_tilt_from_gravity(float(grav[0]), float(grav[2]), offset))
    return out


def _run_ahrs_filter(data, flt):
    import numpy as np
    from ahrs.common.orientation import acc2q

    acc, gyr = _arrays(data)
    gyr = np.radians(gyr)
    offset = data["mount_offset_mdeg"] / 1000.0
    q = acc2q(acc[0])
    out = [_tilt_from_quaternion(q, offset)]
    update = flt.updateIMU
    for i in range(1, len(acc)):
        q = update(q, gyr[i], acc[i])
        out.append(_tilt_from_quaternion(q, offset))
    return out


def run_mahony(data, kp, ki):
    from ahrs.filters import Mahony

    return _run_ahrs_filter(data, Mahony(frequency=100.0, k_P=kp, k_I=ki))


def run_madgwick(data, beta):
    from ahrs.filters import Madgwick

    return _run_ahrs_filter(data, Madgwick(frequency=100.0, gain=beta))


def run_filter(data, kind, params):
    if kind == "ours":
        return run_ours(data)
    if kind == "fusion":
        return run_fusion(data, params["gain"], params["bias"], params.get("rejection", 10.0))
    if kind == "mahony":
        return run_mahony(data, params["kp"], params["ki"])
    if kind == "madgwick":
        return run_madgwick(data, params["beta"])
    raise ValueError(kind)


# --- metrics -----------------------------------------------------------------

def errors_stats(t_s, truth, est, warmup_s=WARMUP_S):
    err = [e - a for e, a in zip(est, truth, strict=True)]
    sel = [e for t, e in zip(t_s, err, strict=True) if t >= warmup_s]
    if not sel:
        sel = err
    rms = math.sqrt(sum(e * e for e in sel) / len(sel))
    worst = max(abs(e) for e in sel)
    settle = None
    last_bad = None
    for i in range(len(err) - 1, -1, -1):
        if abs(err[i]) >= SETTLE_BAND_DEG:
            last_bad = i
            break
    if last_bad is None:
        settle = t_s[0]
    elif last_bad + 1 < len(err):
        settle = t_s[last_bad + 1]
    # mean error (bias) and where the worst error happened: for the report
    mean = sum(sel) / len(sel)
    i_worst = max(range(len(err)), key=lambda k: abs(err[k]) if t_s[k] >= warmup_s else -1.0)
    return {"rms_deg": rms, "max_deg": worst, "mean_deg": mean, "settle_s": settle,
            "worst_at_s": t_s[i_worst], "n_eval": len(sel)}


# --- sweep (calibration) and evaluation (test) jobs; picklable for a pool ----

QUICK_GRID = {"fusion_gains": (0.5, 8.0), "fusion_bias": (None,), "fusion_rejection": (10.0,),
              "mahony_kp": (1.0,),
              "mahony_ki_factors": (1.0, 4.0), "madgwick_betas": (0.1,)}
FULL_GRID = {"fusion_gains": FUSION_GAINS, "fusion_bias": FUSION_BIAS,
             "fusion_rejection": FUSION_REJECTION, "mahony_kp": MAHONY_KP,
             "mahony_ki_factors": MAHONY_KI_FACTORS, "madgwick_betas": MADGWICK_BETAS}


def sweep_configs(available, grid=None):
    grid = grid or FULL_GRID
    configs = []
    if available.get("fusion"):
        configs += [("fusion", {"gain": g, "bias": b, "rejection": r})
                    for g in grid["fusion_gains"] for b in grid["fusion_bias"]
                    for r in grid["fusion_rejection"]]
    if available.get("ahrs"):
        configs += [("mahony", {"kp": kp, "ki": kp * kp / 4.0 * f})
                    for kp in grid["mahony_kp"] for f in grid["mahony_ki_factors"]]
        configs += [("madgwick", {"beta": b}) for b in grid["madgwick_betas"]]
    return configs


def score_job(args):
    """One peer configuration on every calibration stream: pooled RMS, worst max."""
    calib, kind, params = args
    num = 0.0
    den = 0
    worst = 0.0
    for data in calib:
        st = errors_stats(data["t_s"], data["angle_deg"], run_filter(data, kind, params))
        num += st["rms_deg"] ** 2 * st["n_eval"]
        den += st["n_eval"]
        worst = max(worst, st["max_deg"])
    return kind, params, {"rms_deg": math.sqrt(num / den), "max_deg": worst}


def choose(results):
    """Best (lowest pooled RMS) params per kind from the sweep results."""
    best = {}
    for kind, params, stats in results:
        if kind not in best or stats["rms_deg"] < best[kind][1]["rms_deg"]:
            best[kind] = (params, stats)
    return best


def record_job(stream):
    """Record a stream (a pool job); our estimator runs here too (it is cheap),
    replayed on the recorded counts and checked against the firmware's own
    in-loop estimate, bit for bit."""
    data = S.record(stream)
    t_s = data["t_s"]
    ours = run_ours(data)
    floor_sel = [f for t, f in zip(t_s, data["accel_bias_floor_deg"], strict=True)
                 if t >= WARMUP_S] or data["accel_bias_floor_deg"]
    meta = {
        "what": data["what"],
        "samples": len(t_s),
        "duration_s": t_s[-1],
        "mount_offset_deg": data["mount_offset_mdeg"] / 1000.0,
        "replay_matches_firmware_in_loop": all(
            abs(a - b) < 1e-9 for a, b in zip(ours, data["est_inloop_deg"], strict=True)),
        "accel_bias_floor_rms_deg": math.sqrt(sum(f * f for f in floor_sel) / len(floor_sel)),
        "accel_bias_floor_max_deg": max(abs(f) for f in floor_sel),
        "ours": errors_stats(t_s, data["angle_deg"], ours),
    }
    return S.compact(data), meta


def filter_job(args):
    """One filter on one recorded stream (a pool job)."""
    data, kind, params = args
    base = "fusion" if kind == "fusion_default" else kind
    est = run_filter(data, base, params)
    return data["name"], kind, errors_stats(data["t_s"], data["angle_deg"], est)


# rough cost per sample, to start the slowest jobs first
_COST = {"mahony": 5, "madgwick": 3, "fusion": 1, "fusion_default": 1, "ours": 1}


def run(pool_map, test_streams=S.TEST_STREAMS, calibration=S.CALIBRATION_STREAMS,
        powerup=S.POWERUP_STREAMS, grid=None):
    """The estimator section. `pool_map(fn, iterable)` maps (maybe in parallel)."""
    available = peers_available()
    every = list(calibration) + list(test_streams) + list(powerup)
    order = sorted(range(len(every)), key=lambda i: -every[i]["duration_s"])
    recorded = [None] * len(every)
    for i, rec in zip(order, pool_map(record_job, [every[i] for i in order]), strict=True):
        recorded[i] = rec
    n_cal = len(calibration)
    n_test = len(test_streams)
    calib = [d for d, _ in recorded[:n_cal]]
    tests = recorded[n_cal:n_cal + n_test]
    powers = recorded[n_cal + n_test:]

    configs = sweep_configs(available, grid)
    configs.sort(key=lambda kp: -_COST[kp[0]])
    sweep = list(pool_map(score_job, [(calib, k, p) for k, p in configs]))
    tuned = {k: v[0] for k, v in choose(sweep).items()}
    if available.get("fusion"):
        tuned["fusion_default"] = dict(FUSION_DEFAULT)

    per_stream = {d["name"]: dict(m) for d, m in tests}
    per_powerup = {d["name"]: {"what": m["what"], "ours": m["ours"]} for d, m in powers}
    jobs = [(d, kind, params) for d, _ in tests + powers for kind, params in tuned.items()]
    jobs.sort(key=lambda j: -_COST[j[1]] * len(j[0]["t_s"]))
    for name, kind, stats in pool_map(filter_job, jobs):
        target = per_stream[name] if name in per_stream else per_powerup[name]
        target[kind] = stats
    return summarise(per_stream, per_powerup, tuned, sweep, calibration, calib, available)


def _pooled(per_stream, kind, key):
    vals = [s[kind][key] for s in per_stream.values() if kind in s]
    return vals


def summarise(per_stream, per_powerup, tuned, sweep, calibration, calib, available):
    kinds = ["ours"] + [k for k in ("fusion", "fusion_default", "mahony", "madgwick")
                        if k in tuned]
    out = {}
    n_total = sum(s["samples"] for s in per_stream.values())
    for kind in kinds:
        # RMS over all post-warm-up samples of all test streams, max over all
        # of them; settling = worst power-up stream (null if one never settles).
        num = 0.0
        den = 0
        for s in per_stream.values():
            n = s[kind]["n_eval"]
            num += s[kind]["rms_deg"] ** 2 * n
            den += n
        out[kind + "_rms_deg"] = math.sqrt(num / den) if den else None
        out[kind + "_max_deg"] = max(_pooled(per_stream, kind, "max_deg"))
        settles = _pooled(per_powerup, kind, "settle_s")
        out[kind + "_settle_s_max"] = None if any(v is None for v in settles) else max(settles)
    for name in ("fusion", "mahony", "madgwick"):
        if name not in tuned:
            out[name + "_rms_deg"] = None
            out[name + "_max_deg"] = None
            out[name + "_settle_s_max"] = None
    out["samples"] = n_total
    out["accel_bias_floor_max_deg"] = max(
        s["accel_bias_floor_max_deg"] for s in per_stream.values())
    out["warmup_s"] = WARMUP_S
    out["settle_band_deg"] = SETTLE_BAND_DEG
    out["peers_available"] = available
    out["tuning"] = {
        "chosen": {k: _jsonable(v) for k, v in tuned.items()},
        "calibration_streams": [{"name": c["name"], "what": c["what"],
                                 "samples": len(d["t_s"])}
                                for c, d in zip(calibration, calib, strict=True)],
        "sweep": [{"filter": k, "params": _jsonable(p), "calibration_rms_deg": st["rms_deg"],
                   "calibration_max_deg": st["max_deg"]} for k, p, st in sweep],
    }
    out["streams"] = per_stream
    out["powerup"] = per_powerup
    out["goal_rms_no_worse_than_fusion"] = (
        None if out.get("fusion_rms_deg") is None
        else out["ours_rms_deg"] <= out["fusion_rms_deg"])
    out["goal_max_under_1deg"] = out["ours_max_deg"] < 1.0
    return out


def _jsonable(params):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()}
