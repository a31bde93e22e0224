# Headstart developer entry points. Two commands matter on a fresh machine:
#   make demo   installs and runs the offline quickstart through the real trainer
#   make test   installs everything (Python packages, the Kubernetes binaries) and runs lint + the suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install demo bench test lint crd helm clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo     run the offline quickstart (transfer learning on bundled digits, ~2 min on 2 CPUs)"
	@echo "make test     lint + the whole test suite against a real control plane"
	@echo "make cluster  control plane + a real node in the foreground (kubeconfig: .headstart/kubeconfig)"
	@echo "make kueue    build Kueue's controller manager from its Go module (cached); make cluster KUEUE=1 runs it"
	@echo "make images   build the node's images here (pause, Debian base, trainer; cached by input hash)"
	@echo "make bench    trainer benchmark: the classic tutorial loop vs Headstart (bench/README.md)"
	@echo "make crd      regenerate the CRD from the API models (deploy/crds/ and the Helm chart's crds/)"
	@echo "make helm     build the helm binary the chart tests use from its Go module (tests/helm; cached)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[operator,trainer,demo,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# The quickstart through the real CLI: data and base prepared (sklearn's bundled digits, no download),
# three jobs run by `headstart run`, then transferred vs from-scratch test accuracy side by side.
demo: install
	$(VENV)/bin/headstart validate --local examples/quickstart/
	$(PY) -m headstart.quickstart --prepare-only
	$(VENV)/bin/headstart run examples/quickstart/digits-source.yaml
	$(VENV)/bin/headstart run examples/quickstart/digits-transfer.yaml
	$(VENV)/bin/headstart run examples/quickstart/digits-scratch.yaml
	$(PY) -m headstart.quickstart --compare headstart-runs

bench: install
	$(PY) -m bench.trainer

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The one CRD, in the two places that install it: deploy/ (kustomize) and the Helm chart's crds/.
crd: install
	$(VENV)/bin/headstart crd > deploy/crds/headstart.dev_finetunejobs.yaml
	cp deploy/crds/headstart.dev_finetunejobs.yaml deploy/helm/headstart/crds/headstart.dev_finetunejobs.yaml

helm:
	@tests/helm/build.sh

test: install lint controlplane images
	$(PY) -m pytest

clean:
	rm -rf $(VENV) headstart-runs headstart-quickstart .pytest_cache .ruff_cache

-include tests/controlplane/controlplane.mk
