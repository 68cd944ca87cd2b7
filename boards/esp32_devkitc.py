"""Espressif ESP32-DevKitC (ESP32-WROOM-32 / -32E module): builds the peripherals.

The only place (with the other board files) that imports `machine`. The
firmware receives this Board object and reads the same attributes as on the
Raspberry Pi Pico (boards/rpi_pico.py); the simulator's sim/board.py SimBoard
has them too. Wiring and parts: boards/README.md.

Pin choice (ESP32 pitfalls avoided):
- GPIO 6-11 are the module's SPI flash: never used.
- Strapping pins (GPIO 0, 2, 5, 12, 15) drive nothing here. Pins that toggle
  or output PWM during boot (GPIO 1, 3 = UART0, 14, 15, 5) drive no motor
  output or power relay: one that glitches while the chip boots could move
  the table. Only the indicator LED is on one of them (GPIO 14): every other
  output-capable pin that is safe at boot is in use.
- GPIO 34-39 are input-only and have no internal pull-ups: used only for the
  analog inputs, never for a pulled-up switch.
- GPIO 16/17 are the PSRAM lines on WROVER modules: not used, so the same
  wiring works on every DevKitC variant.
- The ADCs are on ADC1 (GPIO 32-39): ADC2 is unusable while Wi-Fi runs.
"""

import time

import machine
from micropython import const

_I2C_ID = const(0)
_PIN_SDA = const(21)
_PIN_SCL = const(22)
_I2C_FREQ_HZ = const(400000)
# H-bridge. PWM/DIR bridge: PWM on _PIN_MOTOR_A, DIR on _PIN_MOTOR_B.
# Dual-PWM bridge (BTS7960 / IBT-2): RPWM (extend) on _PIN_MOTOR_A, LPWM
# (retract) on _PIN_MOTOR_B, R_EN + L_EN together on _PIN_MOTOR_EN.
_PIN_MOTOR_A = const(25)
_PIN_MOTOR_B = const(26)
_PIN_MOTOR_EN = const(27)
# Actuator power relay (normally open, in series with the bridge's motor
# supply): 1 closes it. Driven through a transistor with a pull-down on its
# base/gate, so a reset (pin back to input) opens it. GPIO4 is neither a
# strapping pin nor one that toggles while the chip boots (the LED, which
# was here, moved to GPIO14 to make room).
_PIN_MOTOR_POWER = const(4)
_PIN_CURRENT_ADC = const(34)  # ADC1_CH6, input-only pin: analog only
_PIN_POSITION_ADC = const(35)  # ADC1_CH7, input-only pin: analog only
_PIN_BUTTON_NO = const(32)
_PIN_BUTTON_NC = const(33)
_PIN_HOME_SWITCH = const(18)
_PIN_FAR_SWITCH = const(19)
_PIN_ANKLE_LOCK = const(23)
_PIN_BUZZER = const(13)
# The DevKitC has no user LED: an external LED + 330 ohm. GPIO14 may toggle
# while the chip boots: harmless for an indicator, which is why the LED (and
# no motor output) is there.
_PIN_LED = const(14)
_DEADMAN_TIMER_ID = const(0)  # hardware timer 0 (group 0, timer 0)
_WDT_TIMEOUT_MS = const(1000)  # the ESP32's minimum
_PWM_FREQ_HZ = const(20000)
CURRENT_FULL_SCALE_MA = const(20000)  # current at the top of the ADC range (see README)

# What is fitted; change here for another build (config.json will take over).
IMU_TYPE = "mpu6050"  # "mpu6050" (GY-521 at 0x68) or "lsm6dsox" (breakout at 0x6A)
HBRIDGE_TYPE = "pwm_dir"  # "pwm_dir" (MD10C class) or "dual_pwm" (BTS7960 / IBT-2)
POSITION_POT = False  # actuator with a feedback potentiometer wired to _PIN_POSITION_ADC
IMU_ADDRS = {"mpu6050": 0x68, "lsm6dsox": 0x6A}


