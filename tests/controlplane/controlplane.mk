# Test control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) built from pinned Go modules.  Included by the
# top-level Makefile, which defines PY (the venv python).
#
#   make controlplane   build the binaries once into the cache (or reuse it, or
#                       use $KUBEBUILDER_ASSETS) and print their directory
#   make cluster        run the control plane in the foreground; the admin
#                       kubeconfig goes to .headstart/kubeconfig; Ctrl-C stops it
PY ?= .venv/bin/python
CONTROLPLANE_DIR := tests/controlplane

.PHONY: controlplane cluster
controlplane:
	@$(CONTROLPLANE_DIR)/build.sh

cluster:
	@PYTHONPATH=tests$${PYTHONPATH:+:$$PYTHONPATH} $(PY) -m controlplane --kubeconfig .headstart/kubeconfig
