"""The simulated board: plant, IMU model and peripherals wired like the real one.

The firmware gets a SimBoard where it would get a board object from boards/
and reads only the attributes the real board files also have. The rest
(`plant`, `imu`, `press_button()`, `step()` ...) is for the simulator.
"""

from sim.clock import VirtualClock
from sim.mpu6050_model import Mpu6050Model
from sim.peripherals import SimADC, SimI2C, SimPin, SimPWM, SimTimer, SimWDT
from sim.plant import Plant, TableParams, geometry_for_firmware

IMU_ADDR = 0x68
CURRENT_FULL_SCALE_MA = 20000
WDT_TIMEOUT_MS = 1000
MOTOR_PWM_FREQ_HZ = 20000
ADC_BITS = 12  # RP2040 ADC: read_u16 scales 12-bit samples to 16 bits


class SimBoard:
    """A simulated board for one user on one table.

    Firmware-facing attributes (same names as boards/*.py): name, clock, i2c,
    imu_addr, motor_pwm, motor_dir, current_adc, current_full_scale_ma,
    button_no, button_nc, home_switch, far_switch, buzzer, led, wdt,
    deadman_timer, table_geometry, imu_mount_offset_mdeg.

    Simulator side: plant, imu, press_button(), release_button(),
    button_pressed, duty (signed, decoded from motor_pwm and motor_dir),
    step(dt_us).
    """

    name = "sim"

    def __init__(self, user, seed=1, table=None, imu_kwargs=None, start_ms=None):
        if table is None:
            table = TableParams()
        self.clock = VirtualClock(start_ms)
        self.plant = Plant(table, user)
        self.imu = Mpu6050Model(self.plant, seed=seed, clock=self.clock, **(imu_kwargs or {}))
        self.button_pressed = False

        self.i2c = SimI2C({IMU_ADDR: self.imu})
        self.imu_addr = IMU_ADDR
        self.motor_pwm = SimPWM("motor_pwm", freq=MOTOR_PWM_FREQ_HZ, duty_u16=0)
        self.motor_dir = SimPin("motor_dir", SimPin.OUT, value=0)
        self.current_adc = SimADC("current", read_fn=self._current_adc_u16)
        self.current_full_scale_ma = CURRENT_FULL_SCALE_MA
        pull = SimPin.PULL_UP
        # Button: normally-open contact to GND (reads 0 while pressed) and a
        # normally-closed contact to GND that opens (reads 1) while pressed.
        self.button_no = SimPin(
            "button_no", SimPin.IN, pull, level_fn=lambda: 0 if self.button_pressed else 1
        )
        self.button_nc = SimPin(
            "button_nc", SimPin.IN, pull, level_fn=lambda: 1 if self.button_pressed else 0
        )
        # End switches: normally closed to GND, open (read 1) when engaged.
        self.home_switch = SimPin(
            "home_switch", SimPin.IN, pull, level_fn=lambda: 1 if self.plant.home_switch else 0
        )
        self.far_switch = SimPin(
            "far_switch", SimPin.IN, pull, level_fn=lambda: 1 if self.plant.far_switch else 0
        )
        self.buzzer = SimPin("buzzer", SimPin.OUT, value=0)
        self.led = SimPin("led", SimPin.OUT, value=0)
        self.wdt = SimWDT(self.clock, WDT_TIMEOUT_MS)
        self.deadman_timer = SimTimer(self.clock)
        self.table_geometry = geometry_for_firmware(table)
        self.imu_mount_offset_mdeg = round(self.imu.mount_offset_deg * 1000)
        self._input_pins = (self.button_no, self.button_nc, self.home_switch, self.far_switch)

    # --- simulator side -----------------------------------------------------

    @property
    def duty(self):
        """Signed duty the bridge applies: + = extend = head-down."""
        magnitude = self.motor_pwm.duty_u16() / 65535.0
        return magnitude if self.motor_dir.value() else -magnitude

    def press_button(self):
        self.button_pressed = True
        self._sample_inputs()

    def release_button(self):
        self.button_pressed = False
        self._sample_inputs()

    def step(self, dt_us):
        """Advance plant and clock by `dt_us`. When a timer (the dead-man) falls
        due inside the step, the plant runs up to it, the timer fires, and the
        rest of the step uses the duty it left.
        """
        remaining_us = dt_us
        clock = self.clock
        plant = self.plant
        while remaining_us > 0:
            chunk_us = remaining_us
            next_timer_us = clock.us_until_next_timer()
            if next_timer_us is not None and 0 < next_timer_us < chunk_us:
                chunk_us = next_timer_us
            plant.step(chunk_us * 1e-6, self.duty)
            clock.advance_us(chunk_us)
            remaining_us -= chunk_us
        self._sample_inputs()

    def _sample_inputs(self):
        for pin in self._input_pins:
            pin.sample()

    def _current_adc_u16(self):
        full_scale = (1 << ADC_BITS) - 1
        raw = round(self.plant.current_a * 1000.0 / self.current_full_scale_ma * full_scale)
        raw = min(full_scale, max(0, raw))
        # rp2 read_u16: the 12-bit sample scaled up, top bits repeated below.
        return (raw << 4) | (raw >> 8)
