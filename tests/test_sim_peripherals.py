"""Simulated machine peripherals: the MicroPython API and nothing else;
invalid calls fail the way they do on the board."""

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.clock import VirtualClock
from sim.peripherals import SimADC, SimI2C, SimPin, SimPWM, SimTimer, SimWDT

# Public names of the rp2 port's machine classes (docs + ports/rp2 sources).
MICROPYTHON_NAMES = {
    SimPin: {
        "init",
        "value",
        "on",
        "off",
        "low",
        "high",
        "toggle",
        "irq",
        "IN",
        "OUT",
        "OPEN_DRAIN",
        "ALT",
        "PULL_UP",
        "PULL_DOWN",
        "IRQ_RISING",
        "IRQ_FALLING",
    },
    SimPWM: {"init", "deinit", "freq", "duty_u16", "duty_ns"},
    SimADC: {"read_u16", "CORE_TEMP"},
    SimWDT: {"feed"},
    SimTimer: {"init", "deinit", "ONE_SHOT", "PERIODIC"},
    SimI2C: {
        "init",
        "deinit",
        "scan",
        "start",
        "stop",
        "readinto",
        "write",
        "readfrom",
        "readfrom_into",
        "writeto",
        "writevto",
        "readfrom_mem",
        "readfrom_mem_into",
        "writeto_mem",
    },
}
# Documented simulator-side additions.
SIMULATOR_NAMES = {
    SimPin: {"id", "level_fn", "sample"},
    SimPWM: {"dest"},
    SimADC: {"pin", "read_fn"},
    SimWDT: {"expired", "timeout_ms", "late_feeds"},
    SimTimer: set(),
    SimI2C: {"devices"},
}


class RecordingDevice:
    """I2C device that records transactions and serves a fixed register file."""

    def __init__(self):
        self.nack = False
        self.writes = []
        self.memory = bytes(range(256))
        self.pointer = 0

    def i2c_write(self, data):
        self.writes.append(bytes(data))
        if data:
            self.pointer = data[0]

    def i2c_read_into(self, buf):
        for i in range(len(buf)):
            buf[i] = self.memory[(self.pointer + i) % 256]


def instances():
    clock = VirtualClock()
    return [
        SimPin("p", SimPin.OUT),
        SimPWM(),
        SimADC(read_fn=lambda: 0),
        SimWDT(clock, 1000),
        SimTimer(clock),
        SimI2C({}),
    ]


@pytest.mark.parametrize("obj", instances(), ids=lambda o: type(o).__name__)
def test_public_api_is_a_subset_of_the_micropython_class(obj):
    cls = type(obj)
    public = {name for name in dir(obj) if not name.startswith("_")}
    assert public - SIMULATOR_NAMES[cls] <= MICROPYTHON_NAMES[cls]


@pytest.mark.parametrize("obj", instances(), ids=lambda o: type(o).__name__)
def test_a_method_the_real_class_lacks_raises_attribute_error(obj):
    assert not hasattr(type(obj), "__getattr__")
    with pytest.raises(AttributeError):
        obj.read()  # e.g. ADC.read() / Pin.read(): not on rp2


# --- Pin ---------------------------------------------------------------------------


def test_output_pin_holds_what_was_written():
    pin = SimPin("led", SimPin.OUT, value=1)
    assert pin.value() == 1
    pin.off()
    assert pin.value() == 0 and pin() == 0
    pin.on()
    assert pin.value() == 1
    pin(0)
    assert pin.value() == 0
    pin.toggle()
    assert pin.value() == 1


def test_input_pin_reads_its_level_source_or_its_pull():
    level = [0]
    pin = SimPin("in", SimPin.IN, SimPin.PULL_UP, level_fn=lambda: level[0])
    assert pin.value() == 0
    level[0] = 1
    assert pin.value() == 1
    assert SimPin("float", SimPin.IN, SimPin.PULL_UP).value() == 1
    assert SimPin("float", SimPin.IN, SimPin.PULL_DOWN).value() == 0


