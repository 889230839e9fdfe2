# Two entry points: `make run` (the main job on the sample book) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m rebal.warmup
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/rebal propose --sample --policy rails

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -n 2 -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/batch.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
