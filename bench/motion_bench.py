"""Motion planner: firmware.motion_profile.MotionProfile against Ruckig.

Random rest-to-rest moves (seeded): start and target angles in the table's
range (home -60 .. setpoint cap 88.5 deg), a quarter of them short moves
(0.1 .. 5 deg, log-uniform), and limits drawn log-uniformly within what
firmware/config.py accepts under the firmware/limits.py caps:
velocity 0.2 .. 6 deg/s, acceleration 2 .. 20 deg/s^2, jerk 5 .. 100 deg/s^3.

Ours: MotionProfile(v, a, j, start).step(target, 10) until `done`; time to
target = ticks x 10 ms. Ruckig: time-optimal, same limits, rest-to-rest,
continuous time (`Trajectory.duration`). Ratio = ours / Ruckig. Because ours
can only finish on a 10 ms tick, the ratio against Ruckig's duration rounded
up to a whole tick is also given.

Violations, sampled every tick of our profile against the requested limits:
|vel_mdps| > v, |acc_mdps2| > a, |acc change| / dt > j, and overshoot (the
setpoint passing the target, > 0 mdeg). Counted per move (a move with any
violation of a kind counts once for that kind).
"""

import math
import random

import sim  # noqa: F401
from firmware.motion_profile import MotionProfile

DT_MS = 10
ANGLE_MIN_MDEG = -60000
ANGLE_MAX_MDEG = 88500
VEL_RANGE = (200, 6000)  # mdps
ACC_RANGE = (2000, 20000)  # mdps2
JERK_RANGE = (5000, 100000)  # mdps3


def ruckig_available():
    try:
        import ruckig  # noqa: F401
    except ImportError:
        return False
    return True


def _log_uniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def random_moves(n, seed=7):
    rng = random.Random(seed)
    moves = []
    for i in range(n):
        start = rng.randint(ANGLE_MIN_MDEG, ANGLE_MAX_MDEG)
        if i % 4 == 3:
            dist = int(round(_log_uniform(rng, 100, 5000)))
            if rng.random() < 0.5:
                dist = -dist
            target = start + dist
            if not ANGLE_MIN_MDEG <= target <= ANGLE_MAX_MDEG:
                target = start - dist
        else:
            target = rng.randint(ANGLE_MIN_MDEG, ANGLE_MAX_MDEG)
        if target == start:
            target = start + 1000
        moves.append({
            "start_mdeg": start,
            "target_mdeg": target,
            "vel_mdps": int(round(_log_uniform(rng, *VEL_RANGE))),
            "acc_mdps2": int(round(_log_uniform(rng, *ACC_RANGE))),
            "jerk_mdps3": int(round(_log_uniform(rng, *JERK_RANGE))),
        })
    return moves


def ruckig_duration_s(move):
    from ruckig import InputParameter, Result, Ruckig, Trajectory

    otg = Ruckig(1)
    inp = InputParameter(1)
    traj = Trajectory(1)
    inp.current_position = [move["start_mdeg"] / 1000.0]
    inp.current_velocity = [0.0]
    inp.current_acceleration = [0.0]
    inp.target_position = [move["target_mdeg"] / 1000.0]
    inp.target_velocity = [0.0]
    inp.target_acceleration = [0.0]
    inp.max_velocity = [move["vel_mdps"] / 1000.0]
    inp.max_acceleration = [move["acc_mdps2"] / 1000.0]
    inp.max_jerk = [move["jerk_mdps3"] / 1000.0]
    result = otg.calculate(inp, traj)
    if result not in (Result.Working, Result.Finished):
        raise RuntimeError("ruckig failed on %r: %s" % (move, result))
    return traj.duration


def run_ours(move, max_ticks):
    """Step our profile to the target; time and the limit checks."""
    v_lim = move["vel_mdps"]
    a_lim = move["acc_mdps2"]
    j_lim = move["jerk_mdps3"]
    start = move["start_mdeg"]
    target = move["target_mdeg"]
    direction = 1 if target > start else -1
    p = MotionProfile(v_lim, a_lim, j_lim, start)
    ticks = 0
    prev_acc = 0
    worst = {"vel": 0, "acc": 0, "jerk": 0, "overshoot": 0}
    while not p.done and ticks < max_ticks:
        p.step(target, DT_MS)
        ticks += 1
        v = abs(p.vel_mdps)
        a = abs(p.acc_mdps2)
        # per-tick jerk in mdps3, exact: |da| * 1000 / dt compared as integers
        da = abs(p.acc_mdps2 - prev_acc)
        prev_acc = p.acc_mdps2
        if v - v_lim > worst["vel"]:
            worst["vel"] = v - v_lim
        if a - a_lim > worst["acc"]:
            worst["acc"] = a - a_lim
        if da * 1000 > j_lim * DT_MS:
            excess = da * 1000 // DT_MS - j_lim
            if excess > worst["jerk"]:
                worst["jerk"] = excess
        over = direction * (p.pos_mdeg - target)
        if over > worst["overshoot"]:
            worst["overshoot"] = over
    return ticks, p.done, worst


