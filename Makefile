# Two commands set up everything on a fresh machine (Python 3.11+, JDK 17+, Maven):
#   make run    local Kafka broker + worker + demo producer, alerts on screen
#   make test   virtualenv, packages, Kafka jars, lint, types, unit and integration tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test tools lint typecheck layers unit integration kafka-up kafka-down bench-quality bench-throughput mutation docs-examples clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check streamproc tests $(wildcard bench)
	$(BIN)/ruff format --check streamproc tests $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy

# The import contracts of pyproject.toml [tool.importlinter]: layers, no cycles.
layers: $(STAMP)
	$(BIN)/lint-imports

# Two invocations, each with a floor on the tests it selects (tests/conftest.py
# --min-tests): a marker or addopts change cannot empty one suite while the other passes.
# Raise a floor when a suite grows; under CI (CI=1) any skip fails the run.
UNIT_MIN        := 1100
INTEGRATION_MIN := 50

unit: tools $(STAMP)
	$(BIN)/pytest tests/unit --min-tests $(UNIT_MIN)

integration: tools $(STAMP)
	$(BIN)/pytest tests/integration -m integration --min-tests $(INTEGRATION_MIN)

test: tools lint typecheck layers unit integration

# Debian packages the tests use: prometheus (promtool checks deploy/prometheus, a real
# server scrapes the worker), kcat (interop) and prometheus-alertmanager (amtool checks
# deploy/alertmanager, a real Alertmanager receives `streamproc route`'s alerts). CI runs
# as root on a fresh machine. No recommends: that would add prometheus-node-exporter.
# Where systemd runs, the packages start a system Prometheus on :9090 and Alertmanager on
# :9093; the tests use their own on free ports.
APT_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
tools:
	command -v promtool >/dev/null || ($(APT_INSTALL) prometheus)
	command -v kcat >/dev/null || ($(APT_INSTALL) kcat)
	command -v amtool >/dev/null || ($(APT_INSTALL) prometheus-alertmanager)

run: $(STAMP)
	$(BIN)/streamproc run-local

kafka-up: $(STAMP)
	$(BIN)/streamproc kafka up

kafka-down: $(STAMP)
	$(BIN)/streamproc kafka down

bench-quality: $(STAMP)
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/quality_labels.py

bench-throughput: $(STAMP)
	$(BIN)/python -m bench.throughput

# Rewrites the example alerts and log lines of README.md and docs/alerts.md from a
# replay of the demo scenario (tests/unit/test_docs_examples.py checks them).
docs-examples: $(STAMP)
	$(BIN)/python -m tests.support.docs_examples

# Mutation testing of the core ([tool.mutmut] in pyproject.toml, results in docs/mutation.md):
# slow, not part of `test` or CI. mutmut 3 needs pytest < 9, so it gets a virtualenv of its own
# (.mvenv). `make mutation MUTANTS='streamproc.alerts*'` runs one module's mutants again;
# `$(MVENV)/bin/mutmut results` lists the survivors; mutants/ is scratch.
MVENV         := .mvenv
MSTAMP        := $(MVENV)/.installed
MUTANTS       ?=
MUTATION_JOBS ?= 2

$(MSTAMP): pyproject.toml
	$(PYTHON) -m venv $(MVENV)
	$(MVENV)/bin/pip install --quiet --upgrade pip
	$(MVENV)/bin/pip install --quiet -e '.[dev]' 'pytest<9' 'mutmut>=3.3,<4'
	@touch $@

mutation: $(MSTAMP)
	nice -n 19 $(MVENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(MUTANTS)
	$(MVENV)/bin/mutmut results

clean:
	rm -rf $(VENV) $(MVENV) mutants var .mypy_cache .ruff_cache .pytest_cache
