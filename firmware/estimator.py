"""Table tilt from an MPU-6050-type IMU: accelerometer + gyro fusion in integers.

One job: turn raw int16 sensor counts into the table angle, its rate and the
gyro bias, every tick, without floats or heap allocation.

Method: a one-axis Mahony complementary filter. The gyro rate (less the bias
estimate) is integrated; the accelerometer tilt pulls the angle toward itself
with gain Kp (1/s) and feeds the gyro bias estimate through an integral gain
Ki (1/s^2). With Ki = Kp^2 / 4 the loop is critically damped: a gyro bias
step B gives a peak angle error of 2 B / (e Kp) and is then learned.

Gain schedule:
- Start-up: the first sample whose |a| is near 1 g sets the angle directly;
  for `startup_ms` after that the gains are raised (Kp x4, tapering linearly
  back to Kp) so the gyro bias is learned in a couple of seconds and the
  accelerometer noise is averaged out of it. `settled` turns True afterwards.
- Vibration: the mean size of the tick-to-tick change of the accelerometer
  tilt measures accelerometer noise (true motion is <= 60 mdeg per tick, motor
  vibration is degrees). Above `vibration_ref_mdeg` Kp scales down as
  ref / measured (Kalman-like: gain inversely proportional to measurement
  noise), but not below `kp_min`; Ki follows Kp^2 to keep the damping.
- |a| outside 0.9 .. 1.1 g (shock, fault, saturation): no accelerometer
  correction at all; the angle follows the bias-corrected gyro.

Sensor frame: x along the table toward the head, z out of the board, y the
pivot axis. At rest ax = -g sin(ts), az = g cos(ts) with ts = angle + mount
offset; gy is positive when the angle increases.

Internal units (all ints):
  angle      udeg (1e-6 deg), wrapped to (-180e6, 180e6]
  rates      1/16 mdps ("q4") for integration; outputs in mdps; the raw
             gyro rate is clamped to +-300 dps (a larger reading is a fault)
  bias       1/16384 mdps ("q14"), clamped to +-20 dps
  time       ms; dt is clamped to 0 .. 100 ms (a longer gap is a fault for
             the caller's watchdog, not something to integrate)
"""

from micropython import const

from firmware.fixedpoint import atan2_mdeg, clamp

_DT_MAX_MS = const(100)
_RATE_CLAMP_Q4 = const(4800000)  # 300 dps in 1/16 mdps
_INT16_MIN = const(-32768)
_INT16_MAX = const(32767)

_DEG180_UDEG = const(180000000)
_DEG360_UDEG = const(360000000)
_DEG180_MDEG = const(180000)
_DEG360_MDEG = const(360000)

# Kp is held in Q10 (1/1024 per second). Correction rate in q4 mdps:
#   corr_q4 = kp_q10 * err_mdeg * 16 / 1024 = (kp_q10 * err_mdeg) >> 6
# kp_q10 <= 8192 (Kp <= 8/s), |err| clamped to 45000 mdeg (a larger error
# still converges at >= 45 dps * Kp): product <= 3.7e8, corr_q4 <= 5.8e6,
# corr_q4 * dt <= 5.8e8.
_KP_SHIFT_TO_Q4 = const(6)
_KP_Q10_MAX = const(8192)
_ERR_CLAMP_MDEG = const(45000)

# Ki is held as ki_q, the bias_q14 change per (mdeg of error * ms) * 2**6:
#   d_bias_q14 = Ki * err_mdeg * dt_ms / 1000 * 16384
#              = ((ki_q * err_mdeg) >> 6) * dt_ms,   ki_q = Ki * 16.384 * 64.
# With Ki = Kp^2 / 4 this is ki_q = kp_q10^2 / 4000 <= 16777. The error fed to
# the bias is clamped to +-20000 mdeg: wide enough not to clip vibration noise
# (clipping zero-mean noise would weaken the integrator), and bounded:
# ki_q * err <= 3.4e8, >> 6 -> 5.3e6, * dt <= 5.3e8.
_KI_SHIFT = const(6)
_BIAS_ERR_CLAMP_MDEG = const(20000)
_VIB_REF_MAX_MDEG = const(5000)
_BIAS_MAX_Q14 = const(327680000)  # 20 dps = 20000 mdps * 16384

# Vibration meter: EMA of |delta accel tilt| per tick, held in mdeg * 16,
# time constant 500 ms. Step bounded by 20000 mdeg -> 320000 q4; times dt 100.
_VIB_TAU_MS = const(500)
_VIB_STEP_CLAMP_MDEG = const(20000)

