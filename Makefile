# Two commands for a fresh machine: `make demo` and `make test` (each installs first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
DEMO   ?= demo

.PHONY: install install-dev browser lint demo test test-slow bench bench-train clean

# The demo needs the core only; the tests add the extras (dask, serve, jax, ...) and tools.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

$(DEV): $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEV)

install: $(STAMP)

install-dev: $(DEV)

# The browser tests drive Debian's Chromium (no browser downloads): installed when missing,
# through apt as root (CI), else the tests say what to install.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "note: install Debian's chromium for the browser tests (apt-get install chromium)"; }

lint: $(DEV)
	$(VENV)/bin/ruff check .

# The main job on the bundled sample, in ./demo (NOCPIPE_DATA): ingest, extract-pairs,
# a short training run (the seed network at 64 units, 10 epochs: about a minute on 2 cores)
# and a few predictions, from arguments and from stdin.
demo: $(STAMP)
	rm -rf $(DEMO)
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe ingest data/samples/aozora
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe extract-pairs --examples 5
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe report --out $(DEMO)/report.html
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe train --name demo --units 64 --epochs 10 --batch-size 16
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe predict --name demo --show-kana 'こんな忘れ物、ある?' 'お母さん？' 'うふふ'
	printf '大丈夫か?\nわたしがさりげなく聞いてみるわ\n' | NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe predict --name demo
	@echo "demo data and model in ./$(DEMO)"

test: $(DEV) browser lint
	$(PY) -m pytest -q -m "not slow"

test-slow: $(DEV)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/extract.py

bench-train: $(STAMP)
	$(PY) benchmarks/train.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
