"""Simulated IMU streams for the estimator benchmark, recorded from the real sim.

Each stream is a scenario built in code (no TOML) run through sim.runner.Run:
the real firmware drives the plant, and after every control tick we record
the raw MPU-6050 counts the firmware's driver read (exactly what its
TiltEstimator saw), the true table angle at that sample, and the firmware's
own in-loop estimate. The IMU imperfections (noise, gyro/accel bias, mounting
offset, motor vibration) are the sim's Mpu6050Model knobs, set per stream.

The calibration streams (CALIBRATION_STREAMS) are separate from the test
streams (TEST_STREAMS): different seeds, users, programs and IMU errors. Peer
gains are chosen on them only.
"""

import math

import sim  # noqa: F401  (the `micropython` stand-in for the firmware)
from firmware.config import Program
from firmware.drivers.mpu6050 import ACCEL_LSB_PER_G, GYRO_LSB_PER_DPS_X10
from sim.board import SimBoard
from sim.plant import User
from sim.runner import Run
from sim.scenario import Event, Scenario

ACCEL_COUNTS_PER_G = float(ACCEL_LSB_PER_G)
GYRO_COUNTS_PER_DPS = GYRO_LSB_PER_DPS_X10 / 10.0


def spec(name, duration_s, program, events, seed=1, user=(80.0, 1.78), imu=None, what=""):
    return {
        "name": name,
        "duration_s": duration_s,
        "seed": seed,
        "user": user,
        "program": program,
        "events": events,
        "imu": dict(imu or {}),
        "what": what,
    }


# Test streams: descents, holds, rocking, motor vibration, noise, gyro bias,
# mounting offset, a release at the caps. Sim defaults (Mpu6050Model): accel
# noise 3 mg, gyro noise 0.04 dps, gyro bias (0.8, -1.2, 0.5) dps, accel bias
# (4, -3, 6) mg, mount offset 0.8 deg, vibration 0.05 g / 0.3 dps x |duty|.
# The pivot-axis gyro bias takes both signs across the streams (see the
# calibration note below for why the sign matters to filters without a
# gyro-bias estimate).
TEST_STREAMS = (
    spec(
        "session_30deg",
        150.0,
        {"target_angle_deg": 30.0, "hold_s": 20.0, "rock_amplitude_deg": 5.0,
         "rock_period_s": 10.0, "rock_cycles": 2, "rest_s": 5.0},
        [(1.0, "press")],
        seed=11,
        what="default IMU; descent 2 deg/s, hold, rock +-5, rest, home",
    ),
    spec(
        "full_inversion_heavy",
        120.0,
        {"target_angle_deg": 90.0, "hold_s": 15.0, "rock_amplitude_deg": 0.0,
         "rock_period_s": 10.0, "descent_rate_dps": 3.0, "return_rate_dps": 6.0,
         "rest_s": 3.0},
        [(0.5, "press")],
        seed=12,
        user=(150.0, 2.0),
        imu={"gyro_bias_dps": (-0.6, 1.0, 0.3)},
        what="150 kg / 2.0 m user, 3 deg/s to 88.5 deg, return at 6 deg/s, gyro bias +1 dps",
    ),
    spec(
        "vibration_rocking",
        160.0,
        {"target_angle_deg": 45.0, "hold_s": 5.0, "rock_amplitude_deg": 10.0,
         "rock_period_s": 8.0, "rock_cycles": 4, "descent_rate_dps": 3.0, "rest_s": 5.0},
        [(1.0, "press")],
        seed=13,
        user=(110.0, 1.9),
        imu={"vibration_accel_g": 0.15, "vibration_gyro_dps": 1.0, "accel_noise_g": 0.006},
        what="3x motor vibration (0.15 g, 1 dps at full duty), 2x noise, rock +-10 / 8 s",
    ),
    spec(
        "bias_offset",
        130.0,
        {"target_angle_deg": 60.0, "hold_s": 10.0, "rock_amplitude_deg": 3.0,
         "rock_period_s": 12.0, "rock_cycles": 1, "descent_rate_dps": 2.5, "rest_s": 5.0},
        [(2.0, "press")],
        seed=14,
        user=(55.0, 1.55),
        imu={"gyro_bias_dps": (1.5, 3.5, -1.0), "accel_bias_g": (-0.005, 0.004, 0.008),
             "mount_offset_deg": -3.0},
        what="gyro bias 3.5 dps on the pivot axis, accel bias (-5, 4, 8) mg, mount offset -3 deg",
    ),
    spec(
        "release_and_repress",
        110.0,
        {"target_angle_deg": 70.0, "hold_s": 30.0, "rock_amplitude_deg": 0.0,
         "rock_period_s": 10.0, "descent_rate_dps": 3.0, "rest_s": 0.0},
        [(1.0, "press"), (40.0, "release"), (80.0, "press"), (100.0, "release")],
        seed=15,
        user=(95.0, 1.85),
        imu={"gyro_bias_dps": (0.4, 0.8, -0.6)},
        what="let go mid-descent at 3 deg/s (braking at the caps), home, press again; "
        "gyro bias +0.8 dps",
    ),
)

