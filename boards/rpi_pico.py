"""Raspberry Pi Pico (RP2040) board: builds the peripherals, hands them over.

The only place (with the other board files) that imports `machine`. The
firmware receives this Board object and reads the attributes below; the
simulator's sim/board.py SimBoard has the same attributes. Wiring:
boards/README.md.
"""

import time

import machine
from micropython import const

_I2C_ID = const(0)
_PIN_SDA = const(4)
_PIN_SCL = const(5)
_I2C_FREQ_HZ = const(400000)
_PIN_MOTOR_PWM = const(16)
_PIN_MOTOR_DIR = const(17)
_PIN_CURRENT_ADC = const(26)  # ADC0
_PIN_BUTTON_NO = const(10)
_PIN_BUTTON_NC = const(11)
_PIN_HOME_SWITCH = const(12)
_PIN_FAR_SWITCH = const(13)
_PIN_BUZZER = const(18)
_PIN_LED = const(25)  # on-board LED
_WDT_TIMEOUT_MS = const(1000)
IMU_ADDR = const(0x68)
CURRENT_FULL_SCALE_MA = const(20000)  # current sensor output at 3.3 V


class Board:
    name = "rpi_pico"

    def __init__(self, wdt=True):
        # Outputs first, driven to their safe level before anything else runs.
        self.motor_dir = machine.Pin(_PIN_MOTOR_DIR, machine.Pin.OUT, value=0)
        self.motor_pwm = machine.PWM(machine.Pin(_PIN_MOTOR_PWM))
        self.motor_pwm.duty_u16(0)
        self.buzzer = machine.Pin(_PIN_BUZZER, machine.Pin.OUT, value=0)
        self.led = machine.Pin(_PIN_LED, machine.Pin.OUT, value=0)
        self.clock = time  # ticks_ms, ticks_us, ticks_diff, ticks_add, sleep_ms
        self.i2c = machine.I2C(
            _I2C_ID, sda=machine.Pin(_PIN_SDA), scl=machine.Pin(_PIN_SCL), freq=_I2C_FREQ_HZ
        )
        self.imu_addr = IMU_ADDR
        self.current_adc = machine.ADC(machine.Pin(_PIN_CURRENT_ADC))
        self.current_full_scale_ma = CURRENT_FULL_SCALE_MA
        # Inputs with pull-ups: an open circuit reads 1. The button's NO
        # contact reads 0 when pressed, its NC contact 1; end switches are NC
        # to ground and read 1 at the end of stroke (or with a broken wire).
        pull = machine.Pin.PULL_UP
        self.button_no = machine.Pin(_PIN_BUTTON_NO, machine.Pin.IN, pull)
        self.button_nc = machine.Pin(_PIN_BUTTON_NC, machine.Pin.IN, pull)
        self.home_switch = machine.Pin(_PIN_HOME_SWITCH, machine.Pin.IN, pull)
        self.far_switch = machine.Pin(_PIN_FAR_SWITCH, machine.Pin.IN, pull)
        self.deadman_timer = machine.Timer()
        # Once started the RP2040 watchdog cannot be stopped: only a healthy
        # control loop feeds it.
        self.wdt = machine.WDT(timeout=_WDT_TIMEOUT_MS) if wdt else None
