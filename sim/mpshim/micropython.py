"""CPython stand-in for MicroPython's built-in `micropython` module.

Only what the firmware uses: `const` (identity on CPython; the MicroPython
compiler inlines it) and the heap-lock calls (no-ops: the allocation check is
done on the real interpreter, see tests that run the unix port).
"""


def const(value):
    return value


def heap_lock():
    return 0


def heap_unlock():
    return 0
