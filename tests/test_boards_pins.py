"""Board files: the same attributes on every board, safe pins, outputs off first.

boards/*.py import `machine`; here a recording stand-in takes its place, so
the board constructors run on CPython and every pin they claim is checked
against the chip's pitfalls (ESP32: flash pins, strapping pins, input-only
pins without pull-ups, ADC2 versus Wi-Fi).
"""

import importlib
import sys
import types

import pytest

from sim.board import SimBoard
from sim.plant import User

BOARD_MODULES = ("rpi_pico", "esp32_devkitc")
# What the firmware (and the self-test, main.py) may read from any board.
BOARD_ATTRIBUTES = {
    "name", "clock", "i2c", "imu_addr", "imu_type", "motor_pwm", "motor_dir",
    "motor_pwm_retract", "motor_enable", "hbridge_type", "current_adc",
    "current_full_scale_ma", "position_adc", "button_no", "button_nc", "home_switch",
    "far_switch", "ankle_lock", "buzzer", "led", "wdt", "deadman_timer", "motor_power",
}

ESP32_FLASH_PINS = set(range(6, 12))
ESP32_STRAPPING_PINS = {0, 2, 5, 12, 15}
ESP32_BOOT_GLITCH_PINS = {1, 3, 5, 14, 15}  # UART0, and pins that output PWM at boot
ESP32_INPUT_ONLY_PINS = set(range(34, 40))
ESP32_ADC1_PINS = set(range(32, 40))
ESP32_GPIOS = set(range(0, 20)) | {21, 22, 23, 25, 26, 27} | set(range(32, 40))
PICO_ADC_PINS = {26, 27, 28}
PICO_GPIOS = set(range(0, 29))


class FakeMachine:
    """A stand-in for `machine` that records, in order, what the board builds."""

    def __init__(self):
        self.log = []
        log = self.log

        class Pin:
            IN = 0
            OUT = 1
            OPEN_DRAIN = 2
            PULL_UP = 1
            PULL_DOWN = 2

            def __init__(self, id, mode=-1, pull=-1, *, value=None):
                self.id = id
                self.mode = mode
                self.pull = pull
                self.level = value
                log.append(("pin", self))

            def value(self, v=None):
                if v is None:
                    return self.level
                self.level = v
                return None

        class PWM:
            def __init__(self, dest, *, freq=None, duty_u16=None):
                self.pin = dest
                self.duty = duty_u16
                self.frequency = freq
                log.append(("pwm", self))

            def duty_u16(self, d=None):
                if d is None:
                    return self.duty
                self.duty = d
                return None

            def freq(self, f=None):
                if f is None:
                    return self.frequency
                self.frequency = f
                return None

        class ADC:
            ATTN_0DB = 0
            ATTN_11DB = 3

            def __init__(self, pin, *, atten=None):
                self.pin = pin
                self.atten = atten
                log.append(("adc", self))

        class I2C:
            def __init__(self, id, *, sda, scl, freq=400000):
                self.id = id
                self.sda = sda
                self.scl = scl
                self.freq = freq
                log.append(("i2c", self))

        class Timer:
            def __init__(self, id=-1):
                self.id = id
                log.append(("timer", self))

        class WDT:
            def __init__(self, *, id=0, timeout=5000):
                self.timeout = timeout
                log.append(("wdt", self))

        self.module = types.ModuleType("machine")
        for cls in (Pin, PWM, ADC, I2C, Timer, WDT):
            setattr(self.module, cls.__name__, cls)

    def pins(self):
        return [obj for kind, obj in self.log if kind == "pin"]


def build(monkeypatch, module_name, **kwargs):
    fake = FakeMachine()
    monkeypatch.setitem(sys.modules, "machine", fake.module)
    monkeypatch.delitem(sys.modules, "boards." + module_name, raising=False)
    module = importlib.import_module("boards." + module_name)
    board = module.Board(**kwargs)
    return module, board, fake


def pin_ids(fake):
    """Every GPIO the board claimed (Pin objects; ADC/PWM/I2C wrap them)."""
    return [p.id for p in fake.pins()]


CONFIGS = [
    {},
    {"hbridge_type": "dual_pwm"},
    {"imu_type": "lsm6dsox", "position_pot": True},
    {"hbridge_type": "dual_pwm", "imu_type": "lsm6dsox", "position_pot": True},
]


