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


CATALOGUE = {
    "imu_freeze": ("IMU data registers stop updating (same bytes every read)", _imu_freeze),
    "imu_disconnect": (
        "IMU stops acknowledging: every I2C transfer raises OSError",
        _imu_disconnect,
    ),
}


def inject(board, name):
    """Apply the named fault to a SimBoard; KeyError for an unknown name."""
    CATALOGUE[name][1](board)
