"""Boot self-test: is the hardware and the firmware what a session needs?

Runs once at boot, before the controller (main.py), so floats and small
allocations are fine here. Each check that fails adds a reason (a sentence
for the serial console, prefixed by the part: "imu:", "button:", "switch:",
"files:") to the result; `ok` is true when none failed.

    result = run_selftest(board, imu, table, manifest=None, read_file_hash=None)
    result = check_files(board, manifest, read_file_hash=None)  # the file check alone

board           the board object (boards/*.py or sim/board.py)
imu             an IMU driver instance for the board (not yet init()ed);
                its scales come from the driver module for board.imu_type
table           firmware.config.Table: home angle and IMU mounting offset
manifest        the deploy manifest ({"board": name, "files": {path: sha256
                hex}}), or None to skip the file check (bench, simulator)
read_file_hash  path -> SHA-256 hex string (raises OSError if unreadable);
                default sha256_file (hashlib + binascii, on the board)

Checks:
- imu: init() answers (WHO_AM_I) and sets up; a few samples at rest read
  |a| = 1 g within 10 %, no more than 0.25 g along the pivot axis (y: a
  sensor rotated on its mount, or the wrong imu_type axes), every gyro axis
  under 20 dps (what the estimator can learn as bias), and the data change
  from sample to sample (not frozen);
- button: both contacts agree that it is up (NO open, NC closed) on every
  sample: held at boot, a welded contact or a broken wire fails;
- switch: the end switches agree with the accelerometer angle: the far
  switch only near +90 deg, the home switch only near home (a broken wire to
  an NC switch reads engaged);
- files: every file in the manifest hashes to its recorded SHA-256, and the
  manifest was made for this board.

`recovery_ok` says whether the way home can still be trusted despite the
failures: the IMU and the files passed (button and end-switch faults do not
affect RECOVERING, which needs neither). main.py then brings a table that is
away from home back, and runs no session.
"""

import math

from firmware import session as S
from firmware.controller import board_imu_type, imu_driver

ACCEL_NORM_TOLERANCE = 0.10  # |a| within 1 g +- 10 %
PIVOT_AXIS_MAX_G = 0.25
GYRO_REST_MAX_DPS = 20.0
FAR_SWITCH_MIN_DEG = 85.0  # the far switch sits near +90 (past the highest setpoint)
HOME_SWITCH_BAND_DEG = 5.0  # the home switch is believed within this of home
IMU_SAMPLES = 8
IMU_SAMPLE_GAP_MS = 10
BUTTON_SAMPLES = 5
BUTTON_SAMPLE_GAP_MS = 10
_HASH_CHUNK = 1024


class SelfTestResult:
    """ok, reasons (list of str), recovery_ok, and what was measured:
    accel_angle_deg (None if the IMU gave nothing), accel_norm_g, files_checked."""

    def __init__(self):
        self.reasons = []
        self.blocks_recovery = False
        self.accel_angle_deg = None
        self.accel_norm_g = None
        self.files_checked = 0

    @property
    def ok(self):
        return not self.reasons

    @property
    def recovery_ok(self):
        return not self.blocks_recovery and self.accel_angle_deg is not None

    def fail(self, reason, blocks_recovery=True):
        self.reasons.append(reason)
        if blocks_recovery:
            self.blocks_recovery = True

    def __repr__(self):
        if self.ok:
            return "SelfTestResult(ok)"
        return "SelfTestResult(failed: %s)" % "; ".join(self.reasons)


def sha256_file(path):
    """SHA-256 of a file as lowercase hex (MicroPython: hashlib + binascii)."""
    import binascii
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_HASH_CHUNK)
            if not chunk:
                break
            h.update(chunk)
    return binascii.hexlify(h.digest()).decode()


def _feed(board):
    wdt = board.wdt
    if wdt is not None:
        wdt.feed()  # boot work is bounded; the control loop feeds it from then on


