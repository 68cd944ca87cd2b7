"""Faults the simulator can inject, by name (ArduPilot SITL style).

A fault changes a simulator parameter (a knob on the plant, the IMU model, a
pin, the board's power); the firmware is never told and has no test-only
branch: it must notice from what its sensors say. SAFETY.md has the FMEA:
for each fault how it is detected, the reaction, its time bound and the test.
Each entry is `name: (description, kind, apply(board))`; `kind` is what the
firmware should make of it:

    "return"  noticed, and the table comes home by controlled motion
    "stop"    motion itself is the hazard: stopped, power cut, fault reported
    "ride"    a good controller rides through it, keeping every limit
              (it may also end the session early, never unsafely)
"""

import errno

LOOP_HANG_MS = 5000  # longer than the 1 s watchdog: the reset ends the hang
POWER_LOSS_MS = 3000  # mains off, then back: the firmware boots mid-session
BOUNCE_MS = 300  # button contacts chatter this long
GYRO_BIAS_STEP_DPS = 1.0  # a bias step on the pitch axis (temperature, shock)
ACCEL_SCALE_BROKEN = 1.6  # |a| reads 1.6 g at rest: a damaged sensing element
POT_SLIP_COUNTS = 6000  # about 12 deg mid-stroke: the pot slipped on its shaft
WEAK_FORCE_SCALE = 0.55  # the actuator gives 55 % of its rated force
NOISE_ACCEL_G = 0.12  # heavy vibration (a loose mount, a worn gearbox): 40x the part's own
NOISE_GYRO_DPS = 1.0  # 25x


def _imu_freeze(board):
    board.imu.frozen = True


def _imu_disconnect(board):
    board.imu.nack = True


def _imu_noise(board):
    board.imu.accel_noise_g = NOISE_ACCEL_G
    board.imu.gyro_noise_dps = NOISE_GYRO_DPS


def _imu_gyro_bias(board):
    bx, by, bz = board.imu.gyro_bias_dps
    board.imu.gyro_bias_dps = (bx, by + GYRO_BIAS_STEP_DPS, bz)


def _imu_implausible(board):
    board.imu.accel_scale = ACCEL_SCALE_BROKEN


def _button_wire_break(board):
    board.button_wire_broken = True


def _button_contact_disagree(board):
    board.button_no_welded = True


def _button_bounce(board):
    board.button_bounce_until_us = board.clock.elapsed_us + BOUNCE_MS * 1000


def _actuator_stall(board):
    board.plant.jammed = True


def _actuator_runaway(board):
    # The bridge stuck on at full drive in the direction it was driving
    # (head-down if it was idle: the worst case).
    board.bridge_stuck_duty = -1.0 if board.duty < 0.0 else 1.0


def _actuator_open_circuit(board):
    board.plant.open_circuit = True


def _actuator_weak(board):
    board.plant.force_scale = WEAK_FORCE_SCALE


def _position_sensor_disagree(board):
    board.pot_offset_u16 = POT_SLIP_COUNTS


def _end_switch_stuck(board):
    board.home_switch_stuck = True


def _far_switch_stuck(board):
    board.far_switch_stuck = True


def _power_loss(board):
    board.power_loss(POWER_LOSS_MS)


def _loop_hang(board):
    board.hang_cpu(LOOP_HANG_MS)


def _exception_in_loop(board):
    board.imu.raise_once = RuntimeError("I2C controller in an unexpected state")


def _ankle_unlock(board):
    board.ankle_locked = False


def _imu_bus_glitch(board):
    board.imu.raise_once = OSError(errno.EIO, "EIO")


CATALOGUE = {
    "imu_freeze": ("IMU data registers stop updating (same bytes every read)", "return",
                   _imu_freeze),
    "imu_disconnect": ("IMU stops acknowledging: every I2C transfer raises OSError", "return",
                       _imu_disconnect),
    "imu_noise": ("heavy vibration: accelerometer noise %.2f g, gyro %.1f dps"
                  % (NOISE_ACCEL_G, NOISE_GYRO_DPS), "ride", _imu_noise),
    "imu_gyro_bias": ("gyro bias steps by %.1f dps on the pitch axis" % GYRO_BIAS_STEP_DPS,
                      "ride", _imu_gyro_bias),
    "imu_implausible": ("accelerometer reads %.1f g at rest (|a| far from 1 g)"
                        % ACCEL_SCALE_BROKEN, "return", _imu_implausible),
    "imu_bus_glitch": ("one I2C transfer fails (EIO), then the bus works again", "ride",
                       _imu_bus_glitch),
    "button_wire_break": ("handset cable cut: both contacts read open", "return",
                          _button_wire_break),
    "button_contact_disagree": ("normally-open contact welded: the contacts disagree when "
                                "the button is let go", "return", _button_contact_disagree),
    "button_bounce": ("button contacts chatter for %d ms while held" % BOUNCE_MS, "ride",
                      _button_bounce),
    "actuator_stall": ("actuator jams: no motion, stall current while driven", "stop",
                       _actuator_stall),
    "actuator_open_circuit": ("motor lead open (or fuse blown): driven, nothing moves, no "
                              "current", "stop", _actuator_open_circuit),
    "actuator_runaway": ("H-bridge stuck on at full drive, whatever its inputs", "stop",
                         _actuator_runaway),
    "actuator_weak": ("actuator gives %d %% of its rated force" % (WEAK_FORCE_SCALE * 100),
                      "ride", _actuator_weak),
    "position_sensor_disagree": ("position pot slips by %d counts: pot and IMU disagree"
                                 % POT_SLIP_COUNTS, "return", _position_sensor_disagree),
    "end_switch_stuck": ("home end switch stuck engaged", "return", _end_switch_stuck),
    "far_switch_stuck": ("far (head-down) end switch stuck engaged", "return",
                         _far_switch_stuck),
    "power_loss": ("mains off for %d s: the firmware restarts mid-session, the table stays "
                   "where it was" % (POWER_LOSS_MS // 1000), "return", _power_loss),
    "loop_hang": (
        "the CPU stops running the control loop (stuck, %d s): the H-bridge dead-man stops "
        "the motor, the watchdog resets the firmware, which boots and recovers home"
        % (LOOP_HANG_MS // 1000), "return", _loop_hang),
    "exception_in_loop": ("an unexpected exception (not OSError) escapes the control tick",
                          "return", _exception_in_loop),
    "ankle_unlock": ("ankle lock opens during a session", "return", _ankle_unlock),
}


def kind(name):
    """"return", "stop" or "ride" for a fault name (KeyError if unknown)."""
    return CATALOGUE[name][1]


def inject(board, name):
    """Apply the named fault to a SimBoard; KeyError for an unknown name."""
    CATALOGUE[name][2](board)
