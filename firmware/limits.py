"""Hard caps: the one place where the table's absolute limits live.

Configuration may only tighten these (see firmware/config.py); nothing may
loosen them. All values are integers in fixed point so the control tick never
touches a float (floats are heap objects on MicroPython):

    angle  mdeg     (1/1000 degree)         angle_deg = 0 flat, +90 head-down
    rate   mdps     (mdeg per second)
    accel  mdps2    (mdeg per second^2)
    jerk   mdps3    (mdeg per second^3)
    time   ms

Why these numbers (the person's head is about 1 m from the pivot):
- Head-down rate cap 3 deg/s: from that speed a braking ramp at 2/3 of the
  accel cap and at the jerk cap below stops within 0.54 deg, leaving the rest
  of the 1 deg release budget for sensing, one tick of latency and actuator lag.
- Accel cap 20 deg/s^2 = 0.35 rad/s^2, about 0.35 m/s^2 at the head: a third of
  a passenger lift's comfort limit. Approached only by the release stop.
- Jerk cap 100 deg/s^3 = 1.75 rad/s^3, about 1.7 m/s^3 at the head, the range
  lifts use for ride comfort (ISO 18738 class). Used only for the release stop.
- Normal motion is far gentler (defaults below).
"""

from micropython import const

# --- Angle -----------------------------------------------------------------
ANGLE_MAX_MDEG = const(90000)  # the true angle must never pass this
# Highest angle the planner may aim at: the cap less a margin for estimator
# error (<= 1 deg) and planner overshoot.
SETPOINT_MAX_MDEG = const(88500)
# Home (upright, loading) is a table parameter; it must lie in this band.
HOME_MIN_MDEG = const(-70000)
HOME_MAX_MDEG = const(-45000)
# Rest angle near horizontal on the normal return.
REST_ANGLE_MIN_MDEG = const(-15000)
REST_ANGLE_MAX_MDEG = const(15000)

# --- Rate, acceleration, jerk ------------------------------------------------
RATE_MAX_MDPS = const(6000)  # any direction
HEAD_DOWN_RATE_MAX_MDPS = const(3000)  # head-down direction
ACCEL_MAX_MDPS2 = const(20000)
JERK_MAX_MDPS3 = const(100000)

# --- Rocking -----------------------------------------------------------------
ROCK_AMPLITUDE_MAX_MDEG = const(10000)
ROCK_PERIOD_MIN_MS = const(8000)
ROCK_CYCLES_MAX = const(20)

# --- Session time (guidance: never more than 30 minutes a session) ----------
SESSION_MAX_MS = const(1800000)

# --- Release -----------------------------------------------------------------
# After the hold button is let go the table may travel at most this much
# further head-down before it turns for home.
RELEASE_OVERTRAVEL_MAX_MDEG = const(1000)
# The release stop is planned at this fraction of the accel cap (jerk at its
# cap): the table's tracking of the plan adds up to about 30 % on the true
# acceleration, which must stay under the cap.
RELEASE_BRAKE_ACCEL_NUM = const(2)
RELEASE_BRAKE_ACCEL_DEN = const(3)
# Of that budget the planned braking ramp may use this much; the rest covers
# one tick of latency (0.03 deg at 3 deg/s), the H-bridge soft stop and the
# actuator's lag (about 0.3 deg together). Config is checked against it.
RELEASE_STOP_BUDGET_MDEG = const(600)

# --- Control loop -------------------------------------------------------------
TICK_MS = const(10)  # 100 Hz

# --- Gentler defaults (what a program gets unless it asks for less) ---------
DEFAULT_DESCENT_RATE_MDPS = const(2000)
DEFAULT_RETURN_RATE_MDPS = const(2000)
DEFAULT_EMERGENCY_RATE_MDPS = const(4000)
DEFAULT_ROCK_RATE_MDPS = const(3000)
DEFAULT_ACCEL_MDPS2 = const(4000)
DEFAULT_JERK_MDPS3 = const(10000)

# Largest magnitude of a MicroPython small int on a 32-bit board (31-bit
# signed). Every value the control tick computes must stay within it, or it
# becomes a heap-allocated big int.
SMALL_INT_MAX = const(0x3FFFFFFF)
