# Set-up and entry points. `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench clean

# Tests run in up to four processes (pytest-xdist), each test module in one process, in the
# order tests/conftest.py gives them (the longest first).
PARALLEL := -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder
# The inner loop: unit, transform and asset tests (no whole-pipeline runs, no servers).
FAST_TESTS := tests/test_*.py tests/assets tests/transforms tests/generate tests/quality tests/stream tests/sources

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# The test extras with the package in one install (the runtime install is part of it).
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/inboxgraph demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/pytest $(PARALLEL)

test-fast: $(VENV)/.installed-test
	$(BIN)/pytest $(PARALLEL) -m "not e2e" $(FAST_TESTS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(VENV)/.installed-test
	$(BIN)/python bench/identity.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf data dbt/target dbt/logs
