"""Sensor physics shared by the IMU register models (sim/mpu6050_model.py,
sim/lsm6dsox_model.py).

What a 6-axis IMU strapped to the table measures, in physical units, from the
plant's true state: the gravity reaction and the IMU's own acceleration on its
arc about the pivot, the table's angular rate, and the imperfections a real
part has (bias, noise, mounting offset, motor vibration), each a constructor
parameter so faults can turn them up. Each chip model turns these into its
own register format (scale, byte order, axis orientation).

Frame: the firmware's sensor frame on the table: x toward the head, z out of
the board (up when the table is flat), y the pivot axis; head-down rotation
is positive about +y. A chip mounted another way maps its axes from this
frame (see Lsm6dsoxModel).
"""

import errno
import math
import random
from types import MappingProxyType

from sim.plant import GRAVITY_MPS2


def to_int16_counts(value, lsb_per_unit):
    """Physical value to a saturating int16 register count."""
    counts = round(value * lsb_per_unit)
    if counts > 32767:
        return 32767
    if counts < -32768:
        return -32768
    return counts


class ImuPhysics:
    """Base of the register models: the plant, the knobs and `measure()`.

    Simulator-side knobs (plain attributes): `nack` (every I2C transfer raises
    OSError ENODEV, like a missing or dead chip), `frozen` (the data
    registers stop updating: the same bytes on every read), `accel_scale`
    (the accelerometer's sensitivity off: |a| far from 1 g) and `raise_once`
    (an exception object the next transfer raises: a driver/bus error that is
    not an OSError), plus every constructor parameter. `DEFAULTS` holds a
    chip's typical imperfections; a subclass may override it.
    """

    DEFAULTS = MappingProxyType({
        "mount_offset_deg": 0.8,
        "imu_radius_m": 0.30,
        "accel_bias_g": (0.004, -0.003, 0.006),
        "gyro_bias_dps": (0.8, -1.2, 0.5),
        "accel_noise_g": 0.003,
        "gyro_noise_dps": 0.04,
        "vibration_accel_g": 0.05,
        "vibration_gyro_dps": 0.3,
        "temperature_c": 30.0,
        "temperature_noise_c": 0.05,
    })

    def __init__(self, plant, *, seed=0, clock=None, **knobs):
        unknown = sorted(set(knobs) - set(self.DEFAULTS))
        if unknown:
            raise TypeError("%s got unknown parameter(s): %s"
                            % (type(self).__name__, ", ".join(unknown)))
        params = dict(self.DEFAULTS, **knobs)
        self.plant = plant
        self.clock = clock  # optional: with it, samples follow the output data rate
        self.rng = random.Random(seed)
        self.mount_offset_deg = params["mount_offset_deg"]
        self.imu_radius_m = params["imu_radius_m"]  # IMU distance headward of the pivot
        self.accel_bias_g = tuple(params["accel_bias_g"])
        self.gyro_bias_dps = tuple(params["gyro_bias_dps"])
        self.accel_noise_g = params["accel_noise_g"]
        self.gyro_noise_dps = params["gyro_noise_dps"]
        self.vibration_accel_g = params["vibration_accel_g"]
        self.vibration_gyro_dps = params["vibration_gyro_dps"]
        self.temperature_c = params["temperature_c"]
        self.temperature_noise_c = params["temperature_noise_c"]
        self.nack = False
        self.frozen = False
        self.accel_scale = 1.0  # a damaged sensing element: |a| far from 1 g
        self.raise_once = None  # an exception the next transfer raises (not OSError)
        self.samples_taken = 0

    def _check_ack(self):
        if self.raise_once is not None:
            err, self.raise_once = self.raise_once, None
            raise err
        if self.nack:
            raise OSError(errno.ENODEV, "ENODEV")

    def measure(self):
        """One sample in physical units, sensor frame:
        ((ax, ay, az) g, temperature °C, (gx, gy, gz) dps)."""
        plant = self.plant
        gauss = self.rng.gauss
        theta_s = math.radians(plant.angle_deg + self.mount_offset_deg)
        rate_rps = math.radians(plant.rate_dps)
        accel_rps2 = math.radians(plant.accel_dps2)
        radius = self.imu_radius_m
        # Specific force in the table frame (g): gravity reaction plus the
        # IMU's own acceleration on its arc (centripetal toward the pivot,
        # tangential toward -z for a head-down angular acceleration).
        table_x = -rate_rps * rate_rps * radius / GRAVITY_MPS2
        table_z = -accel_rps2 * radius / GRAVITY_MPS2
        offset = math.radians(self.mount_offset_deg)
        cos_o = math.cos(offset)
        sin_o = math.sin(offset)
        ax = -math.sin(theta_s) + table_x * cos_o - table_z * sin_o
        az = math.cos(theta_s) + table_x * sin_o + table_z * cos_o
        ay = 0.0

        vibration = abs(plant.duty)
        accel_sigma = math.hypot(self.accel_noise_g, self.vibration_accel_g * vibration)
        gyro_sigma = math.hypot(self.gyro_noise_dps, self.vibration_gyro_dps * vibration)
        abx, aby, abz = self.accel_bias_g
        gbx, gby, gbz = self.gyro_bias_dps
        k = self.accel_scale
        accel = (
            k * ax + abx + gauss(0.0, accel_sigma),
            k * ay + aby + gauss(0.0, accel_sigma),
            k * az + abz + gauss(0.0, accel_sigma),
        )
        gyro = (
            gbx + gauss(0.0, gyro_sigma),
            plant.rate_dps + gby + gauss(0.0, gyro_sigma),
            gbz + gauss(0.0, gyro_sigma),
        )
        temperature_c = self.temperature_c + gauss(0.0, self.temperature_noise_c)
        return accel, temperature_c, gyro