def test_irq_handler_runs_on_the_matching_edge_with_the_pin():
    level = [1]
    pin = SimPin("btn", SimPin.IN, SimPin.PULL_UP, level_fn=lambda: level[0])
    calls = []
    pin.irq(handler=calls.append, trigger=SimPin.IRQ_FALLING)
    level[0] = 0
    pin.sample()
    level[0] = 1
    pin.sample()  # rising: not asked for
    pin.sample()  # no change
    assert calls == [pin]
    pin.irq(handler=None)
    level[0] = 0
    pin.sample()
    assert calls == [pin]


def test_irq_on_both_edges_and_on_an_output_pin():
    pin = SimPin("out", SimPin.OUT, value=0)
    edges = []
    irq = pin.irq(lambda p: edges.append(p.value()), SimPin.IRQ_RISING | SimPin.IRQ_FALLING)
    pin.on()
    pin.on()
    pin.off()
    assert edges == [1, 0]
    assert irq.trigger() == SimPin.IRQ_RISING | SimPin.IRQ_FALLING


def test_invalid_pin_mode_pull_and_handler_are_refused():
    with pytest.raises(ValueError):
        SimPin("x", 99)
    with pytest.raises(ValueError):
        SimPin("x", SimPin.IN, 77)
    with pytest.raises(TypeError):
        SimPin("x", SimPin.IN).irq(handler=5)
    with pytest.raises(TypeError):
        SimPin("x", SimPin.OUT).value(0, 1)


def test_pin_init_changes_only_what_it_is_given():
    pin = SimPin("x", SimPin.IN, SimPin.PULL_UP)
    pin.init(SimPin.OUT, value=1)
    assert pin.value() == 1
    pin.init(SimPin.IN)
    assert pin.value() == 1  # still pulled up


# --- PWM ---------------------------------------------------------------------------


@given(duty=st.integers(min_value=0, max_value=65535))
def test_pwm_accepts_every_u16_duty(duty):
    pwm = SimPWM(freq=20000)
    pwm.duty_u16(duty)
    assert pwm.duty_u16() == duty


@pytest.mark.parametrize("duty", [-1, 65536, 100000])
def test_pwm_refuses_duty_outside_u16_with_value_error(duty):
    with pytest.raises(ValueError):
        SimPWM().duty_u16(duty)


def test_pwm_refuses_a_float_duty_with_type_error():
    with pytest.raises(TypeError):
        SimPWM().duty_u16(0.5)


def test_pwm_freq_round_trips_and_out_of_range_fails():
    pwm = SimPWM(freq=20000)
    assert pwm.freq() == 20000
    pwm.freq(1000)
    assert pwm.freq() == 1000
    with pytest.raises(ValueError):
        pwm.freq(0)
    with pytest.raises(ValueError):
        pwm.freq(10**9)


def test_pwm_deinit_drops_the_output_to_zero():
    pwm = SimPWM(freq=20000, duty_u16=40000)
    pwm.deinit()
    assert pwm.duty_u16() == 0


def test_pwm_has_no_esp8266_style_duty_method():
    with pytest.raises(AttributeError):
        SimPWM().duty(512)


# --- ADC ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [(-5, 0), (0, 0), (1234.7, 1234), (70000, 65535)])
def test_adc_read_u16_is_an_int_clamped_to_16_bits(raw, expected):
    value = SimADC(read_fn=lambda: raw).read_u16()
    assert value == expected and type(value) is int


# --- WDT ---------------------------------------------------------------------------


def test_watchdog_expires_only_after_more_than_timeout_without_a_feed():
    clock = VirtualClock()
    wdt = SimWDT(clock, 1000)
    clock.advance_us(1_000_000)
    assert not wdt.expired  # exactly the timeout: still alive
    clock.advance_us(1)
    assert wdt.expired
    wdt.feed()
    assert not wdt.expired and wdt.late_feeds == 1
    clock.advance_us(900_000)
    wdt.feed()
    clock.advance_us(900_000)
    assert not wdt.expired and wdt.late_feeds == 1


def test_watchdog_rejects_a_nonpositive_timeout():
    with pytest.raises(ValueError):
        SimWDT(VirtualClock(), 0)


# --- Timer -------------------------------------------------------------------------


