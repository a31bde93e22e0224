# Test cluster: control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)
# and a real node (kubelet, kube-proxy, pause) built from pinned Go modules; containerd, runc, CNI
# plugins, buildah and mmdebstrap from Debian; images built here.  Included by the top-level
# Makefile, which defines PY (the venv python).
#
#   make controlplane   build the binaries once into the cache (or reuse it, or use
#                       $KUBEBUILDER_ASSETS) and print their directory
#   make node-packages  install the Debian packages the node and the image builds need (idempotent)
#   make images         build (or reuse, by input hash) the pause, base and trainer images, and the
#                       operator image once operator/Dockerfile exists
#   make kueue          build Kueue's controller manager once into the cache (tests/kueue, its own Go
#                       module) or reuse it, and print its directory
#   make cluster        run control plane + node in the foreground, the trainer image imported;
#                       the admin kubeconfig goes to .headstart/kubeconfig; Ctrl-C stops it
#                       (KUEUE=1: Kueue too, managing batch/v1 Jobs with a queue-name label)
PY ?= .venv/bin/python
CONTROLPLANE_DIR := tests/controlplane
NODE_DIR := tests/node
IMAGES := pause base trainer $(if $(wildcard operator/Dockerfile),operator)
CLUSTER_IMAGES ?= trainer$(if $(wildcard operator/Dockerfile),$(comma)operator)
comma := ,

.PHONY: controlplane node-packages images cluster kueue
controlplane: node-packages
	@$(CONTROLPLANE_DIR)/build.sh

node-packages:
	@$(NODE_DIR)/install-packages.sh

kueue:
	@tests/kueue/build.sh

images: install controlplane
	@PYTHON=$(PY) $(NODE_DIR)/build-images.sh $(IMAGES)

cluster: install controlplane $(if $(KUEUE),kueue)
	@PYTHONPATH=tests$${PYTHONPATH:+:$$PYTHONPATH} $(PY) -m controlplane --kubeconfig .headstart/kubeconfig \
	  --images $(CLUSTER_IMAGES) $(if $(KUEUE),--kueue)
