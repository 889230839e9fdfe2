# Two entry points: `make run` (the main job on the sample book) and `make test` (the whole suite).
# `make run` proposes for the sample book, then operates on it: a fresh SQLite store
# (rebal-demo.db), runs through the simulated broker, reconciliation (scripts/demo.py).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean bench lock

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m rebal.warmup
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/rebal propose --sample --policy rails
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -n 2 -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/batch.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info rebal-demo.db rebal-demo.db.claims

# Re-resolve the dependencies from pyproject.toml in a scratch venv and freeze them into constraints.txt.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[dev]'
	{ head -2 constraints.txt; .venv-lock/bin/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-lock
