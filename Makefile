# Two commands for a fresh machine: `make demo` and `make test` (each installs first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
SERVE  := $(VENV)/.installed-serve
DEMO   ?= demo

.PHONY: install install-dev install-serve browser lint typecheck cli-docs demo test test-slow bench bench-train clean

# Sizes of each target: docs/install.md. The core is what the pipeline needs (about 2.8 GB,
# TensorFlow most of it); the demo adds the serve extra (it ends with `nocpipe serve`); the
# tests add the other extras (dask, s3, jax, ...) and tools.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

$(DEV): $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEV)

$(SERVE): $(STAMP)
	$(PY) -m pip install -q -e '.[serve]'
	touch $(SERVE)

install: $(STAMP)

install-serve: $(SERVE)

install-dev: $(DEV)

# The browser tests drive Debian's Chromium (no browser downloads): installed when missing,
# through apt as root (CI), else the tests say what to install.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "note: install Debian's chromium for the browser tests (apt-get install chromium)"; }

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Types of the library and the stages; third-party packages without types are listed in
# pyproject.toml ([tool.mypy]), one by one.
typecheck: $(DEV)
	$(VENV)/bin/mypy pipeline stages

# docs/cli.md is every command's --help; `make test` fails while the two disagree.
cli-docs: $(STAMP)
	$(PY) scripts/cli_reference.py

# The main job on the 61 bundled Aozora works, in ./demo (NOCPIPE_DATA): ingest, extract-pairs,
# a corpus report, a short training run of the default chatbot (DEMO_TRAIN: a time budget, so the
# demo takes the same few minutes on any machine), replies to six inputs from arguments and from
# stdin with the line and work each reply comes from, the model's held-out figures, and the
# command that opens the chat page.
DEMO_TRAIN ?= --max-time 2m
demo: $(SERVE)
	rm -rf $(DEMO)
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe ingest -q data/aozora
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe extract-pairs -q --examples 3
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe report --out $(DEMO)/report.html
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe train --name demo $(DEMO_TRAIN) --quiet
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe evaluate --name demo
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe predict --name demo --show-source 'こんな忘れ物、ある?' 'お母さん？' '親分、大変だ'
	printf 'どうしたの？\nありがとう\nあなたは誰ですか\n' | NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe predict --name demo --show-source
	@echo "demo data and model in $(DEMO)/; the chat page: NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe serve --name demo"

# The suite runs on every core (pytest-xdist), one test file per worker at a time, so a
# file's module fixtures are built once, in the order tests/conftest.py gives (the longest
# files first); `-m slow` is the long tail, for `make test-slow`.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: $(DEV) browser lint typecheck
	$(PY) -m pytest -q -m "not slow" $(PYTEST_PARALLEL)

test-slow: $(DEV) browser
	$(PY) -m pytest -q -m slow $(PYTEST_PARALLEL)

bench: $(STAMP)
	$(PY) benchmarks/extract.py

bench-train: $(STAMP)
	$(PY) benchmarks/train.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
