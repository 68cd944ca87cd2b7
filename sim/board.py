"""The simulated board: plant, IMU model and peripherals wired like the real one.

The firmware gets a SimBoard where it would get a board object from boards/
and reads only the attributes the real board files also have. The rest
(`plant`, `imu`, `press_button()`, `step()` ...) is for the simulator.
"""

import random

from sim.clock import VirtualClock
from sim.lsm6dsox_model import Lsm6dsoxModel
from sim.mpu6050_model import Mpu6050Model
from sim.peripherals import SimADC, SimI2C, SimPin, SimPWM, SimTimer, SimWDT
from sim.plant import Plant, TableParams, geometry_for_firmware

IMU_ADDR = 0x68
CURRENT_FULL_SCALE_MA = 20000
WDT_TIMEOUT_MS = 1000
MOTOR_PWM_FREQ_HZ = 20000
ADC_BITS = 12  # RP2040 ADC: read_u16 scales 12-bit samples to 16 bits
# IMU options: model class and I2C address (as the board files have them).
IMU_MODELS = {"mpu6050": (Mpu6050Model, 0x68), "lsm6dsox": (Lsm6dsoxModel, 0x6A)}
HBRIDGE_TYPES = ("pwm_dir", "dual_pwm")


def _adc_u16(share, noise_counts=0):
    """An ADC reading of `share` of full scale, as read_u16 returns it on the
    rp2: the 12-bit sample (clamped) scaled up, top bits repeated below."""
    full_scale = (1 << ADC_BITS) - 1
    raw = min(full_scale, max(0, round(share * full_scale) + noise_counts))
    return (raw << 4) | (raw >> 8)


class ShootThrough(RuntimeError):
    """The firmware drove both inputs of a dual-PWM bridge at once."""


class _BridgePWM(SimPWM):
    """One PWM input of a dual-PWM bridge: every duty write is checked against
    the other input (simulator side: `on_write` is the board's check)."""

    def __init__(self, dest, on_write, **kwargs):
        self._on_write = None
        super().__init__(dest, **kwargs)
        self._on_write = on_write

    def duty_u16(self, *args):
        result = super().duty_u16(*args)
        if args and self._on_write is not None:
            self._on_write()
        return result