@pytest.mark.parametrize("module_name", BOARD_MODULES)
@pytest.mark.parametrize("config", CONFIGS)
def test_every_board_has_the_same_attributes(monkeypatch, module_name, config):
    _module, board, _fake = build(monkeypatch, module_name, **config)
    missing = {a for a in BOARD_ATTRIBUTES if not hasattr(board, a)}
    assert missing == set()
    assert board.imu_type == config.get("imu_type", "mpu6050")
    assert board.hbridge_type == config.get("hbridge_type", "pwm_dir")
    assert board.imu_addr == {"mpu6050": 0x68, "lsm6dsox": 0x6A}[board.imu_type]
    assert (board.position_adc is not None) == config.get("position_pot", False)
    if board.hbridge_type == "dual_pwm":
        assert board.motor_dir is None
        assert board.motor_pwm_retract is not None and board.motor_enable is not None
    else:
        assert board.motor_dir is not None
        assert board.motor_pwm_retract is None and board.motor_enable is None


@pytest.mark.parametrize("config", CONFIGS)
def test_the_simulated_board_has_every_real_board_attribute(config):
    sim_config = {"imu": config.get("imu_type", "mpu6050"),
                  "hbridge": config.get("hbridge_type", "pwm_dir")}
    board = SimBoard(User(80, 1.8), **sim_config)
    assert {a for a in BOARD_ATTRIBUTES if not hasattr(board, a)} == set()
    assert board.imu_type == sim_config["imu"]
    assert board.hbridge_type == sim_config["hbridge"]
    assert board.imu_addr == {"mpu6050": 0x68, "lsm6dsox": 0x6A}[board.imu_type]


@pytest.mark.parametrize("module_name", BOARD_MODULES)
@pytest.mark.parametrize("config", CONFIGS)
def test_no_pin_is_claimed_twice(monkeypatch, module_name, config):
    _module, _board, fake = build(monkeypatch, module_name, **config)
    ids = pin_ids(fake)
    assert len(ids) == len(set(ids)), sorted(ids)


@pytest.mark.parametrize("module_name", BOARD_MODULES)
@pytest.mark.parametrize("config", CONFIGS)
def test_motor_outputs_are_built_first_and_off(monkeypatch, module_name, config):
    _module, board, fake = build(monkeypatch, module_name, **config)
    pwms = [o for o in (board.motor_pwm, board.motor_pwm_retract) if o is not None]
    pins = [o for o in (board.motor_power, board.motor_dir, board.motor_enable)
            if o is not None]
    motor = set(map(id, pwms + pins + [p.pin for p in pwms]))
    kinds = [id(obj) in motor for _kind, obj in fake.log]
    assert kinds == sorted(kinds, reverse=True)  # every motor object before anything else
    for pwm in pwms:
        assert pwm.duty == 0  # set at construction or right after it
    for pin in pins:
        assert pin.mode == pin.OUT and pin.level == 0


@pytest.mark.parametrize("module_name", BOARD_MODULES)
@pytest.mark.parametrize("config", CONFIGS)
def test_the_power_relay_is_the_first_output_and_open(monkeypatch, module_name, config):
    """The actuator power relay (normally open, in series with the bridge's
    supply) is a plain output, built before anything else and driven to 0
    (open); the firmware closes it, a STOP fault or a reset opens it."""
    _module, board, fake = build(monkeypatch, module_name, **config)
    relay = board.motor_power
    assert fake.log[0] == ("pin", relay)
    assert relay.mode == relay.OUT and relay.level == 0
    outputs = [p for p in fake.pins() if p.mode == p.OUT]
    assert [p.id for p in outputs].count(relay.id) == 1


@pytest.mark.parametrize("module_name", BOARD_MODULES)
def test_switch_and_button_inputs_have_pull_ups(monkeypatch, module_name):
    _module, board, _fake = build(monkeypatch, module_name)
    for name in ("button_no", "button_nc", "home_switch", "far_switch", "ankle_lock"):
        pin = getattr(board, name)
        assert pin.mode == pin.IN and pin.pull == pin.PULL_UP, name


