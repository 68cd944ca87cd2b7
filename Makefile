# Two commands on a fresh machine: `make sim` and `make test`.
# Both create .venv and install the pinned dependencies themselves.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUILD := build
export PYTHONPATH := $(CURDIR)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all sim test test-soak lint clean venv

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
	$(VENV)/bin/ruff check firmware boards sim host_tools tests

# Deterministic CI profile (fixed hypothesis seed and example counts).
test: $(STAMP) lint
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest tests

# More examples, random seeds: nightly / before a release.
test-soak: $(STAMP)
	HYPOTHESIS_PROFILE=soak $(PY) -m pytest tests

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis
