# Two commands on a fresh machine: `make sim` and `make test`.
# Both create .venv and install the pinned dependencies themselves.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUILD := build
export PYTHONPATH := $(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all sim test test-soak soak lint build typecheck flash bench clean venv

all: test

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# Default scenario: full session, then a second one let go mid-descent.
sim: $(STAMP)
	@mkdir -p $(BUILD)/sim
	$(PY) -m sim run scenarios/default.toml --trace $(BUILD)/sim/default.csv --plot $(BUILD)/sim/default.png

lint: $(STAMP)
	$(VENV)/bin/ruff check firmware boards sim host_tools tests bench

# The firmware as it goes onto a board: .mpy files in build/device (V=1 lists each file).
build: $(STAMP)
	$(PY) -m host_tools.build --out $(BUILD)/device $(if $(V),-v)

# MicroPython stubs for the type check, pinned. The two ports' packages
# conflict, so each goes into its own folder, build/stubs/<port>.
STUBS_rp2 := micropython-rp2-rpi-pico-stubs==1.29.0.post1 micropython-stdlib-stubs==1.29.0.post2
STUBS_esp32 := micropython-esp32-stubs==1.29.0.post1 micropython-stdlib-stubs==1.29.0.post2

$(BUILD)/stubs/%/.installed: Makefile | $(STAMP)
	rm -rf $(BUILD)/stubs/$*
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target $(BUILD)/stubs/$* $(STUBS_$*)
	touch $@

# firmware/, each port's board files and main.py against that port's stubs (pyright).
typecheck: $(STAMP) $(BUILD)/stubs/rp2/.installed $(BUILD)/stubs/esp32/.installed
	$(PY) -m host_tools.typecheck --stubs $(BUILD)/stubs

# Onto a board: compile, copy only what changed (mpremote), verify every file
# by SHA-256, write manifest.json. make flash BOARD=rpi_pico PORT=/dev/ttyACM0 [CONFIG=f.json]
flash: $(STAMP)
	@test -n "$(BOARD)" && test -n "$(PORT)" || { echo "usage: make flash BOARD=rpi_pico|esp32_devkitc PORT=/dev/ttyACM0 [CONFIG=file.json]" >&2; exit 2; }
	$(PY) -m host_tools deploy --port $(PORT) --board $(BOARD) --build-dir $(BUILD)/device $(if $(CONFIG),--config $(CONFIG))

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

# Benchmarks against the peers (Fusion AHRS, Mahony, Madgwick, Ruckig), the
# simulator's speed, the control tick on the MicroPython unix port and the
# release latency: a markdown table on stdout, every figure in build/bench.json.
bench: $(BENCH_STAMP)
	@mkdir -p $(BUILD)
	$(PY) -m bench.run_all --out $(BUILD)/bench.json

# Deterministic CI profile (fixed hypothesis seed and example counts).
test: $(STAMP) lint typecheck
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest tests

# More examples, random seeds: nightly / before a release.
test-soak: $(STAMP)
	HYPOTHESIS_PROFILE=soak $(PY) -m pytest tests

# 1,000 simulated sessions, each with a random fault from the catalogue (1 in
# 10 without: the control group), every one checked: a per-fault table on
# stdout, the figures in build/soak.json. Not part of `make test`.
# A failing session alone: python -m sim.soak --only K --seed $(SEED)
SEED ?= 1
soak: $(STAMP)
	@mkdir -p $(BUILD)
	$(PY) -m sim.soak --sessions 1000 --seed $(SEED) --out $(BUILD)/soak.json

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis
