# One command each: `make setup`, `make study` (the embedded default study), `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: setup study test lint dryrun

setup:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU torch first: a bare `torch` (or one pulled in by trl) would resolve to a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'

study:
	. $(BIN)/activate && HF_HUB_OFFLINE=1 snakemake --cores $(CORES)

test:
	. $(BIN)/activate && HF_HUB_OFFLINE=1 python -m pytest -q

lint:
	. $(BIN)/activate && snakemake --lint

dryrun:
	. $(BIN)/activate && snakemake -n
