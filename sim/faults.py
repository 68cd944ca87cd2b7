"""Faults the simulator can inject, by name (ArduPilot SITL style).

A fault changes a simulator parameter (a knob on the plant, the IMU model, a
pin); the firmware is never told and has no test-only branch: it must notice
from what its sensors say. The full catalogue grows with the safety work
(SAFETY.md); each entry is `name: (description, apply(board))`.
"""


def _imu_freeze(board):
    board.imu.frozen = True


def _imu_disconnect(board):
    board.imu.nack = True


LOOP_HANG_MS = 5000  # longer than the 1 s watchdog: the reset ends the hang


def _loop_hang(board):
    board.hang_cpu(LOOP_HANG_MS)


CATALOGUE = {
    "imu_freeze": ("IMU data registers stop updating (same bytes every read)", _imu_freeze),
    "imu_disconnect": (
        "IMU stops acknowledging: every I2C transfer raises OSError",
        _imu_disconnect,
    ),
    "loop_hang": (
        "the CPU stops running the control loop (stuck, %d s): the H-bridge dead-man stops "
        "the motor, the watchdog resets the firmware, which boots and recovers home"
        % (LOOP_HANG_MS // 1000),
        _loop_hang,
    ),
}


def inject(board, name):
    """Apply the named fault to a SimBoard; KeyError for an unknown name."""
    CATALOGUE[name][1](board)