# |a|^2 is compared with (0.9 g)^2 .. (1.1 g)^2 on counts halved first:
# after the offset |count| <= 32768 + 2048, so 3 * (34816 / 2)^2 = 9.1e8
# < 2**30 - 1 even when every axis saturates.
_NORM_SHIFT = const(1)


class TiltEstimator:
    """Fused table angle from raw IMU counts; one `update` per control tick.

    TiltEstimator(accel_lsb_per_g=16384, gyro_lsb_per_dps=131.0,
                  mount_offset_mdeg=0, accel_tau_ms=500, startup_ms=3000,
                  vibration_ref_mdeg=600, kp_min_per_s=0.7,
                  accel_offset_counts=(0, 0, 0))

    accel_lsb_per_g     accelerometer counts per g (MPU-6050 +-2 g: 16384)
    gyro_lsb_per_dps    gyro counts per deg/s (MPU-6050 +-250 dps: 131.0)
    mount_offset_mdeg   sensor tilt minus table angle (ts = angle + offset)
    accel_tau_ms        1 / Kp in quiet conditions: how fast the accelerometer
                        pulls the angle. Ki = Kp^2 / 4 (critical damping).
    startup_ms          time with raised gains after the first good sample
                        (1 .. 60000)
    vibration_ref_mdeg  accel-tilt tick-to-tick change (EMA) above which Kp
                        is reduced in proportion
    kp_min_per_s        floor for Kp under vibration
    accel_offset_counts (x, y, z) accelerometer zero-g offsets in counts,
                        subtracted before use (factory calibration; |.| <= 2048)

    Outputs after each update (ints / bools):
      angle_mdeg        fused table angle (0 flat, +90000 head-down)
      rate_mdps         bias-corrected gyro rate
      bias_mdps         current gyro zero-rate estimate
      accel_angle_mdeg  raw accelerometer tilt (diagnostic)
      vibration_mdeg    vibration meter (diagnostic)
      accel_norm_ok     |a| within 0.9 .. 1.1 g on this sample (trusted for tilt)
      accel_plausible   |a| within 0.75 .. 1.25 g: physically possible here (the
                        table's own accelerations are hundredths of a g; a
                        broken sensing element or range reads outside it)
      settled           initialised and start-up period over
    """

    def __init__(
        self,
        accel_lsb_per_g=16384,
        gyro_lsb_per_dps=131.0,
        mount_offset_mdeg=0,
        accel_tau_ms=500,
        startup_ms=3000,
        vibration_ref_mdeg=600,
        kp_min_per_s=0.7,
        accel_offset_counts=(0, 0, 0),
    ):
        # --- configuration (floats allowed here: runs once) ---
        if accel_lsb_per_g <= 0 or gyro_lsb_per_dps <= 0 or accel_tau_ms <= 0:
            raise ValueError("scales and time constants must be positive")
        self.mount_offset_mdeg = int(mount_offset_mdeg)
        # Accelerometer zero-g offsets (calibration), subtracted from the raw
        # counts: a 5 mg offset would otherwise tilt the angle by ~0.3 deg.
        self._ax_offset = max(-2048, min(2048, int(accel_offset_counts[0])))
        self._ay_offset = max(-2048, min(2048, int(accel_offset_counts[1])))
        self._az_offset = max(-2048, min(2048, int(accel_offset_counts[2])))
        self.startup_ms = max(1, min(60000, int(startup_ms)))
        # <= 5000 so that kp_q10 * ref_q4 <= 8192 * 80000 = 6.6e8 per tick.
        self.vibration_ref_mdeg = max(1, min(_VIB_REF_MAX_MDEG, int(vibration_ref_mdeg)))
        # Gyro counts -> q4 mdps: rate_q4 = (gy * scale) >> shift, with
        # |gy| <= 32768 and scale <= 16383 so the product is <= 5.4e8, half
        # of SMALL_INT_MAX (scale keeps 14 significant bits: 6e-5 relative).
        q4_per_count = 16000.0 / gyro_lsb_per_dps
        shift = 0
        while q4_per_count * (1 << (shift + 1)) < 16383.0 and shift < 24:
            shift += 1
        if q4_per_count * (1 << shift) >= 16383.0:
            raise ValueError("gyro scale too coarse")
        self._gyro_scale = int(round(q4_per_count * (1 << shift)))
        self._gyro_shift = shift
        self._gyro_round = (1 << shift) >> 1
        # Accelerometer norm window in halved counts, squared.
        g_counts = accel_lsb_per_g / (1 << _NORM_SHIFT)
        self._norm2_low = int((0.9 * g_counts) ** 2)
        self._norm2_high = int((1.1 * g_counts) ** 2)
        self._plaus2_low = int((0.75 * g_counts) ** 2)
        self._plaus2_high = int((1.25 * g_counts) ** 2)
        if self._plaus2_high > 0x3FFFFFFF:
            raise ValueError("accel scale too fine")
        # Gains. Kp in Q10 per second; Ki = Kp^2 / 4 as ki_q (see header).
        kp = 1000.0 / accel_tau_ms
        self._kp_q10 = min(_KP_Q10_MAX, int(round(kp * 1024)))
        self._kp_start_q10 = min(_KP_Q10_MAX, 4 * self._kp_q10)
        self._kp_min_q10 = max(1, min(self._kp_q10, int(round(kp_min_per_s * 1024))))
        # ki_q from kp_q10: Ki = Kp^2/4 -> ki_q = (kp_q10/1024)^2 / 4 * 1048.576
        #                 = kp_q10^2 / 4000. Done per tick for the schedule
        # (kp_q10 <= 8192: kp_q10^2 <= 6.7e7).
        self._ki_divisor = 4000
        self.reset()

    def reset(self):
        """Forget everything: next good sample re-initialises the angle."""
        self._angle_udeg = 0
        self._bias_q14 = 0
        self._vib_q4 = 0
        self._prev_accel_mdeg = 0
        self._have_prev_accel = False
        self._initialised = False
        self._since_init_ms = 0
        self.angle_mdeg = 0
        self.rate_mdps = 0
        self.bias_mdps = 0
        self.accel_angle_mdeg = 0
        self.vibration_mdeg = 0
        self.accel_norm_ok = False
        self.accel_plausible = False
        self.settled = False

    def update(self, ax, ay, az, gy, dt_ms):
        """Advance one tick with raw int16 counts; dt_ms since the last sample."""
        dt = dt_ms
        if dt < 0:
            dt = 0
        elif dt > _DT_MAX_MS:
            dt = _DT_MAX_MS
        ax = clamp(ax, _INT16_MIN, _INT16_MAX) - self._ax_offset  # |.| <= 34816
        ay = clamp(ay, _INT16_MIN, _INT16_MAX) - self._ay_offset
        az = clamp(az, _INT16_MIN, _INT16_MAX) - self._az_offset
        gy = clamp(gy, _INT16_MIN, _INT16_MAX)

        # --- gyro: counts -> q4 mdps (|gy * scale| <= 32768 * 16383 = 5.4e8) ---
        gyro_product = gy * self._gyro_scale
        raw_q4 = (gyro_product + self._gyro_round) >> self._gyro_shift
        # Beyond 300 dps the reading is a fault (the table turns at <= 6 dps);
        # the clamp also bounds the integration below for any gyro range.
        if raw_q4 > _RATE_CLAMP_Q4:
            raw_q4 = _RATE_CLAMP_Q4
        elif raw_q4 < -_RATE_CLAMP_Q4:
            raw_q4 = -_RATE_CLAMP_Q4
        bias_q4 = self._bias_q14 >> 10  # q14 -> q4; |.| <= 20000 * 16
        rate_q4 = raw_q4 - bias_q4  # |.| <= 4.8e6 + 3.2e5 = 5.1e6

        # --- accelerometer: norm check and tilt ---
        hx = ax >> _NORM_SHIFT
        hy = ay >> _NORM_SHIFT
        hz = az >> _NORM_SHIFT
        norm2 = hx * hx + hy * hy + hz * hz  # <= 3 * 17408^2 = 9.1e8
        norm_ok = self._norm2_low <= norm2 <= self._norm2_high
        self.accel_norm_ok = norm_ok
        self.accel_plausible = self._plaus2_low <= norm2 <= self._plaus2_high
        accel_mdeg = atan2_mdeg(-ax, az) - self.mount_offset_mdeg
        if accel_mdeg > _DEG180_MDEG:
            accel_mdeg -= _DEG360_MDEG
        elif accel_mdeg <= -_DEG180_MDEG:
            accel_mdeg += _DEG360_MDEG
        self.accel_angle_mdeg = accel_mdeg

        if not self._initialised:
            if norm_ok:
                # Fast start: take the accelerometer tilt as it is.
                self._angle_udeg = accel_mdeg * 1000  # |.| <= 1.8e8
                self._initialised = True
                self._since_init_ms = 0
                self._prev_accel_mdeg = accel_mdeg
                self._have_prev_accel = True
            self._publish(rate_q4)
            return

        # --- vibration meter (only on plausible accel samples) ---
        if norm_ok:
            if self._have_prev_accel:
                step = accel_mdeg - self._prev_accel_mdeg
                if step < 0:
                    step = -step
                if step > _VIB_STEP_CLAMP_MDEG:
                    step = _VIB_STEP_CLAMP_MDEG
                # EMA in q4: (step*16 - vib) * dt <= (320000 + 320000) * 100.
                vib_delta = (step * 16 - self._vib_q4) * dt
                self._vib_q4 += vib_delta // _VIB_TAU_MS
            self._prev_accel_mdeg = accel_mdeg
            self._have_prev_accel = True

        # --- gain schedule ---
        if self._since_init_ms < self.startup_ms:
            self._since_init_ms += dt
            # Start-up gain tapers linearly from Kp_start to Kp: high gains
            # learn the bias fast, the taper averages the accelerometer noise
            # out of it before normal operation.
            # (kp_start - kp) * remaining <= 8192 * 60000 = 4.9e8.
            remaining_ms = self.startup_ms - self._since_init_ms
            if remaining_ms < 0:
                remaining_ms = 0
            taper = (self._kp_start_q10 - self._kp_q10) * remaining_ms
            kp_q10 = self._kp_q10 + taper // self.startup_ms
        else:
            kp_q10 = self._kp_q10
        vib_ref_q4 = self.vibration_ref_mdeg * 16
        if self._vib_q4 > vib_ref_q4:
            # Kp * ref / vib: kp_q10 * vib_ref_q4 <= 8192 * 80000 = 6.6e8.
            kp_scaled = kp_q10 * vib_ref_q4
            kp_q10 = kp_scaled // self._vib_q4
            if kp_q10 < self._kp_min_q10:
                kp_q10 = self._kp_min_q10
        self.settled = self._since_init_ms >= self.startup_ms
        ki_q = kp_q10 * kp_q10 // self._ki_divisor  # <= 6.7e7 / 4000

        # --- integrate the corrected gyro rate (q4 mdps * ms / 16 = udeg) ---
        rate_step = rate_q4 * dt  # <= 5.1e6 * 100 = 5.1e8
        self._angle_udeg += rate_step >> 4

        # --- accelerometer correction (skipped when |a| is implausible) ---
        if norm_ok:
            angle_mdeg = self._angle_udeg // 1000
            err_mdeg = accel_mdeg - angle_mdeg
            if err_mdeg > _DEG180_MDEG:
                err_mdeg -= _DEG360_MDEG
            elif err_mdeg <= -_DEG180_MDEG:
                err_mdeg += _DEG360_MDEG
            err_c = clamp(err_mdeg, -_ERR_CLAMP_MDEG, _ERR_CLAMP_MDEG)
            corr_product = kp_q10 * err_c  # <= 8192 * 45000 = 3.7e8
            corr_q4 = corr_product >> _KP_SHIFT_TO_Q4
            corr_step = corr_q4 * dt  # <= 5.8e6 * 100 = 5.8e8
            self._angle_udeg += corr_step >> 4
            err_b = clamp(err_mdeg, -_BIAS_ERR_CLAMP_MDEG, _BIAS_ERR_CLAMP_MDEG)
            bias_product = ki_q * err_b  # <= 16777 * 20000 = 3.4e8
            bias_step = (bias_product >> _KI_SHIFT) * dt  # <= 5.3e6 * 100
            self._bias_q14 -= bias_step
            self._bias_q14 = clamp(self._bias_q14, -_BIAS_MAX_Q14, _BIAS_MAX_Q14)

        # --- wrap and publish ---
        if self._angle_udeg > _DEG180_UDEG:
            self._angle_udeg -= _DEG360_UDEG
        elif self._angle_udeg <= -_DEG180_UDEG:
            self._angle_udeg += _DEG360_UDEG
        self._publish(rate_q4)

    def _publish(self, rate_q4):
        self.angle_mdeg = (self._angle_udeg + 500) // 1000
        self.rate_mdps = (rate_q4 + 8) >> 4
        self.bias_mdps = (self._bias_q14 + 8192) >> 14
        self.vibration_mdeg = self._vib_q4 >> 4
