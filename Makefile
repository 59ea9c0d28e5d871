# pcseg: the two quick-start commands and a few conveniences.
#   make demo   set up .venv, generate the built-in synthetic rooms, run a short CPCM training on them
#   make test   set up .venv and run the test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PCSEG := $(VENV)/bin/pcseg
DATA ?= data/synthetic
DEMO_EXPERIMENT ?= cpcm_synthetic
DEMO_ARGS ?= trainer.epochs=2 trainer.eval_every=1

.PHONY: setup demo test data bench clean-outputs

setup:
	scripts/setup.sh

data: setup
	@if [ -f $(DATA)/scannet/dataset.json ]; then echo "synthetic data present in $(DATA)"; \
	else $(PCSEG) prepare synthetic --out $(DATA); fi

demo: data
	$(PCSEG) train $(DEMO_EXPERIMENT) $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q tests

bench: setup
	@echo "benchmarks are run one by one on purpose: see benchmarks/README.md"

clean-outputs:
	rm -rf outputs
