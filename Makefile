# chainrule: `make generate` regenerates generated/, `make test` runs the checks.
# Every target sets up .venv first; the stamp files keep a repeated run from
# reinstalling until pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_STAMP := $(VENV)/.torch-installed
# Pinned: this version's CPU build is what `pip install` finds here; an unpinned
# `torch` resolves to the newest CUDA build, several GB of GPU libraries.
TORCH_VERSION := 2.13.0
PYTEST_ARGS ?=

.PHONY: venv torch generate check test clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

torch: $(TORCH_STAMP)

$(TORCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install 'torch==$(TORCH_VERSION)'
	touch $@

generate: $(STAMP)
	$(BIN)/chainrule generate

check: $(STAMP)
	$(BIN)/chainrule generate --check

# pytest exits 5 when it collects no tests; that fails here, as it should.
test: $(STAMP) $(TORCH_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis .cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
