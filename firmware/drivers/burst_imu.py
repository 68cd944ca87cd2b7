"""What every 6-axis I2C IMU driver here shares: the bus, one-byte register
access, and a 14-byte burst read that also detects a frozen sensor.

Subclasses configure their chip in init() and decode the burst in read();
both buffers are allocated once, so a burst read allocates nothing.
"""


class BurstImu:
    """Raw counts as attributes: ax, ay, az, gx, gy, gz, temp_raw; `sample`
    counts reads; `frozen_reads` counts consecutive bursts whose 14 bytes were
    identical (a live sensor's noise makes that practically impossible)."""

    def __init__(self, i2c, addr):
        self._i2c = i2c
        self._addr = addr
        self._buf = bytearray(14)
        self._last = bytearray(14)
        self._reg = bytearray(1)
        self.ax = 0
        self.ay = 0
        self.az = 0
        self.gx = 0
        self.gy = 0
        self.gz = 0
        self.temp_raw = 0
        self.sample = 0
        self.frozen_reads = 0

    def _write(self, reg, value):
        self._reg[0] = value
        self._i2c.writeto_mem(self._addr, reg, self._reg)

    def _read(self, reg):
        self._i2c.readfrom_mem_into(self._addr, reg, self._reg)
        return self._reg[0]

    def _burst(self, reg):
        """Read 14 bytes from `reg`, count the read and any freeze; the buffer."""
        buf = self._buf
        self._i2c.readfrom_mem_into(self._addr, reg, buf)
        same = 1
        last = self._last
        for i in range(14):
            if buf[i] != last[i]:
                same = 0
            last[i] = buf[i]
        if same:
            self.frozen_reads += 1
        else:
            self.frozen_reads = 0
        self.sample += 1
        return buf