# Power-up: the table still at home, nobody pressing, for 20 s; settling time
# is measured here (the gyro bias is what a filter has to learn).
POWERUP_STREAMS = (
    spec("powerup_default", 20.0, {"target_angle_deg": 30.0, "hold_s": 10.0,
                                   "rock_amplitude_deg": 0.0, "rock_period_s": 10.0},
         [], seed=21, what="sim default IMU (gyro bias -1.2 dps on the pivot axis)"),
    spec("powerup_bias_pos", 20.0, {"target_angle_deg": 30.0, "hold_s": 10.0,
                                    "rock_amplitude_deg": 0.0, "rock_period_s": 10.0},
         [], seed=22, imu={"gyro_bias_dps": (1.5, 3.5, -1.0), "mount_offset_deg": -3.0},
         what="gyro bias +3.5 dps, mount offset -3 deg"),
    spec("powerup_bias_neg", 20.0, {"target_angle_deg": 30.0, "hold_s": 10.0,
                                    "rock_amplitude_deg": 0.0, "rock_period_s": 10.0},
         [], seed=23, imu={"gyro_bias_dps": (-2.0, -2.5, 1.0), "accel_noise_g": 0.006},
         what="gyro bias -2.5 dps, 2x accelerometer noise"),
)


# Calibration streams: used only to choose peer gains. Two of them, with
# opposite signs of gyro bias and the same accelerometer bias: a filter
# without gyro-bias estimation lags by bias / gain, and that lag adds to the
# (unobservable) accelerometer-bias tilt error in one stream and cancels it
# in the other, so no gain is chosen for a lucky cancellation.
CALIBRATION_STREAMS = (
    spec(
        "calibration_a",
        135.0,
        {"target_angle_deg": 50.0, "hold_s": 15.0, "rock_amplitude_deg": 6.0,
         "rock_period_s": 9.0, "rock_cycles": 2, "descent_rate_dps": 2.5, "rest_s": 5.0},
        [(1.5, "press"), (120.0, "release")],
        seed=99,
        user=(62.0, 1.62),
        imu={"gyro_bias_dps": (-0.5, 2.0, 0.7), "vibration_accel_g": 0.08,
             "vibration_gyro_dps": 0.5, "mount_offset_deg": 1.5},
        what="gyro bias +2 dps, 1.6x vibration, mount offset 1.5 deg, let go while returning",
    ),
    spec(
        "calibration_b",
        110.0,
        {"target_angle_deg": 75.0, "hold_s": 10.0, "rock_amplitude_deg": 8.0,
         "rock_period_s": 10.0, "rock_cycles": 3, "descent_rate_dps": 3.0, "rest_s": 5.0},
        [(1.0, "press"), (85.0, "release")],
        seed=98,
        user=(130.0, 1.95),
        imu={"gyro_bias_dps": (0.3, -2.5, -0.4), "accel_bias_g": (0.005, -0.002, 0.004),
             "mount_offset_deg": -1.0, "accel_noise_g": 0.005},
        what="gyro bias -2.5 dps, accel bias like the sim default, let go while rocking",
    ),
)


