# chainrule: `make generate` regenerates generated/ and builds the notes' PDFs,
# `make test` runs the checks. Every target sets up .venv first (and the Debian
# packages, through .ci/system-packages); the stamp files keep a repeated run from
# reinstalling until pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_STAMP := $(VENV)/.torch-installed
# Pinned: this version's CPU build is what `pip install` finds here; an unpinned
# `torch` resolves to the newest CUDA build, several GB of GPU libraries.
TORCH_VERSION := 2.13.0
# one pytest worker per core (pytest-xdist); PYTEST_ARGS=-n0 runs them in one process
PYTEST_ARGS ?= -n auto

.PHONY: system venv torch generate notes check test clean

# make, a C compiler, TeX: installed when missing (root or sudo), else named
system:
	.ci/system-packages

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

generate: system $(STAMP)
	$(BIN)/chainrule generate
	$(MAKE) notes

# the notes as PDFs, English and Chinese, into build/notes/{en,zh}/
notes: system $(STAMP)
	$(BIN)/chainrule notes --lang en
	$(BIN)/chainrule notes --lang zh

check: $(STAMP)
	$(BIN)/chainrule generate --check

# pytest exits 5 when it collects no tests; that fails here, as it should.
test: system $(STAMP) $(TORCH_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis .cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
