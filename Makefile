# Two commands do all the set-up on a fresh machine:
#   make repro   install, then run the whole DVC pipeline (offline, CPU, sample profile)
#   make test    install, then run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# make repro runs independent stages (trainings, references) this many at a time; 1: one plain dvc repro
REPRO_JOBS ?= 2
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
# torch's threads fight each other on small CPU machines; 2 matches this project's CI
export OMP_NUM_THREADS ?= 2
export MLFLOW_ALLOW_FILE_STORE ?= false

.PHONY: install repro test dvc.yaml fidelity paper-check mlflow-ui clean-runs

install: $(STAMP)

# torch first and alone: `pip install torch==2.13.0` picks the local CPU build, while a bare
# requirement resolved with the rest could pull the CUDA wheels.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

dvc.yaml: $(STAMP)
	$(BIN)/python -m pipeline.repro.experiments

# reports/fidelity.md: the paper profile against the public configs, key by key (committed, checked by a test)
fidelity: $(STAMP)
	$(BIN)/python -m pipeline.report.fidelity

# every catalogue run at the paper's widths on twin data at real resolution: one step + one eval batch, CPU
paper-check: $(STAMP)
	$(BIN)/python -u bench/paper_check.py | tee bench/results/paper_check-cpu.txt

repro: $(STAMP)
	@git rev-parse --git-dir >/dev/null 2>&1 || { echo "make repro needs a git checkout (DVC)"; exit 1; }
	$(BIN)/python -m pipeline.repro.experiments --check
	$(BIN)/python -m pipeline.repro.progress --jobs $(REPRO_JOBS)   # dvc repro, REPRO_JOBS stages at a time, with progress

test: $(STAMP)
	$(BIN)/python -m pytest -q

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --workers 1
