# Veil: `make demo` and `make test` do all set-up (virtual environment, install) first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.veil-installed

.PHONY: all demo test bench setup clean

all: test

$(STAMP): pyproject.toml
	@echo "==> setting up $(VENV) with $(PYTHON)"
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Veil needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check attestation policies keybroker enclave veil bench tests
	$(BIN)/python -m pytest -n 2 -q

demo: $(STAMP)
	$(BIN)/veil demo

bench: $(STAMP)
	$(BIN)/python bench/attest_verify.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
