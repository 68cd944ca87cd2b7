"""The new drivers and the boot code on the real MicroPython interpreter (unix
port): LSM6DSOX.read() and HBridgeDualPwm's per-tick methods allocate
nothing (they run under micropython.heap_lock()), and the self-test's file
hashing (hashlib + binascii) and main.boot() work there."""

import hashlib
import json
import os
import subprocess
import textwrap

import pytest

from sim.micropython_runtime import MicroPythonUnavailable, find_micropython

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKES = """
import micropython

class I2C:
    # An LSM6DSOX at rest, flat: 1 g on chip Z, a little noise on every byte.
    def __init__(self):
        self.regs = bytearray(128)
        self.regs[0x0F] = 0x6C
        self.regs[0x12] = 0x04
        self.n = 0
    def readfrom_mem_into(self, addr, reg, buf):
        if reg == 0x20:
            self.n += 1
            buf[0] = 0; buf[1] = 5
            for i in range(2, 14):
                buf[i] = self.n & 3
            buf[12] = 0x05; buf[13] = 0x20  # 8197 counts: 1 g
            return
        for i in range(len(buf)):
            buf[i] = self.regs[reg + i]
    def writeto_mem(self, addr, reg, buf):
        v = buf[0]
        if reg == 0x12 and v & 1:
            v = 0x04
        self.regs[reg] = v

class Clock:
    def __init__(self):
        self.t = 0
    def ticks_ms(self):
        return self.t
    def ticks_diff(self, a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000
    def ticks_add(self, a, d):
        return (a + d) & 0x3FFFFFFF
    def sleep_ms(self, ms):
        self.t += ms

class PWM:
    def __init__(self):
        self.d = 0
    def duty_u16(self, d=None):
        if d is None:
            return self.d
        self.d = d
    def freq(self, f=None):
        pass

class Pin:
    def __init__(self, v=0):
        self.v = v
    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v

class ADC:
    def read_u16(self):
        return 0  # no current: the motor is off

class Timer:
    PERIODIC = 1
    def init(self, mode=1, period=-1, callback=None):
        self.callback = callback

class WDT:
    def __init__(self):
        self.feeds = 0
    def feed(self):
        self.feeds += 1

class Board:
    name = "rpi_pico"
    imu_type = "lsm6dsox"
    hbridge_type = "dual_pwm"
    def __init__(self):
        self.clock = Clock()
        self.i2c = I2C()
        self.imu_addr = 0x6A
        self.motor_pwm = PWM()
        self.motor_pwm_retract = PWM()
        self.motor_enable = Pin()
        self.motor_dir = None
        self.button_no = Pin(1)
        self.button_nc = Pin(0)
        self.home_switch = Pin(0)
        self.far_switch = Pin(0)
        self.ankle_lock = Pin(0)  # closed: reads 0
        self.current_adc = ADC()  # every board reads the motor current
        self.motor_power = Pin()
        self.buzzer = Pin()
        self.led = Pin()
        self.wdt = WDT()
        self.deadman_timer = Timer()
"""


def run_micropython(script, cwd):
    try:
        exe = find_micropython()
    except MicroPythonUnavailable as err:
        pytest.skip(str(err))
    proc = subprocess.run([exe, "-c", FAKES + textwrap.dedent(script)], cwd=cwd,
                          env=dict(os.environ, MICROPYPATH=ROOT + ":.frozen"),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_lsm6dsox_read_and_dual_pwm_commands_allocate_nothing(tmp_path):
    out = run_micropython("""
        import json
        from firmware.drivers.hbridge_dual_pwm import HBridgeDualPwm
        from firmware.drivers.lsm6dsox import LSM6DSOX
        b = Board()
        imu = LSM6DSOX(b.i2c, 0x6A)
        imu.init()
        imu.read()
        drive = HBridgeDualPwm(b.motor_pwm, b.motor_pwm_retract, b.clock, b.motor_enable)

        def ticks(b, imu, drive):
            # What the control tick does with them, 400 times, with reversals.
            both = 0
            for k in range(400):
                imu.read()
                b.clock.t += 10
                drive.command(10000 if (k // 60) % 2 else -10000)
                drive.check_deadman()
                if b.motor_pwm.d and b.motor_pwm_retract.d:
                    both += 1
            b.clock.t += 100
            drive.check_deadman()
            return both

        both = -1  # the global exists before the lock: storing it then allocates nothing
        micropython.heap_lock()
        try:
            both = ticks(b, imu, drive)
        finally:
            micropython.heap_unlock()
        print(json.dumps({"samples": imu.sample, "az": imu.az, "both": both,
                          "trips": drive.deadman_trips, "duty": drive.duty}))
    """, tmp_path)
    assert out == {"samples": 401, "az": 8197, "both": 0, "trips": 1, "duty": 0}


def test_selftest_hashes_files_and_main_boots_on_micropython(tmp_path):
    data = b"\x4d\x06" + bytes(range(256)) * 9
    # (Not under firmware/: the cwd comes first on sys.path and would shadow the package.)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "x.mpy").write_bytes(data)
    good = hashlib.sha256(data).hexdigest()
    out = run_micropython("""
        import json
        import main
        from firmware.selftest import sha256_file
        cfg = main.DEFAULT_CONFIG
        ok = main.boot(Board(), config=cfg,
                       manifest={"board": "rpi_pico", "files": {"lib/x.mpy": "%s"}})
        bad = main.boot(Board(), config=cfg,
                        manifest={"board": "rpi_pico", "files": {"lib/x.mpy": "00" * 32}})
        ok.tick()
        print(json.dumps({"hash": sha256_file("lib/x.mpy"), "ok": ok.mode_name,
                          "bad": bad.mode_name, "reasons": bad.reasons}))
    """ % good, tmp_path)
    assert out["hash"] == good
    assert out["ok"] == "run"
    assert out["bad"] == "halted" and out["reasons"][0].startswith("files: lib/x.mpy has")