def test_periodic_timer_calls_back_with_itself_every_period():
    clock = VirtualClock()
    timer = SimTimer(clock)
    seen = []
    timer.init(
        mode=SimTimer.PERIODIC, period=20, callback=lambda t: seen.append((t, clock.elapsed_us))
    )
    clock.advance_us(65_000)
    assert seen == [(timer, 20_000), (timer, 40_000), (timer, 60_000)]


def test_one_shot_timer_fires_once_and_deinit_stops_a_periodic_one():
    clock = VirtualClock()
    shots = []
    SimTimer(clock).init(mode=SimTimer.ONE_SHOT, period=5, callback=lambda t: shots.append(1))
    ticker = SimTimer(clock)
    ticks = []
    ticker.init(mode=SimTimer.PERIODIC, freq=100, callback=lambda t: ticks.append(1))
    clock.advance_us(50_000)
    ticker.deinit()
    clock.advance_us(50_000)
    assert shots == [1]
    assert len(ticks) == 5


def test_a_callback_may_deinit_its_own_timer():
    clock = VirtualClock()
    timer = SimTimer(clock)
    calls = []

    def once(t):
        calls.append(clock.elapsed_us)
        t.deinit()

    timer.init(mode=SimTimer.PERIODIC, period=1, callback=once)
    clock.advance_us(10_000)
    assert calls == [1000]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": 7, "period": 10},
        {"period": 0},
        {"period": -5},
        {"freq": 0},
        {},
        {"period": 10, "callback": 3},
        {"period": 1.5},
    ],
)
def test_invalid_timer_init_is_refused(kwargs):
    with pytest.raises((ValueError, TypeError)):
        SimTimer(VirtualClock()).init(**kwargs)


def test_timer_init_takes_keywords_only():
    with pytest.raises(TypeError):
        SimTimer(VirtualClock()).init(SimTimer.PERIODIC, 10)


# --- I2C ---------------------------------------------------------------------------


def test_i2c_unknown_address_raises_enodev():
    i2c = SimI2C({0x68: RecordingDevice()})
    with pytest.raises(OSError) as info:
        i2c.readfrom_mem(0x69, 0x75, 1)
    assert info.value.errno == errno.ENODEV
    with pytest.raises(OSError):
        i2c.writeto_mem(0x10, 0x00, b"\x00")


def test_i2c_mem_transfers_send_the_register_address_then_data():
    dev = RecordingDevice()
    i2c = SimI2C({0x50: dev})
    assert i2c.readfrom_mem(0x50, 0x10, 3) == bytes([0x10, 0x11, 0x12])
    buf = bytearray(2)
    assert i2c.readfrom_mem_into(0x50, 0x20, buf) is None
    assert buf == bytes([0x20, 0x21])
    assert i2c.writeto_mem(0x50, 0x30, b"\x01\x02") is None
    assert dev.writes == [b"\x10", b"\x20", b"\x30\x01\x02"]


def test_i2c_16_bit_memory_addresses_go_out_msb_first():
    dev = RecordingDevice()
    i2c = SimI2C({0x50: dev})
    i2c.writeto_mem(0x50, 0x1234, b"\xaa", addrsize=16)
    assert dev.writes == [b"\x12\x34\xaa"]
    with pytest.raises(ValueError):
        i2c.writeto_mem(0x50, 0x12, b"\xaa", addrsize=12)


def test_i2c_buffers_must_support_the_buffer_protocol_and_be_writable_for_reads():
    i2c = SimI2C({0x50: RecordingDevice()})
    with pytest.raises(TypeError):
        i2c.readfrom_mem_into(0x50, 0, b"\x00\x00")  # read-only
    with pytest.raises(TypeError):
        i2c.writeto_mem(0x50, 0, 5)
    with pytest.raises(TypeError):
        i2c.readfrom_mem(0x50, 0, 1, 8)  # addrsize is keyword-only


def test_i2c_scan_lists_acknowledging_devices():
    a, b = RecordingDevice(), RecordingDevice()
    b.nack = True
    assert SimI2C({0x68: a, 0x3C: b}).scan() == [0x68]
