"""Simulator: the same firmware against a physical model of table, user and actuator.

On CPython the firmware's `from micropython import const` is served by the
stand-in in sim/mpshim (the real interpreter has the module built in).
"""

import os as _os
import sys as _sys

_SHIM_DIR = _os.path.join(_os.path.dirname(__file__), "mpshim")
if _SHIM_DIR not in _sys.path:
    _sys.path.append(_SHIM_DIR)