def _check_imu(board, imu, table, result):
    _cls, accel_lsb, gyro_lsb_x10 = imu_driver(board_imu_type(board))
    where = "%s at 0x%02x" % (board_imu_type(board), board.imu_addr)
    try:
        imu.init()
    except OSError as err:
        result.fail("imu: %s does not answer or is not that chip (%r)" % (where, err))
        return
    sums = [0, 0, 0, 0, 0, 0]
    gyro_max = [0, 0, 0]
    for i in range(IMU_SAMPLES):
        board.clock.sleep_ms(IMU_SAMPLE_GAP_MS)
        try:
            imu.read()
        except OSError as err:
            result.fail("imu: %s: read %d of %d failed (%r)" % (where, i + 1, IMU_SAMPLES, err))
            return
        values = (imu.ax, imu.ay, imu.az, imu.gx, imu.gy, imu.gz)
        for k in range(6):
            sums[k] += values[k]
        for k in range(3):
            gyro_max[k] = max(gyro_max[k], abs(values[3 + k]))
    _feed(board)
    if imu.frozen_reads >= IMU_SAMPLES - 1:
        result.fail("imu: %s: the data do not change from sample to sample (frozen)" % where)
        return
    ax, ay, az = (sums[k] / IMU_SAMPLES / accel_lsb for k in range(3))
    norm = (ax * ax + ay * ay + az * az) ** 0.5
    result.accel_norm_g = norm
    if abs(norm - 1.0) > ACCEL_NORM_TOLERANCE:
        result.fail("imu: %s: |a| = %.3f g at rest, expected 1 g +- %d %%"
                    % (where, norm, round(ACCEL_NORM_TOLERANCE * 100)))
        return
    if abs(ay) > PIVOT_AXIS_MAX_G:
        result.fail("imu: %s: %.2f g along the pivot axis (y), at most %.2f g expected: "
                    "sensor rotated on its mount, or the wrong imu_type"
                    % (where, ay, PIVOT_AXIS_MAX_G))
        return
    gyro_dps = max(gyro_max) * 10.0 / gyro_lsb_x10
    if gyro_dps > GYRO_REST_MAX_DPS:
        result.fail("imu: %s: gyro reads %.1f dps at rest, at most %.0f dps expected"
                    % (where, gyro_dps, GYRO_REST_MAX_DPS))
        return
    sensor_deg = math.degrees(math.atan2(-ax, az))
    result.accel_angle_deg = sensor_deg - table.imu_mount_offset_mdeg / 1000.0


def _check_button(board, result):
    for i in range(BUTTON_SAMPLES):
        if i:
            board.clock.sleep_ms(BUTTON_SAMPLE_GAP_MS)
        no = board.button_no.value()
        nc = board.button_nc.value()
        if no == 1 and nc == 0:
            continue  # up: NO open (pulled up), NC closed to ground
        if no == 0 and nc == 1:
            why = "held at boot (NO closed, NC open): let go of it, or a contact is stuck"
        else:
            why = ("contacts disagree (NO reads %d, NC reads %d): broken wire or welded "
                   "contact" % (no, nc))
        result.fail("button: " + why, blocks_recovery=False)
        return


def _check_switches(board, table, result):
    angle = result.accel_angle_deg
    far = board.far_switch.value() == 1
    home = board.home_switch.value() == 1
    if far and home:
        result.fail("switch: home and far end switches both read engaged: wiring fault "
                    "(broken common wire?)", blocks_recovery=False)
        return
    if angle is None:
        return  # no angle to compare with; the IMU failure is reported already
    home_deg = table.home_mdeg / 1000.0
    if far and angle < FAR_SWITCH_MIN_DEG:
        result.fail("switch: far end switch reads engaged at %.1f deg (only expected above "
                    "%.0f deg): broken wire or stuck switch" % (angle, FAR_SWITCH_MIN_DEG),
                    blocks_recovery=False)
    if home and angle > home_deg + HOME_SWITCH_BAND_DEG:
        result.fail("switch: home end switch reads engaged at %.1f deg (home is %.1f deg): "
                    "broken wire or stuck switch" % (angle, home_deg), blocks_recovery=False)


def _check_files(board, manifest, read_file_hash, result):
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        result.fail("files: the manifest has no 'files' table")
        return
    name = manifest.get("board")
    if name is not None and name != board.name:
        result.fail("files: the manifest is for board %r, this board is %r" % (name, board.name))
    if read_file_hash is None:
        read_file_hash = sha256_file
    for path in sorted(manifest["files"]):
        expected = manifest["files"][path]
        try:
            actual = read_file_hash(path)
        except OSError as err:
            result.fail("files: %s cannot be read (%r)" % (path, err))
            continue
        finally:
            _feed(board)
        result.files_checked += 1
        if actual != expected:
            result.fail("files: %s has SHA-256 %s..., the manifest says %s..."
                        % (path, str(actual)[:12], str(expected)[:12]))


def check_files(board, manifest, read_file_hash=None, result=None):
    """The file check alone (run_selftest runs it when given a manifest): every
    file in `manifest` against its SHA-256, and the manifest's board against
    board.name (the board object needs only `name` and `wdt`). Adds to
    `result` (a new SelfTestResult by default) and returns it."""
    if result is None:
        result = SelfTestResult()
    _check_files(board, manifest, read_file_hash, result)
    return result


def run_selftest(board, imu, table, manifest=None, read_file_hash=None):
    """Run every check once; returns a SelfTestResult (never raises for a fault)."""
    result = SelfTestResult()
    _feed(board)
    _check_imu(board, imu, table, result)
    _check_button(board, result)
    _check_switches(board, table, result)
    if manifest is not None:
        _check_files(board, manifest, read_file_hash, result)
    _feed(board)
    return result


def away_from_home(result, table):
    """True when the accelerometer angle is outside the session's home tolerance."""
    angle = result.accel_angle_deg
    if angle is None:
        return False
    return abs(angle * 1000.0 - table.home_mdeg) > S.HOME_TOLERANCE_MDEG
