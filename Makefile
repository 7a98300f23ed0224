# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   create .venv, install, generate sample recordings, ingest, show findings
#   make test   create .venv, install, run the whole suite (starts its own S3 server)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSSTAMP := $(VENV)/.sysdeps
# Debian packages the tests and benchmarks use as independent peers and renderers (never
# the product): ffprobe cross-checks timestamps, b3sum hashes, Chromium renders the AUX-13
# roster page with the CJK fonts; espeak-ng speaks the Mandarin of the AV-9 voice tests.
DEBS := ffmpeg b3sum chromium fonts-noto-cjk espeak-ng libpango-1.0-0 libpangoft2-1.0-0 poppler-utils

.PHONY: demo test bench lint mutation install sysdeps clean

install: $(STAMP) $(SYSSTAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Installed with apt when missing and we are root; otherwise the tests that need them
# skip, saying why.
$(SYSSTAMP): | $(BIN)/python
	@missing=""; for d in $(DEBS); do dpkg -s $$d >/dev/null 2>&1 || missing="$$missing $$d"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note:$$missing not found and cannot apt-get; tests needing them will skip"; fi; \
	fi
	touch $@

demo: install
	$(BIN)/python -m pipeline.demo --out demo-data

# Two pytest processes (pytest-xdist), as many as CI's cores: each starts its own S3 server
# and makes its own generated media. TEST_JOBS=0 runs the suite in this one process.
TEST_JOBS ?= 2

test: install
	$(BIN)/python -m pytest -q -p no:randomly -n $(TEST_JOBS)

bench: install
	$(BIN)/python -m pytest benchmarks -q --benchmark-only --benchmark-columns=median,min,max,rounds

# Mutation testing of the integrity-critical modules (mutation/modules.toml), each with only
# its own tests; outside `make test` (minutes, not seconds). Report: .cache/mutation/report.md.
# `make mutation MODULES="chain labels"` runs some; MUTATION_JOBS=1 uses one core.
mutation: install
	$(BIN)/python mutation/run.py $(MODULES)

lint: install
	$(BIN)/ruff check pipeline schemas tests benchmarks infra
	$(BIN)/mypy
	$(BIN)/mypy benchmarks

clean:
	rm -rf $(VENV) demo-data custody-data .benchmarks .cache/mutation mutants
