"""Test configuration: the MicroPython shim for CPython, hypothesis profiles."""

import os

from hypothesis import HealthCheck, settings

import sim  # noqa: F401  (puts the `micropython` stand-in on sys.path)

# CI: derandomized, so every run checks the same examples (deterministic).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# Nightly / soak: many more random examples.
settings.register_profile(
    "soak",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
