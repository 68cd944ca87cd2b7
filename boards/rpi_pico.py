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
# H-bridge. PWM/DIR bridge: PWM on GPIO 16, DIR on GPIO 17. Dual-PWM bridge
# (BTS7960 / IBT-2): RPWM (extend) on GPIO 16, LPWM (retract) on GPIO 17 (the
# two channels of PWM slice 0: same frequency), R_EN + L_EN on GPIO 20.
_PIN_MOTOR_PWM = const(16)
_PIN_MOTOR_DIR = const(17)
_PIN_MOTOR_EN = const(20)
# Actuator power relay (normally open, in series with the bridge's motor
# supply): 1 closes it. Driven through a transistor with a pull-down on its
# base/gate, so a reset (pin back to input) opens it. GP21 / pin 27.
_PIN_MOTOR_POWER = const(21)
_PIN_CURRENT_ADC = const(26)  # ADC0
_PIN_POSITION_ADC = const(27)  # ADC1
_PIN_BUTTON_NO = const(10)
_PIN_BUTTON_NC = const(11)
_PIN_HOME_SWITCH = const(12)
_PIN_FAR_SWITCH = const(13)
_PIN_ANKLE_LOCK = const(14)
_PIN_BUZZER = const(18)
_PIN_LED = const(25)  # on-board LED
_WDT_TIMEOUT_MS = const(1000)
_PWM_FREQ_HZ = const(20000)
IMU_ADDR = const(0x68)
CURRENT_FULL_SCALE_MA = const(20000)  # current sensor output at 3.3 V

# What is fitted; change here for another build (config.json will take over).
IMU_TYPE = "mpu6050"  # "mpu6050" (GY-521 at 0x68) or "lsm6dsox" (breakout at 0x6A)
HBRIDGE_TYPE = "pwm_dir"  # "pwm_dir" (MD10C class) or "dual_pwm" (BTS7960 / IBT-2)
POSITION_POT = False  # actuator with a feedback potentiometer wired to ADC1
IMU_ADDRS = {"mpu6050": 0x68, "lsm6dsox": 0x6A}


class Board:
    name = "rpi_pico"

    def __init__(self, wdt=True, imu_type=IMU_TYPE, hbridge_type=HBRIDGE_TYPE,
                 position_pot=POSITION_POT):
        if imu_type not in IMU_ADDRS:
            raise ValueError("imu_type %r: expected mpu6050 or lsm6dsox" % (imu_type,))
        if hbridge_type != "pwm_dir" and hbridge_type != "dual_pwm":
            raise ValueError("hbridge_type %r: expected pwm_dir or dual_pwm" % (hbridge_type,))
        # Outputs first, driven to their safe level before anything else runs:
        # the power relay open, then the bridge inputs off.
        self.motor_power = machine.Pin(_PIN_MOTOR_POWER, machine.Pin.OUT, value=0)
        self.hbridge_type = hbridge_type
        self.motor_enable = None
        self.motor_pwm_retract = None
        self.motor_dir = None
        if hbridge_type == "dual_pwm":
            self.motor_enable = machine.Pin(_PIN_MOTOR_EN, machine.Pin.OUT, value=0)
            self.motor_pwm_retract = machine.PWM(machine.Pin(_PIN_MOTOR_DIR),
                                                 freq=_PWM_FREQ_HZ, duty_u16=0)
        else:
            self.motor_dir = machine.Pin(_PIN_MOTOR_DIR, machine.Pin.OUT, value=0)
        self.motor_pwm = machine.PWM(machine.Pin(_PIN_MOTOR_PWM))
        self.motor_pwm.duty_u16(0)
        self.buzzer = machine.Pin(_PIN_BUZZER, machine.Pin.OUT, value=0)
        self.led = machine.Pin(_PIN_LED, machine.Pin.OUT, value=0)
        self.clock = time  # ticks_ms, ticks_us, ticks_diff, ticks_add, sleep_ms
        self.i2c = machine.I2C(
            _I2C_ID, sda=machine.Pin(_PIN_SDA), scl=machine.Pin(_PIN_SCL), freq=_I2C_FREQ_HZ
        )
        self.imu_type = imu_type
        self.imu_addr = IMU_ADDRS[imu_type]
        self.current_adc = machine.ADC(machine.Pin(_PIN_CURRENT_ADC))
        self.current_full_scale_ma = CURRENT_FULL_SCALE_MA
        self.position_adc = machine.ADC(machine.Pin(_PIN_POSITION_ADC)) if position_pot else None
        # Inputs with pull-ups: an open circuit reads 1. The button's NO
        # contact reads 0 when pressed, its NC contact 1; end switches are NC
        # to ground and read 1 at the end of stroke (or with a broken wire);
        # the ankle-lock switch is NO to ground and reads 0 only while the
        # lock is latched (a broken wire reads unlocked).
        pull = machine.Pin.PULL_UP
        self.button_no = machine.Pin(_PIN_BUTTON_NO, machine.Pin.IN, pull)
        self.button_nc = machine.Pin(_PIN_BUTTON_NC, machine.Pin.IN, pull)
        self.home_switch = machine.Pin(_PIN_HOME_SWITCH, machine.Pin.IN, pull)
        self.far_switch = machine.Pin(_PIN_FAR_SWITCH, machine.Pin.IN, pull)
        self.ankle_lock = machine.Pin(_PIN_ANKLE_LOCK, machine.Pin.IN, pull)
        # id -1: the soft timer, the only kind rp2 has (Timer() means the same;
        # the documented signature wants the id).
        self.deadman_timer = machine.Timer(-1)
        # Once started the RP2040 watchdog cannot be stopped: only a healthy
        # control loop feeds it.
        self.wdt = machine.WDT(timeout=_WDT_TIMEOUT_MS) if wdt else None