def duration_bound_s(move):
    """A generous upper bound on a rest-to-rest move's time (for the tick cap):
    cruise time plus full ramps, twice over."""
    d = abs(move["target_mdeg"] - move["start_mdeg"]) / 1000.0
    v = move["vel_mdps"] / 1000.0
    a = move["acc_mdps2"] / 1000.0
    j = move["jerk_mdps3"] / 1000.0
    return 2.0 * (d / v + 2.0 * v / a + 2.0 * a / j) + 10.0


def move_job(move, with_ruckig=True):
    t_ref = ruckig_duration_s(move) if with_ruckig else None
    max_ticks = int(duration_bound_s(move) * 1000 / DT_MS)
    ticks, done, worst = run_ours(move, max_ticks)
    t_ours = ticks * DT_MS / 1000.0
    out = {"move": move, "ruckig_s": t_ref, "ours_s": t_ours, "done": done, "excess": worst,
           "ratio": None, "ratio_tick_rounded": None}
    if t_ref:
        t_ref_ticks = math.ceil(t_ref * 1000 / DT_MS - 1e-9) * DT_MS / 1000.0
        out["ratio"] = t_ours / t_ref
        out["ratio_tick_rounded"] = t_ours / t_ref_ticks
    return out


def move_job_ours_only(move):
    return move_job(move, with_ruckig=False)


def _median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def run(pool_map, n_moves=300, seed=7):
    moves = random_moves(n_moves, seed)
    have_ruckig = ruckig_available()
    results = list(pool_map(move_job if have_ruckig else move_job_ours_only, moves))
    out = {"status": "ok" if have_ruckig else "missing: ruckig not installed (no time ratios)"}
    out.update(summarise(results, have_ruckig))
    out["seed"] = seed
    return out


def summarise(results, have_ruckig):
    ratios = [r["ratio"] for r in results] if have_ruckig else [None]
    rounded = [r["ratio_tick_rounded"] for r in results] if have_ruckig else [None]
    kinds = ("vel", "acc", "jerk", "overshoot")
    by_kind = {k: sum(1 for r in results if r["excess"][k] > 0) for k in kinds}
    not_done = sum(1 for r in results if not r["done"])
    worst = max(results, key=lambda r: r["ratio"] or 0.0)
    return {
        "moves": len(results),
        "time_ratio_vs_ruckig_median": _median(ratios) if have_ruckig else None,
        "time_ratio_vs_ruckig_max": max(ratios) if have_ruckig else None,
        "time_ratio_vs_ruckig_min": min(ratios) if have_ruckig else None,
        "time_ratio_vs_ruckig_p90": (sorted(ratios)[int(0.9 * (len(ratios) - 1))]
                                     if have_ruckig else None),
        "time_ratio_vs_tick_rounded_ruckig_median": _median(rounded) if have_ruckig else None,
        "time_ratio_vs_tick_rounded_ruckig_max": max(rounded) if have_ruckig else None,
        "limit_violations": sum(by_kind.values()) + not_done,
        "violations_by_kind": dict(by_kind, not_done=not_done),
        "worst_excess": {k: max(r["excess"][k] for r in results) for k in kinds},
        "violating_moves": [r["move"] | {"excess": r["excess"]} for r in results
                            if any(r["excess"][k] > 0 for k in kinds) or not r["done"]][:10],
        "worst_ratio_move": worst["move"] | {"ruckig_s": worst["ruckig_s"],
                                             "ours_s": worst["ours_s"]},
        "ruckig_total_s": sum(r["ruckig_s"] for r in results) if have_ruckig else None,
        "ours_total_s": sum(r["ours_s"] for r in results),
        "dt_ms": DT_MS,
        "limits_ranges": {"vel_mdps": VEL_RANGE, "acc_mdps2": ACC_RANGE,
                          "jerk_mdps3": JERK_RANGE},
    }
