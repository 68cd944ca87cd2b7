"""Benchmarks against peer libraries (benchmark-only dependencies; see
requirements-bench.txt). Entry point: `python -m bench.run_all`."""
