# Two commands set everything up on a fresh machine: `make demo` (the run install) and `make test` (run + dev).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
export SAM_CLI_TELEMETRY := 0
# The SAM CLI has its own venv: it pins boto3/pydantic/packaging versions pip cannot install beside ours.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed
TEMPLATES := template.yaml forwarder.yaml member-role.yaml

.PHONY: install sam demo test test-unit test-module test-contract test-workflow lint build format bench clean

install: $(STAMP)

# What the demo needs (the CLI, the sandbox, moto), with pip's progress shown: a first `make demo` says what
# it is doing. `make test` adds the dev extras (linters, type stubs, pytest) on top.
$(RUN_STAMP): pyproject.toml
	@echo "mlplane: installing the CLI and the sandbox into $(VENV) (once; about a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar on -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP) pyproject.toml
	@echo "mlplane: installing the dev tools into $(VENV) (once)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

sam: $(SAM_STAMP)

$(SAM_STAMP): requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $(SAM_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/mlplane demo

# build is part of test: a cached sam build takes ~5 s (~30 s the first time); tests/contract/test_build.py
# checks the artifact it leaves in .aws-sam/build.
test: install lint build
	$(BIN)/pytest -n 2 --dist loadgroup --durations=25

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
	$(BIN)/cfn-lint $(TEMPLATES)
	for t in $(TEMPLATES); do $(SAM) validate --lint --region eu-west-1 --template $$t || exit 1; done

lint: $(SAM_STAMP)

# sam build for the functions' runtime (python3.13, arm64): the layer's third-party wheels are the
# manylinux aarch64 cp313 ones pip downloads for that platform (no Docker, no --use-container).
build: $(SAM_STAMP)
	@dir=$$(sh tools/python313-dir) || { echo "make build: no python3.13 on PATH or under pyenv (the functions run python3.13; install one, e.g. pyenv install 3.13)" >&2; exit 1; }; \
	echo "sam build with $$dir/python3.13"; \
	PATH="$$dir:$$PATH" $(SAM) build --region eu-west-1 && \
	echo "compiling the artifact's bytecode (Lambda cannot write __pycache__: without it every cold start compiles)" && \
	"$$dir/python3.13" -m compileall -q -j 0 --invalidation-mode checked-hash .aws-sam/build

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m mlplane_sandbox.bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
