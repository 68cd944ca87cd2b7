"""Actuator duty budget: motor on-time, tracked as a care-bed control box does.

Linear actuators are rated for intermittent duty (typically 10 %: 2 minutes
on, 18 off). The budget is a bucket of motor on-time: running drains it 1:1,
resting refills it at rated/(100 - rated) per ms (1/9 at 10 %), so running
at the rated duty cycle neither empties nor overfills it. "Running" is a
drive of at least RUNNING_DUTY: the position loop's few-per-mille trims
while holding do not turn a self-locking screw. (Heating follows the load
current while running; counting on-time at any load is the control boxes'
conservative rule.) All integers: the level is kept in units of
1/(100 - rated) ms of on-time.
"""

from micropython import const

RUNNING_DUTY = const(500)  # 5 % of firmware/drivers/hbridge.py DUTY_FULL


class DutyBudget:
    def __init__(self, on_max_ms, duty_percent, full):
        self._scale = 100 - duty_percent  # units per ms of on-time
        self._refill = duty_percent  # units per ms of rest
        self.on_max_ms = on_max_ms
        self.capacity = on_max_ms * self._scale  # <= 1.2e6 * 99: small int
        self.level = self.capacity if full else 0
        self.need_ms = 0  # on-time a whole session of the program needs (the controller's)
        self.cuts = 0  # sessions cut short to keep the way home covered (the controller's)

    def update(self, dt_ms, duty):
        """One tick of `dt_ms` with the applied (signed) duty."""
        if duty >= RUNNING_DUTY or duty <= -RUNNING_DUTY:
            level = self.level - dt_ms * self._scale
            if level < 0:
                level = 0
        else:
            level = self.level + dt_ms * self._refill
            if level > self.capacity:
                level = self.capacity
        self.level = level

    @property
    def left_ms(self):
        """Motor on-time left before the actuator needs a rest."""
        return self.level // self._scale
