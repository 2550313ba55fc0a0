# agentdistill developer commands. `make demo` and `make test` create the venv when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU wheel pin for this machine; GPU users: `make setup TORCH_SPEC=torch` (or any CUDA build).
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup test test-real-env lint format demo bench clean

$(BIN)/agentdistill: pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/agentdistill

setup: $(BIN)/agentdistill

test: setup
	$(BIN)/python -m pytest -q -n 2

# The real engines (TextWorld, ALFWorld) in their own venv, so .venv stays as CI builds it. The first run
# installs the extras (~5 min: alfworld compiles fast-downward and jericho); the tests take ~2 min.
REAL_VENV := .venv-real

$(REAL_VENV)/bin/agentdistill: pyproject.toml
	test -d $(REAL_VENV) || $(PY) -m venv $(REAL_VENV)
	$(REAL_VENV)/bin/pip install -q --upgrade pip
	$(REAL_VENV)/bin/pip install -q "$(TORCH_SPEC)"
	$(REAL_VENV)/bin/pip install -q -e ".[dev,textworld,alfworld]"
	touch $(REAL_VENV)/bin/agentdistill

test-real-env: $(REAL_VENV)/bin/agentdistill
	$(REAL_VENV)/bin/python -m pytest -q -m real_env tests

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

demo: setup
	$(BIN)/agentdistill run --preset quick --out runs/demo

# Training-step speed and memory against TRL (benchmarks/README.md); installs the bench extra (trl) if missing.
bench: setup
	$(BIN)/python -c "import trl" 2>/dev/null || $(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/bench_distill.py

clean:
	rm -rf $(VENV) $(REAL_VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
