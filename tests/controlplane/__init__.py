"""Real Kubernetes for Headstart's tests: a control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) and a real node (kubelet, kube-proxy,
containerd), built from pinned Go modules and Debian packages.

Go side: go.mod, cmd/etcd, build.sh.  Python side: certs (PKI), processes
(child processes), cluster (ControlPlane), kubelet (fake nodes and pod status),
waiting (bounded polling), binaries (where the binaries come from), node (the
real node), netns (its namespaces), nodeconfig (its configuration files and
firewall), tunnels (the relays between it and the host's loopback), cgroups
(its cgroup tree), images (images built by tests/node/build-images.sh), and
__main__ (`make cluster`).
"""
