# Two commands for a fresh machine: `make demo` and `make test` (each installs first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: install demo test test-slow bench bench-train clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[unidic,dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the bundled sample, in ./demo (NOCPIPE_DATA): ingest, extract-pairs,
# a short training run (the seed network at 64 units, 10 epochs: about a minute on 2 cores)
# and a few predictions, from arguments and from stdin.
demo: $(STAMP)
	rm -rf $(DEMO)
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe ingest data/samples/aozora
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe extract-pairs --examples 5
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe train --name demo --units 64 --epochs 10 --batch-size 16
	NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe predict --name demo --show-kana 'こんな忘れ物、ある?' 'お母さん？' 'うふふ'
	printf '大丈夫か?\nわたしがさりげなく聞いてみるわ\n' | NOCPIPE_DATA=$(DEMO) $(VENV)/bin/nocpipe predict --name demo
	@echo "demo data and model in ./$(DEMO)"

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/extract.py

bench-train: $(STAMP)
	$(PY) benchmarks/train.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
