"""Inversion table controller firmware (MicroPython, also importable by CPython).

Peripherals are handed in by a board file (boards/) or by the simulator (sim/);
nothing in this package imports `machine`.
"""
