"""Real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) for Headstart's tests, built from pinned Go modules.

Go side: go.mod, cmd/etcd, build.sh.  Python side: certs (PKI), processes
(child processes), cluster (ControlPlane), kubelet (fake nodes and pod status),
waiting (bounded polling), binaries (where the binaries come from), and
__main__ (`make cluster`).
"""
