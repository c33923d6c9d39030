# Every target creates .venv and installs what it needs when missing, so a fresh
# machine with Python 3.11+ and make needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint bench prism clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

demo: $(STAMP)
	$(BIN)/patchbay demo --dir .patchbay/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check patchbay tests examples benchmarks
	$(BIN)/mypy patchbay

# The Prism mock server (Node) for the contract tests; they install it on first use too.
PRISM_DIR := .patchbay/node
PRISM_VERSION := 5.14.2
prism:
	@grep -qs '"version": "$(PRISM_VERSION)"' $(PRISM_DIR)/node_modules/@stoplight/prism-cli/package.json \
	  || npm install --no-audit --no-fund --prefix $(PRISM_DIR) @stoplight/prism-cli@$(PRISM_VERSION)

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/gateway.py
	$(BIN)/python benchmarks/rest.py --stages
	$(BIN)/python benchmarks/cross_source.py

clean:
	rm -rf $(VENV) .patchbay .pytest_cache .mypy_cache .ruff_cache
