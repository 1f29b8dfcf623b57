# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench system-deps

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/querywatch demo

system-deps:
	scripts/install-system-deps.sh

test: $(BIN)/.installed system-deps
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(BIN)/.installed
	$(BIN)/python bench/fingerprint.py
	$(BIN)/python bench/capture_overhead.py