def shortened(stream, duration_s):
    """The same stream cut to `duration_s` (events past the end dropped)."""
    out = dict(stream)
    out["duration_s"] = duration_s
    out["events"] = [ev for ev in stream["events"] if ev[0] < duration_s]
    return out


def build_run(stream):
    """A sim Run for a stream spec (scenario built in code)."""
    mass, height = stream["user"]
    user = User(mass_kg=mass, height_m=height)
    program = Program(stream["program"])
    events = [Event(int(round(at_s * 1000)), button=action) for at_s, action in stream["events"]]
    scenario = Scenario(
        int(round(stream["duration_s"] * 1000)), stream["seed"], user, program,
        dict(stream["program"]), events, stream["name"],
    )
    board = SimBoard(user, seed=stream["seed"], imu_kwargs=stream["imu"])
    return Run(scenario, board=board)


def record(stream):
    """Run the stream; returns a dict of per-tick columns (plain lists)."""
    run = build_run(stream)
    cols = {k: [] for k in ("t_s", "ax", "ay", "az", "gx", "gy", "gz", "dt_ms", "angle_deg",
                            "est_inloop_deg", "state", "samples")}
    end_ms = run.scenario.duration_ms
    last_sample = 0
    while run.t_ms < end_ms:
        run.step()
        ctl = run.controller
        imu = ctl.imu
        cols["t_s"].append(run.t_ms / 1000.0)
        cols["ax"].append(imu.ax)
        cols["ay"].append(imu.ay)
        cols["az"].append(imu.az)
        cols["gx"].append(imu.gx)
        cols["gy"].append(imu.gy)
        cols["gz"].append(imu.gz)
        cols["dt_ms"].append(10)
        cols["angle_deg"].append(run.board.plant.angle_deg)
        cols["est_inloop_deg"].append(ctl.estimator.angle_mdeg / 1000.0)
        cols["state"].append(ctl.state_name)
        cols["samples"].append(imu.sample - last_sample)
        last_sample = imu.sample
    if run.firmware_resets:
        raise RuntimeError("stream %s: watchdog reset during recording" % stream["name"])
    if any(n != 1 for n in cols["samples"]):
        raise RuntimeError("stream %s: a tick did not read exactly one IMU sample" % stream["name"])
    cols["mount_offset_mdeg"] = run.board.imu_mount_offset_mdeg
    cols["accel_bias_floor_deg"] = accel_bias_floor(
        cols["angle_deg"], run.board.imu.mount_offset_deg, run.board.imu.accel_bias_g)
    cols["name"] = stream["name"]
    cols["what"] = stream["what"]
    return cols


def accel_bias_floor(angles_deg, mount_offset_deg, accel_bias_g):
    """Tilt error (deg) a perfect filter would still have, per sample: the
    accelerometer's zero-g bias is indistinguishable from a tilt (it is not
    observable without a calibration), and every filter here trusts the
    accelerometer in the long run. Static: ignores noise and the lever arm."""
    bx, _, bz = accel_bias_g
    out = []
    for a in angles_deg:
        ts = math.radians(a + mount_offset_deg)
        seen = math.degrees(math.atan2(math.sin(ts) - bx, math.cos(ts) + bz))
        out.append(seen - mount_offset_deg - a)
    return out


COMPACT_KEYS = ("t_s", "ax", "ay", "az", "gx", "gy", "gz", "dt_ms", "angle_deg",
                "mount_offset_mdeg", "name")


def compact(data):
    """Only what the filters and the metrics need (cheaper to send to a worker)."""
    return {k: data[k] for k in COMPACT_KEYS}
