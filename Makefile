# Two commands for a fresh machine: `make demo` and `make test` (each installs first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: install demo test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[unidic,dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the bundled sample, in ./demo (NOCPIPE_DATA): ingest, extract-pairs.
demo: $(STAMP)
	rm -rf $(DEMO)
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe ingest data/samples/aozora
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe extract-pairs --examples 5
	@echo "demo data in ./$(DEMO)"

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/extract.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