class Board:
    name = "esp32_devkitc"

    def __init__(self, wdt=True, imu_type=IMU_TYPE, hbridge_type=HBRIDGE_TYPE,
                 position_pot=POSITION_POT):
        if imu_type not in IMU_ADDRS:
            raise ValueError("imu_type %r: expected mpu6050 or lsm6dsox" % (imu_type,))
        if hbridge_type != "pwm_dir" and hbridge_type != "dual_pwm":
            raise ValueError("hbridge_type %r: expected pwm_dir or dual_pwm" % (hbridge_type,))
        Pin = machine.Pin
        # Outputs first, driven to their safe level before anything else runs:
        # the power relay open, then the bridge inputs off. (While the chip
        # resets these pins float: 10 k pull-downs on the bridge inputs and on
        # the relay driver's base/gate hold them off, see boards/README.md.)
        self.motor_power = Pin(_PIN_MOTOR_POWER, Pin.OUT, value=0)
        self.hbridge_type = hbridge_type
        self.motor_enable = None
        self.motor_pwm_retract = None
        self.motor_dir = None
        if hbridge_type == "dual_pwm":
            self.motor_enable = Pin(_PIN_MOTOR_EN, Pin.OUT, value=0)
            self.motor_pwm_retract = machine.PWM(Pin(_PIN_MOTOR_B, Pin.OUT, value=0),
                                                 freq=_PWM_FREQ_HZ, duty_u16=0)
        else:
            self.motor_dir = Pin(_PIN_MOTOR_B, Pin.OUT, value=0)
        self.motor_pwm = machine.PWM(Pin(_PIN_MOTOR_A, Pin.OUT, value=0),
                                     freq=_PWM_FREQ_HZ, duty_u16=0)
        self.buzzer = Pin(_PIN_BUZZER, Pin.OUT, value=0)
        self.led = Pin(_PIN_LED, Pin.OUT, value=0)
        self.clock = time  # ticks_ms, ticks_us, ticks_diff, ticks_add, sleep_ms
        self.i2c = machine.I2C(_I2C_ID, sda=Pin(_PIN_SDA), scl=Pin(_PIN_SCL), freq=_I2C_FREQ_HZ)
        self.imu_type = imu_type
        self.imu_addr = IMU_ADDRS[imu_type]
        # 11 dB attenuation: the ADC spans about 0.15-3.1 V (linear to ~2.5 V;
        # read_uv() is the calibrated reading if accuracy matters).
        atten = machine.ADC.ATTN_11DB
        self.current_adc = machine.ADC(Pin(_PIN_CURRENT_ADC), atten=atten)
        self.current_full_scale_ma = CURRENT_FULL_SCALE_MA
        self.position_adc = (
            machine.ADC(Pin(_PIN_POSITION_ADC), atten=atten) if position_pot else None
        )
        # Inputs with pull-ups: an open circuit reads 1. The button's NO
        # contact reads 0 when pressed, its NC contact 1; end switches are NC
        # to ground and read 1 at the end of stroke (or with a broken wire);
        # the ankle-lock switch is NO to ground and reads 0 only while the
        # lock is latched. The internal pull-ups are weak (~45 k): the README
        # adds 4.7 k external ones for the cable runs.
        pull = Pin.PULL_UP
        self.button_no = Pin(_PIN_BUTTON_NO, Pin.IN, pull)
        self.button_nc = Pin(_PIN_BUTTON_NC, Pin.IN, pull)
        self.home_switch = Pin(_PIN_HOME_SWITCH, Pin.IN, pull)
        self.far_switch = Pin(_PIN_FAR_SWITCH, Pin.IN, pull)
        self.ankle_lock = Pin(_PIN_ANKLE_LOCK, Pin.IN, pull)
        self.deadman_timer = machine.Timer(_DEADMAN_TIMER_ID)
        # Once started the watchdog cannot be stopped: only a healthy control
        # loop feeds it.
        self.wdt = machine.WDT(timeout=_WDT_TIMEOUT_MS) if wdt else None
