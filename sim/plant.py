"""Physical model of the inversion table: rigid body (table + user), linear
actuator linkage, and a self-locking DC-motor lead-screw actuator.

Angles are degrees from horizontal: 0 = flat, +90 = fully inverted head-down,
negative = head up. Positive duty extends the actuator, which tilts head-down.

Pure Python on purpose (stdlib `math` only): one `step(0.01)` must cost about
20 µs so the whole simulation runs at least 100x faster than real time.
"""

import math

GRAVITY_MPS2 = 9.80665

USER_MASS_MIN_KG = 40.0
USER_MASS_MAX_KG = 150.0
USER_HEIGHT_MIN_M = 1.45
USER_HEIGHT_MAX_M = 2.00

# Longest internal integration step; step(dt) splits longer dt into equal parts.
MAX_SUBSTEP_S = 0.0100001
# Below this stroke speed an undriven actuator is at rest (ends the exp decay).
REST_SPEED_MPS = 1e-6


class User:
    """The person on the table: mass 40-150 kg, height 1.45-2.00 m."""

    def __init__(self, mass_kg, height_m):
        if not USER_MASS_MIN_KG <= mass_kg <= USER_MASS_MAX_KG:
            raise ValueError(f"user mass {mass_kg!r} kg outside 40..150 kg")
        if not USER_HEIGHT_MIN_M <= height_m <= USER_HEIGHT_MAX_M:
            raise ValueError(f"user height {height_m!r} m outside 1.45..2.00 m")
        self.mass_kg = float(mass_kg)
        self.height_m = float(height_m)

    def __repr__(self):
        return f"User(mass_kg={self.mass_kg:g}, height_m={self.height_m:g})"


class TableParams:
    """Table, linkage and actuator parameters. Override any field by keyword:
    `TableParams(home_deg=-55.0)`; an unknown name raises TypeError.

    Angles / switches / stops:
        home_deg                 home (upright, loading) angle
        home_stop_margin_deg     home-side stroke end is this far below home
        far_stop_deg             head-down stroke end
        home_switch_travel_deg   home switch engaged while angle <= home + this
                                 (negative: over-travel protection past home,
                                 before the stroke end, as on real actuators)
        far_switch_deg           far switch engaged while angle >= this (past
                                 the highest setpoint, before the 90 deg cap)
    Rigid body (table + user about the pivot):
        table_mass_kg, table_length_m
        com_per_height, com_offset_m   centre of mass along the table axis,
                                 headward positive: c = com_per_height * height
                                 + com_offset_m (short users sit foot-heavy)
        com_perpendicular_m      centre of mass above the table surface
    Linkage (actuator from a frame anchor to a lever on the table, law of
    cosines, length L = sqrt(r^2 + b^2 - 2 r b cos(phi)), phi = angle + offset):
        lever_m (r), base_m (b), phi_offset_deg
    Actuator (24 V DC motor, self-locking lead screw):
        stall_force_n, noload_speed_mps, supply_v,
        stall_current_a, noload_current_a, motor_time_constant_s
    """

    home_deg = -60.0
    home_stop_margin_deg = 2.0
    far_stop_deg = 92.0
    home_switch_travel_deg = -0.5
    far_switch_deg = 89.5

    table_mass_kg = 25.0
    table_length_m = 2.0
    com_per_height = 0.55
    com_offset_m = -0.95
    com_perpendicular_m = 0.08

    # phi spans 13..167 deg over the stroke: L(angle) is monotonic, and the
    # lever arm dL/dtheta (0.033..0.18 m/rad) is largest mid-range where the
    # gravity torque peaks. Retracted length 0.626 m for a 0.350 m stroke.
    lever_m = 0.18
    base_m = 0.80
    phi_offset_deg = 75.0

    # Heavy-duty high-speed 24 V class. Stall current puts the best motor +
    # screw efficiency near 39 %, below the 50 % a self-locking screw allows.
    stall_force_n = 8000.0
    noload_speed_mps = 0.035
    supply_v = 24.0
    stall_current_a = 18.0
    noload_current_a = 1.5
    motor_time_constant_s = 0.040

    def __init__(self, **overrides):
        for name, value in overrides.items():
            if name.startswith("_") or not hasattr(TableParams, name):
                raise TypeError(f"TableParams has no field {name!r}")
            setattr(self, name, value)

    @property
    def home_stop_deg(self):
        return self.home_deg - self.home_stop_margin_deg


def actuator_length_m(table, angle_deg):
    """Actuator pin-to-pin length at `angle_deg` (law of cosines)."""
    phi_rad = math.radians(angle_deg + table.phi_offset_deg)
    r = table.lever_m
    b = table.base_m
    return math.sqrt(r * r + b * b - 2.0 * r * b * math.cos(phi_rad))


def lever_arm_m(table, angle_deg):
    """dL/dtheta in m per rad: stroke speed = lever arm * angular rate."""
    phi_rad = math.radians(angle_deg + table.phi_offset_deg)
    return table.lever_m * table.base_m * math.sin(phi_rad) / actuator_length_m(table, angle_deg)


def geometry_for_firmware(table):
    """What the firmware needs for velocity feed-forward (it computes dL/dtheta)."""
    return {
        "lever_m": table.lever_m,
        "base_m": table.base_m,
        "phi_offset_deg": table.phi_offset_deg,
        "noload_speed_mps": table.noload_speed_mps,
        "home_deg": table.home_deg,
    }


class Plant:
    """Table + user + actuator. `step(dt_s, duty)` advances the physics; the
    true state is exposed as attributes:

        angle_deg, rate_dps, accel_dps2   table angle and its derivatives
        stroke_m                          actuator extension from the home-side end
        stroke_speed_mps                  d(stroke)/dt, positive = extending
        force_n                           actuator force on the table, positive =
                                          pushing (toward head-down)
        current_a                         motor current magnitude
        duty                              last applied duty, -1..1
        home_switch, far_switch           end-of-stroke switch actuators engaged
        at_hard_stop                      actuator at either end of its stroke

    Fault knobs (plain attributes): `force_scale` multiplies the stall force
    (weak actuator), `speed_scale` the no-load speed, `jammed` locks the
    rod (a jam: no motion, the stall current of the drive's voltage),
    `open_circuit` disconnects the motor (open lead, blown fuse: no force,
    no current).
    """

    def __init__(self, table, user, angle_deg=None):
        self.table = table
        self.user = user
        self.force_scale = 1.0
        self.speed_scale = 1.0
        self.jammed = False
        self.open_circuit = False

        mass_kg = table.table_mass_kg + user.mass_kg
        com_along_m = table.com_per_height * user.height_m + table.com_offset_m
        com_perp_m = table.com_perpendicular_m
        self.mass_kg = mass_kg
        self.com_along_m = com_along_m
        # Rod-like user and table about their own centres, moved to the pivot.
        self.inertia_kgm2 = (
            user.mass_kg * user.height_m**2 / 12.0
            + table.table_mass_kg * table.table_length_m**2 / 12.0
            + mass_kg * (com_along_m**2 + com_perp_m**2)
        )
        # Gravity torque (+angle direction) = mg_c * cos(theta) + mg_h * sin(theta).
        self._mg_c = mass_kg * GRAVITY_MPS2 * com_along_m
        self._mg_h = mass_kg * GRAVITY_MPS2 * com_perp_m

        r = table.lever_m
        b = table.base_m
        self._rb = r * b
        self._r2_b2 = r * r + b * b
        self._phi_offset_rad = math.radians(table.phi_offset_deg)
        self._length_home_stop_m = actuator_length_m(table, table.home_stop_deg)
        self.stroke_max_m = actuator_length_m(table, table.far_stop_deg) - self._length_home_stop_m
        if self.stroke_max_m <= 0:
            raise ValueError("linkage must extend from home stop to far stop")

        self._tau_s = table.motor_time_constant_s
        # Motor rotor inertia reflected to the rod: gives the no-load time
        # constant; the load inertia adds to it while the motor accelerates.
        self._rotor_mass_kg = (
            table.motor_time_constant_s * table.stall_force_n / table.noload_speed_mps
        )
        self._home_switch_max_deg = table.home_deg + table.home_switch_travel_deg
        self._far_switch_min_deg = table.far_switch_deg

        if angle_deg is None:
            angle_deg = table.home_deg
        if not table.home_stop_deg <= angle_deg <= table.far_stop_deg:
            raise ValueError(f"start angle {angle_deg!r} outside the stroke")
        self.stroke_m = min(
            self.stroke_max_m,
            max(0.0, actuator_length_m(table, angle_deg) - self._length_home_stop_m),
        )
        self.stroke_speed_mps = 0.0
        self.duty = 0.0
        self.current_a = 0.0
        self.accel_dps2 = 0.0
        self.rate_dps = 0.0
        self._rate_rps = 0.0
        self._update_kinematics()
        self.force_n = self.static_load_force_n(self.angle_deg)

    # --- helpers (also used by tests) -----------------------------------------

    def gravity_torque_nm(self, angle_deg):
        """Gravity torque about the pivot, positive toward head-down."""
        theta = math.radians(angle_deg)
        return self._mg_c * math.cos(theta) + self._mg_h * math.sin(theta)

    def static_load_force_n(self, angle_deg):
        """Actuator force that holds the table still at `angle_deg` (+ = push)."""
        return -self.gravity_torque_nm(angle_deg) / lever_arm_m(self.table, angle_deg)

    def steady_rate_dps(self, angle_deg, duty):
        """Angular rate the actuator settles to at `angle_deg` under `duty`."""
        load_n = self.static_load_force_n(angle_deg)
        opposing_n = max(0.0, load_n if duty > 0 else -load_n)
        speed = self._target_speed_mps(duty, opposing_n)
        return math.degrees(speed / lever_arm_m(self.table, angle_deg))

    def _target_speed_mps(self, duty, opposing_n):
        stall_n = self.table.stall_force_n * self.force_scale
        if duty == 0 or stall_n <= 0:
            return 0.0
        margin = 1.0 - opposing_n / stall_n
        if margin <= 0.0:
            return 0.0
        return duty * self.table.noload_speed_mps * self.speed_scale * margin

    def _update_kinematics(self):
        # Angle from the actuator length: exact, so the angle never drifts
        # from the stroke.
        length_m = self._length_home_stop_m + self.stroke_m
        cos_phi = (self._r2_b2 - length_m * length_m) / (2.0 * self._rb)
        if cos_phi > 1.0:
            cos_phi = 1.0
        elif cos_phi < -1.0:
            cos_phi = -1.0
        phi = math.acos(cos_phi)
        self._angle_rad = phi - self._phi_offset_rad
        self._lever_arm_m = self._rb * math.sin(phi) / length_m
        self.angle_deg = math.degrees(self._angle_rad)
        self.home_switch = self.angle_deg <= self._home_switch_max_deg
        self.far_switch = self.angle_deg >= self._far_switch_min_deg
        self.at_hard_stop = self.stroke_m <= 0.0 or self.stroke_m >= self.stroke_max_m

    # --- physics ----------------------------------------------------------------

    def step(self, dt_s, duty):
        """Advance the physics by `dt_s` seconds with signed `duty` in [-1, 1]."""
        if not -1.0 <= duty <= 1.0:
            raise ValueError(f"duty {duty!r} outside -1..1")
        if dt_s <= 0.0:
            if dt_s == 0.0:
                return
            raise ValueError("dt_s must be >= 0")
        substeps = 1 if dt_s <= MAX_SUBSTEP_S else math.ceil(dt_s / MAX_SUBSTEP_S)
        dt = dt_s / substeps
        for _ in range(substeps):
            self._substep(dt, duty)

    def _substep(self, dt, duty):
        if self.jammed:
            self._jammed_substep(dt, duty)
            return
        if self.open_circuit:
            duty = 0.0  # the bridge drives nothing: the screw holds the table
        cos = math.cos
        sin = math.sin
        exp = math.exp
        theta = self._angle_rad
        lever_m = self._lever_arm_m
        speed = self.stroke_speed_mps
        gravity_nm = self._mg_c * cos(theta) + self._mg_h * sin(theta)
        load_n = -gravity_nm / lever_m  # + = the actuator must push

        if duty > 0.0:
            opposing_n = max(0.0, load_n)
        elif duty < 0.0:
            opposing_n = max(0.0, -load_n)
        else:
            opposing_n = 0.0
        target = self._target_speed_mps(duty, opposing_n)

        # Self-locking screw: the load can never drive the rod, so slowing down
        # (screw friction) takes the bare motor time constant; speeding up the
        # motor must also accelerate the table's inertia seen through the lever.
        load_mass_kg = self.inertia_kgm2 / (lever_m * lever_m)
        tau = self._tau_s
        if target != 0.0 and target * speed >= 0.0 and abs(target) > abs(speed):
            tau = tau * (1.0 + load_mass_kg / self._rotor_mass_kg)
        decay = exp(-dt / tau)
        gap = speed - target
        new_speed = target + gap * decay
        new_stroke = self.stroke_m + target * dt + gap * tau * (1.0 - decay)
        if target == 0.0 and -REST_SPEED_MPS < new_speed < REST_SPEED_MPS:
            new_speed = 0.0

        # The stroke ends are rigid: the speed drops to zero within the step,
        # so accel_dps2 and force_n show one step of impact if it arrives fast.
        stroke_max = self.stroke_max_m
        stalled_at_end = False
        if new_stroke <= 0.0:
            new_stroke = 0.0
            new_speed = 0.0
            stalled_at_end = duty < 0.0
        elif new_stroke >= stroke_max:
            new_stroke = stroke_max
            new_speed = 0.0
            stalled_at_end = duty > 0.0

        old_rate_rps = self._rate_rps
        self.stroke_m = new_stroke
        self.stroke_speed_mps = new_speed
        self._update_kinematics()
        lever_m = self._lever_arm_m
        rate_rps = new_speed / lever_m
        accel_rps2 = (rate_rps - old_rate_rps) / dt
        self._rate_rps = rate_rps
        self.rate_dps = math.degrees(rate_rps)
        self.accel_dps2 = math.degrees(accel_rps2)
        theta = self._angle_rad
        gravity_nm = self._mg_c * cos(theta) + self._mg_h * sin(theta)
        self.force_n = (self.inertia_kgm2 * accel_rps2 - gravity_nm) / lever_m
        self.duty = duty

        table = self.table
        if duty == 0.0:
            self.current_a = 0.0  # bridge off: no drive, no current
        elif stalled_at_end:
            self.current_a = abs(duty) * table.stall_current_a
        else:
            # Motor force = load share + what accelerates rotor and table
            # (the start-up inrush); current is proportional to it.
            direction = 1.0 if duty > 0.0 else -1.0
            accel_mps2 = direction * (new_speed - speed) / dt
            drive_n = direction * load_n + (self._rotor_mass_kg + load_mass_kg) * accel_mps2
            stall_n = table.stall_force_n * self.force_scale
            share = drive_n / stall_n if stall_n > 0.0 else 1.0
            if share < 0.0:
                share = 0.0
            elif share > 1.0:
                share = 1.0
            noload_a = table.noload_current_a
            current_a = noload_a + (table.stall_current_a - noload_a) * share
            # The bridge's average voltage limits it: (duty V - back-EMF) / R
            # is at most duty x the stall current (a trim of a few per mille
            # against a heavy load draws a few per mille of it, not the load's).
            self.current_a = min(current_a, abs(duty) * table.stall_current_a)

    def _jammed_substep(self, dt, duty):
        """The rod is locked: it stops within the step (the jam's impact) and
        the motor draws the stall current of the voltage it is driven at."""
        old_rate_rps = self._rate_rps
        self.stroke_speed_mps = 0.0
        self._rate_rps = 0.0
        self.rate_dps = 0.0
        self.accel_dps2 = math.degrees(-old_rate_rps / dt)
        self.duty = duty
        self.current_a = abs(duty) * self.table.stall_current_a  # stalled: duty V / R
