# Two commands set everything up on a fresh machine: `make demo` and `make test` (both run `make install`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0

.PHONY: install demo test test-unit test-module test-contract test-workflow lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/mlplane demo

test: install lint
	$(BIN)/pytest -n 2

test-unit: install
	$(BIN)/pytest tests/unit

test-module: install
	$(BIN)/pytest tests/module

test-contract: install
	$(BIN)/pytest tests/contract

test-workflow: install
	$(BIN)/pytest tests/workflow

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/mlplane/mlplane cli/mlplane_cli sandbox/mlplane_sandbox functions

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m mlplane_sandbox.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
