# The README's two commands: `make demo` (the local fleet demo) and `make test` (every test tier).
# Both create the virtualenv, install fleetplane into it, and build or install the real components
# (PostgreSQL, Redis, Kafka, etcd, Kubernetes, Argo CD) into ~/.cache/fleetplane once.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint unit integration e2e build image install-local hub-ui proto clean-cache help

help:
	@echo "make demo   - the local fleet demo, held 30 min for you to look (Ctrl-C ends it sooner and cleans up)"
	@echo "make test   - lint, then unit, integration and end-to-end tests (stops at the first failing tier)"
	@echo "make build  - only build/install the real components into ~/.cache/fleetplane"
	@echo "make image  - build the server, agent and hub OCI images (as root; see docs/images.md)"
	@echo "make install-local - the images, a local hub, helm install of the hub chart, its pods run, the demo's cases"
	@echo "make hub-ui - build Argo CD's web UI and an argocd serving it, for the hub (ARGO_UI_DIR=DIR: a local argo-ui copy)"

$(STAMP):
	@echo "[fleetplane] creating $(VENV) and installing fleetplane ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q -U pip
	@$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

build: $(STAMP)
	@$(BIN)/fleetplane local build

# The role images, as OCI layouts in ~/.cache/fleetplane/images (mmdebstrap, pip, umoci; no engine).
image: $(STAMP)
	@$(BIN)/fleetplane local image

# The hub chart on a local hub (docs/install.md): images built (cached) and pushed to a local
# registry, `helm install`, the chart's pods run, then the demo's three cases on that installation.
install-local: build
	@$(BIN)/fleetplane local install --cases

# Argo CD's web UI (docs/demo.md), from the ui/ sources of the Argo CD module; ARGO_UI_DIR, when
# set, is a local copy of argo-ui used instead of its Git URL.
hub-ui: $(STAMP)
	@$(BIN)/fleetplane local hub-ui

demo: build
	@$(BIN)/fleetplane demo

lint: $(STAMP)
	@echo "[fleetplane] tier: lint (ruff, import-linter, mypy)"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/lint-imports
	@$(BIN)/mypy trust kubeio maestro localinfra fleetplane controllers provisioner bootstrap benchmarks

unit: $(STAMP)
	@echo "[fleetplane] tier: unit"
	@$(BIN)/pytest tests/unit -q

integration: build
	@echo "[fleetplane] tier: integration (real PostgreSQL, Kafka, kube-apiserver, Argo CD)"
	@$(BIN)/pytest tests/integration -q --durations=0 --durations-min=2

# The chaos suite runs in the end-to-end session: it shares its clusters, Kafka and etcd.
e2e: build
	@echo "[fleetplane] tier: end to end, then the chaos suite"
	@$(BIN)/pytest tests/e2e tests/chaos -q --durations=0 --durations-min=2

# Make stops at the first failing prerequisite, so a failing tier stops the ones after it.
test: lint unit integration e2e

clean-cache:
	rm -rf ~/.cache/fleetplane
