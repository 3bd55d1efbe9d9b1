# ReleaseGuard: the two commands a newcomer needs are `make demo` and `make test`.
# Both set up what they need on a fresh machine (venv, Debian prometheus, the Go-built
# control plane binaries in $(RELEASEGUARD_CACHE)) and reuse it when present.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export RELEASEGUARD_CACHE ?= $(HOME)/.cache/releaseguard
DEVCLUSTER := PYTHONPATH=tools $(PY) -m devcluster
PYTEST_ARGS ?=
# e2e tests each own a namespace and an operator, so they run in parallel.
XDIST ?= -n 4

.PHONY: help venv binaries prometheus cluster-up cluster-down cluster-status lint test \
        test-unit test-e2e demo demo-down bench clean

help:
	@echo "make demo        start the local cluster, Prometheus and the operator with an example guard"
	@echo "make test        lint, unit tests and e2e tests on the local cluster"
	@echo "make demo-down   stop everything the demo started (same as cluster-down)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

binaries:
	bash tools/devcluster/build-binaries.sh all

prometheus:
	@command -v prometheus >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null)

cluster-up: venv binaries prometheus
	$(DEVCLUSTER) up

cluster-down: venv
	$(DEVCLUSTER) down

cluster-status: venv
	$(DEVCLUSTER) status

lint: venv
	$(VENV)/bin/ruff check operator tools tests
	$(VENV)/bin/ruff format --check operator tools tests
	cd operator && ../$(VENV)/bin/lint-imports ../pyproject.toml

test-unit: venv
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

test-e2e: cluster-up
	$(PY) -m pytest tests/e2e -q $(XDIST) $(PYTEST_ARGS)

test: lint test-unit test-e2e

demo: cluster-up
	PYTHONPATH=tools $(PY) tools/demo.py

demo-down: venv
	PYTHONPATH=tools $(PY) tools/demo.py down
	$(DEVCLUSTER) down

bench: cluster-up
	PYTHONPATH=tools $(PY) tools/bench/evaluation.py
	PYTHONPATH=tools $(PY) tools/bench/steps.py
	PYTHONPATH=tools $(PY) tools/bench/ttc.py
	PYTHONPATH=tools $(PY) tools/bench/scale.py

clean: cluster-down
	rm -rf $(VENV) .devcluster
