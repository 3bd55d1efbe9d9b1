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

.PHONY: help venv binaries prometheus alertmanager cluster-up cluster-down cluster-status lint test \
        test-unit test-e2e demo demo-down bench clean crd

help:
	@echo "make demo        start the local cluster, Prometheus and the operator with an example guard"
	@echo "make demo GITOPS=1   ... and then a simulated GitOps reconciler fighting the containment"
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
	@# tmux: the e2e test of `kubectl releaseguard status --watch` runs it in a real terminal.
	@command -v tmux >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux >/dev/null)

# Debian's prometheus-alertmanager: the notification tests post alerts to it.
alertmanager:
	@command -v prometheus-alertmanager >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null)

cluster-up: venv binaries prometheus alertmanager
	$(DEVCLUSTER) up

cluster-down: venv
	$(DEVCLUSTER) down

cluster-status: venv
	$(DEVCLUSTER) status

lint: venv
	$(VENV)/bin/ruff check operator tools tests
	$(VENV)/bin/ruff format --check operator tools tests
	cd operator && ../$(VENV)/bin/lint-imports ../pyproject.toml

# The CRD is generated from the pydantic models (operator/releaseguard/crd.py says where
# each part is declared); tests/unit/test_crd_generated.py fails when it is not up to date.
crd: venv
	$(PY) -m releaseguard.crd crds/releaseguard.yaml

# prometheus: promtool checks and unit-tests the operator's alert rules.
test-unit: venv prometheus
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

# Tests marked clusterwide run an operator over every namespace: alone first, so that it
# never acts on another test's guards; then the rest in parallel.
test-e2e: cluster-up
	$(PY) -m pytest tests/e2e -q -m clusterwide $(PYTEST_ARGS)
	$(PY) -m pytest tests/e2e -q $(XDIST) -m "not clusterwide" $(PYTEST_ARGS)

test: lint test-unit check-image test-e2e

# GITOPS=1 adds an act in which a stand-in for Argo CD self-heal undoes the containment.
demo: cluster-up
	GITOPS=$(GITOPS) PYTHONPATH=tools $(PY) tools/demo.py

demo-down: venv
	PYTHONPATH=tools $(PY) tools/demo.py down
	$(DEVCLUSTER) down

bench: cluster-up
	PYTHONPATH=tools $(PY) tools/bench/evaluation.py
	PYTHONPATH=tools $(PY) tools/bench/steps.py
	PYTHONPATH=tools $(PY) tools/bench/ttc.py
	PYTHONPATH=tools $(PY) tools/bench/ttc.py --interval 10 --trials 10
	PYTHONPATH=tools $(PY) tools/bench/ttc.py --interval 10 --confirm-interval 2 --trials 10
	PYTHONPATH=tools $(PY) tools/bench/ttc.py --dead-webhook both --trials 10
	PYTHONPATH=tools $(PY) tools/bench/scale.py
	PYTHONPATH=tools $(PY) tools/bench/guard_metrics.py
	PYTHONPATH=tools $(PY) tools/bench/unguarded.py
	PYTHONPATH=tools $(PY) tools/bench/killloop.py

clean: cluster-down
	rm -rf $(VENV) .devcluster

# The image's dependencies with hashes (see Dockerfile). Re-run after changing pyproject's
# dependencies or [build-system].requires (`make check-image` fails until then). It runs
#   <build-system.requires> | uv pip compile pyproject.toml - --generate-hashes --only-binary :all: \
#     --python-version 3.11 --python-platform x86_64-manylinux_2_36 -o requirements.lock
# with uv from a throwaway venv, not .venv. 3.11 on glibc 2.36 is the base image's. The build
# backend is locked too: the image builds our package with --no-build-isolation so that pip
# does not fetch setuptools unpinned. Existing pins are kept; `make lock LOCK_ARGS=--upgrade`
# moves everything to the newest versions.
LOCK_ARGS ?=
UV_VERSION := 0.13.8
LOCK_TOOLS := $(RELEASEGUARD_CACHE)/lock-tools-uv-$(UV_VERSION)

.PHONY: lock check-image

lock:
	test -x $(LOCK_TOOLS)/bin/uv || ($(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install -q uv==$(UV_VERSION))
	$(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(LOCK_TOOLS)/bin/uv pip compile pyproject.toml - $(LOCK_ARGS) --generate-hashes --only-binary :all: \
	      --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
	      --custom-compile-command 'make lock' -q -o requirements.lock

# Runs the Dockerfile's pip commands in a fresh venv (no Docker engine here); see the script.
check-image:
	PYTHON=$(PYTHON) bash tools/image/check-install.sh