class SimBoard:
    """A simulated board for one user on one table.

    Firmware-facing attributes (same names as boards/*.py): name, clock, i2c,
    imu_addr, motor_pwm, motor_dir, current_adc, current_full_scale_ma,
    button_no, button_nc, home_switch, far_switch, buzzer, led, wdt,
    deadman_timer, table_geometry, imu_mount_offset_mdeg; and imu_type,
    hbridge_type, motor_pwm_retract, motor_enable, position_adc (None: no
    feedback potentiometer), ankle_lock.

    Options: `imu` "mpu6050" (default, at 0x68) or "lsm6dsox" (at 0x6A);
    `hbridge` "pwm_dir" (default: motor_pwm + motor_dir) or "dual_pwm"
    (BTS7960: motor_pwm = RPWM extend, motor_pwm_retract = LPWM,
    motor_enable = R_EN/L_EN; motor_dir is None); `angle_deg` the table's
    angle at power-up (default home: e.g. 40.0 for a power loss mid-session).

    Simulator side: plant, imu, press_button(), release_button(),
    button_pressed, ankle_locked, duty (signed, decoded from the bridge
    inputs), step(dt_us); shoot_through_events (dual PWM: writes that left
    both inputs on; each also raises ShootThrough unless
    `shoot_through_raises` is False); hang_cpu(ms), cpu_hung, cpu_reset()
    for the watchdog work (sim/runner.py honours them).
    """

    name = "sim"

    def __init__(self, user, seed=1, table=None, imu_kwargs=None, start_ms=None,
                 imu="mpu6050", hbridge="pwm_dir", angle_deg=None, position_pot=True):
        if imu not in IMU_MODELS:
            raise ValueError("imu=%r: expected one of %s" % (imu, ", ".join(IMU_MODELS)))
        if hbridge not in HBRIDGE_TYPES:
            raise ValueError("hbridge=%r: expected one of %s"
                             % (hbridge, ", ".join(HBRIDGE_TYPES)))
        if table is None:
            table = TableParams()
        self.clock = VirtualClock(start_ms)
        self.plant = Plant(table, user, angle_deg=angle_deg)
        model, imu_addr = IMU_MODELS[imu]
        self.imu_type = imu
        self.imu = model(self.plant, seed=seed, clock=self.clock, **(imu_kwargs or {}))
        self.button_pressed = False
        self.ankle_locked = True

        self.i2c = SimI2C({imu_addr: self.imu})
        self.imu_addr = imu_addr
        self.hbridge_type = hbridge
        self.shoot_through_events = 0
        self.shoot_through_raises = True
        self.motor_pwm_retract = None
        self.motor_enable = None
        if hbridge == "dual_pwm":
            self.motor_dir = None
            self.motor_enable = SimPin("motor_enable", SimPin.OUT, value=0)
            self.motor_pwm_retract = _BridgePWM("motor_lpwm", self._check_bridge,
                                                freq=MOTOR_PWM_FREQ_HZ, duty_u16=0)
            self.motor_pwm = _BridgePWM("motor_rpwm", self._check_bridge,
                                        freq=MOTOR_PWM_FREQ_HZ, duty_u16=0)
        else:
            self.motor_pwm = SimPWM("motor_pwm", freq=MOTOR_PWM_FREQ_HZ, duty_u16=0)
            self.motor_dir = SimPin("motor_dir", SimPin.OUT, value=0)
        # Actuator power relay (normally open): the firmware closes it; a chip
        # reset or a STOP fault opens it, whatever the bridge inputs say.
        self.motor_power = SimPin("motor_power", SimPin.OUT, value=0)
        # Position potentiometer on the actuator: 0 at the retracted end,
        # full scale at the extended end of the stroke.
        self.position_adc = None
        if position_pot:
            self.position_adc = SimADC("position", read_fn=self._pot_adc_u16)
        self.cpu_hang_until_us = None
        self.power_off_until_us = None
        self._rng = random.Random(seed * 7919 + 17)
        # Fault knobs (sim/faults.py sets them): the firmware is never told.
        self.bridge_stuck_duty = None  # runaway: the bridge output stuck at this duty
        self.pot_offset_u16 = 0  # the pot slipped on its shaft
        self.home_switch_stuck = False  # reads engaged whatever the angle
        self.far_switch_stuck = False
        self.button_wire_broken = False  # the handset cable cut: both contacts open
        self.button_no_welded = False  # the normally-open contact welded shut
        self.button_bounce_until_us = None  # contacts chatter until then
        self.current_adc = SimADC("current", read_fn=self._current_adc_u16)
        self.current_full_scale_ma = CURRENT_FULL_SCALE_MA
        pull = SimPin.PULL_UP
        # Button: normally-open contact to GND (reads 0 while pressed) and a
        # normally-closed contact to GND that opens (reads 1) while pressed.
        self.button_no = SimPin("button_no", SimPin.IN, pull, level_fn=self._button_no_level)
        self.button_nc = SimPin("button_nc", SimPin.IN, pull, level_fn=self._button_nc_level)
        # End switches: normally closed to GND, open (read 1) when engaged.
        self.home_switch = SimPin(
            "home_switch", SimPin.IN, pull,
            level_fn=lambda: 1 if self.plant.home_switch or self.home_switch_stuck else 0,
        )
        self.far_switch = SimPin(
            "far_switch", SimPin.IN, pull,
            level_fn=lambda: 1 if self.plant.far_switch or self.far_switch_stuck else 0,
        )
        # Ankle lock: normally-open microswitch to GND, closed (0) while latched.
        self.ankle_lock = SimPin(
            "ankle_lock", SimPin.IN, pull, level_fn=lambda: 0 if self.ankle_locked else 1
        )
        self.buzzer = SimPin("buzzer", SimPin.OUT, value=0)
        self.led = SimPin("led", SimPin.OUT, value=0)
        self.wdt = SimWDT(self.clock, WDT_TIMEOUT_MS)
        self.deadman_timer = SimTimer(self.clock)
        self.table_geometry = geometry_for_firmware(table)
        if position_pot:
            self.table_geometry["pot_retracted_deg"] = table.home_stop_deg
            self.table_geometry["pot_stroke_m"] = self.plant.stroke_max_m
        self.imu_mount_offset_mdeg = round(self.imu.mount_offset_deg * 1000)
        self._input_pins = (self.button_no, self.button_nc, self.home_switch, self.far_switch,
                            self.ankle_lock)

    # --- simulator side -----------------------------------------------------

    @property
    def duty(self):
        """Signed duty the bridge applies: + = extend = head-down. Zero while
        the power relay is open or the board is unpowered; a bridge stuck on
        (runaway) drives regardless of its inputs."""
        if not self.motor_power.value() or self.powered_off:
            return 0.0
        if self.bridge_stuck_duty is not None:
            return self.bridge_stuck_duty
        return self._bridge_duty()

    def _bridge_duty(self):
        if self.hbridge_type == "dual_pwm":
            if not self.motor_enable.value():
                return 0.0  # enables low: both half-bridges off
            extend = self.motor_pwm.duty_u16()
            retract = self.motor_pwm_retract.duty_u16()
            if extend and retract:
                return 0.0  # both on: flagged by _check_bridge; no net drive
            return (extend - retract) / 65535.0
        magnitude = self.motor_pwm.duty_u16() / 65535.0
        return magnitude if self.motor_dir.value() else -magnitude

    def _check_bridge(self):
        """Dual PWM: both inputs on at once is a shoot-through fault."""
        extend = self.motor_pwm.duty_u16() if hasattr(self, "motor_pwm") else 0
        retract = self.motor_pwm_retract.duty_u16() if self.motor_pwm_retract else 0
        if extend and retract:
            self.shoot_through_events += 1
            if self.shoot_through_raises:
                raise ShootThrough(
                    "dual-PWM bridge driven both ways at once: RPWM duty_u16=%d, LPWM "
                    "duty_u16=%d (t=%.3f s)" % (extend, retract, self.clock.elapsed_us / 1e6)
                )

    # --- CPU faults (the runner honours them) ----------------------------------

    def hang_cpu(self, ms):
        """From now on, for `ms`, the CPU does not run the firmware's loop (a
        hang): the runner skips its ticks. Hardware timers (the dead-man)
        still fire; the watchdog is not fed, so past its timeout it resets."""
        self.cpu_hang_until_us = self.clock.elapsed_us + int(ms) * 1000

    def halt_cpu(self):
        """The firmware stopped its loop (after an exception): no ticks, no
        watchdog feeds, until the watchdog resets the chip."""
        self.cpu_hang_until_us = float("inf")

    @property
    def cpu_hung(self):
        until = self.cpu_hang_until_us
        return until is not None and self.clock.elapsed_us < until

    def power_loss(self, ms):
        """Mains off for `ms`: no firmware, no motor; the self-locking screw
        holds the table where it is. When power returns the chip starts from
        reset (the runner boots the firmware again)."""
        self.power_off_until_us = self.clock.elapsed_us + int(ms) * 1000
        self.cpu_reset()

    @property
    def powered_off(self):
        until = self.power_off_until_us
        return until is not None and self.clock.elapsed_us < until

    def _button_no_level(self):
        if self.button_wire_broken:
            return 1  # open circuit: the pull-up
        if self.button_no_welded:
            return 0
        if self._bouncing():
            return self._rng.getrandbits(1)
        return 0 if self.button_pressed else 1

    def _button_nc_level(self):
        if self.button_wire_broken:
            return 1
        if self._bouncing():
            return self._rng.getrandbits(1)
        return 1 if self.button_pressed else 0

    def _bouncing(self):
        until = self.button_bounce_until_us
        return until is not None and self.clock.elapsed_us < until

    def _pot_adc_u16(self):
        share = self.plant.stroke_m / self.plant.stroke_max_m
        u16 = _adc_u16(share, noise_counts=self._rng.randint(-1, 1))
        return max(0, min(65535, u16 + self.pot_offset_u16))

    def cpu_reset(self):
        """What a chip reset (watchdog) does to the board; the plant keeps its
        state. The GPIOs go back to inputs, so the bridge inputs fall to their
        pull-downs (motor off), timers stop, a hang ends; the watchdog counts
        again from when the restarted firmware creates it (modelled as a feed).
        """
        self.cpu_hang_until_us = None
        self.deadman_timer.deinit()
        self.motor_power.value(0)
        if self.motor_enable is not None:
            self.motor_enable.value(0)
        self.motor_pwm.duty_u16(0)
        if self.motor_pwm_retract is not None:
            self.motor_pwm_retract.duty_u16(0)
        if self.motor_dir is not None:
            self.motor_dir.value(0)
        self.buzzer.value(0)
        self.led.value(0)
        self.wdt.feed()

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
        return _adc_u16(self.plant.current_a * 1000.0 / self.current_full_scale_ma)