@pytest.mark.parametrize("config", CONFIGS)
def test_esp32_pins_avoid_flash_strapping_and_input_only_pitfalls(monkeypatch, config):
    _module, board, fake = build(monkeypatch, "esp32_devkitc", **config)
    ids = set(pin_ids(fake))
    assert ids <= ESP32_GPIOS
    assert not ids & ESP32_FLASH_PINS
    assert not ids & {16, 17}  # PSRAM on WROVER DevKitC variants
    pulled_up = {p.id for p in fake.pins() if p.pull == p.PULL_UP}
    assert not pulled_up & ESP32_INPUT_ONLY_PINS  # no internal pull-ups there
    outputs = {p.id for p in fake.pins() if p.mode == p.OUT}
    for pwm in (board.motor_pwm, board.motor_pwm_retract):
        if pwm is not None:
            outputs.add(pwm.pin.id)
    assert not outputs & (ESP32_STRAPPING_PINS | ESP32_INPUT_ONLY_PINS)
    # A pin that toggles while the chip boots may drive only the indicator
    # LED: never a motor input, the power relay or the buzzer.
    assert not (outputs - {board.led.id}) & ESP32_BOOT_GLITCH_PINS
    assert board.motor_power.id not in ESP32_BOOT_GLITCH_PINS
    adcs = [obj for kind, obj in fake.log if kind == "adc"]
    assert adcs and all(a.pin.id in ESP32_ADC1_PINS for a in adcs)  # ADC2 conflicts with Wi-Fi
    assert all(a.atten == fake.module.ADC.ATTN_11DB for a in adcs)  # 0 .. ~3.1 V
    assert board.deadman_timer.id == 0  # a hardware timer
    assert board.wdt.timeout >= 1000  # the ESP32's minimum


@pytest.mark.parametrize("config", CONFIGS)
def test_pico_pins_are_gpios_and_adcs_are_on_adc_pins(monkeypatch, config):
    _module, board, fake = build(monkeypatch, "rpi_pico", **config)
    assert set(pin_ids(fake)) <= PICO_GPIOS
    adcs = [obj for kind, obj in fake.log if kind == "adc"]
    assert adcs and all(a.pin.id in PICO_ADC_PINS for a in adcs)
    assert board.deadman_timer.id == -1  # rp2 has only the soft timer


@pytest.mark.parametrize("module_name", BOARD_MODULES)
def test_i2c_at_400_khz_and_no_watchdog_when_asked(monkeypatch, module_name):
    _module, board, _fake = build(monkeypatch, module_name, wdt=False)
    assert board.i2c.freq == 400000
    assert board.wdt is None


@pytest.mark.parametrize("module_name", BOARD_MODULES)
def test_unknown_imu_or_bridge_type_is_refused_naming_it(monkeypatch, module_name):
    with pytest.raises(ValueError, match="bmi270"):
        build(monkeypatch, module_name, imu_type="bmi270")
    with pytest.raises(ValueError, match="l298"):
        build(monkeypatch, module_name, hbridge_type="l298")


def test_main_builds_the_board_the_manifest_names(monkeypatch):
    import main

    fake = FakeMachine()
    monkeypatch.setitem(sys.modules, "machine", fake.module)
    monkeypatch.delitem(sys.modules, "boards.esp32_devkitc", raising=False)
    board = main.make_board({"board": "esp32_devkitc", "files": {}})
    assert board.name == "esp32_devkitc"
    assert fake.pins()


@pytest.mark.parametrize("module_name,label",
                         [("rpi_pico", "GP%d /"), ("esp32_devkitc", "GPIO%d |")])
def test_the_wiring_table_names_the_relay_pin_the_board_uses(monkeypatch, module_name, label):
    """boards/README.md's wiring row for the power relay matches the board file."""
    from pathlib import Path

    _module, board, _fake = build(monkeypatch, module_name)
    readme = (Path(__file__).resolve().parent.parent / "boards" / "README.md").read_text()
    section = readme.split("## Wiring: ")[1 if module_name == "rpi_pico" else 2]
    rows = [line for line in section.splitlines() if line.startswith("| actuator power relay |")]
    assert len(rows) == 1
    assert ("| " + label % board.motor_power.id) in rows[0]
