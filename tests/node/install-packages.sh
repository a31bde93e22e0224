#!/usr/bin/env bash
# Install the Debian packages the real test node and the image builds need (idempotent).
#
#   tests/node/install-packages.sh
#
# containerd + runc run the pods, the CNI plugins give them a bridge inside the node's own
# network namespace, nftables holds the node's firewall and iptables kube-proxy's Service rules
# (conntrack for its clean-ups), buildah builds the images from the project's Dockerfiles,
# mmdebstrap builds the Debian base image, gcc compiles the pause binary.  Installing never starts
# a daemon (a policy-rc.d refuses it while apt runs): the test node runs its own containerd inside
# its own namespaces.
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables nftables conntrack buildah mmdebstrap gcc libc6-dev
          uidmap util-linux iproute2 procps)

log() { printf 'node packages: %s\n' "$*" >&2; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  log "all present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  log "need root to install: ${missing[*]}"
  exit 1
fi
# Never let the package start a host-wide containerd.
if [[ -d /run/systemd/system ]]; then systemctl mask containerd.service >/dev/null 2>&1 || true; fi
export DEBIAN_FRONTEND=noninteractive
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
log "installing ${missing[*]}"
apt_get() { apt-get -o DPkg::Lock::Timeout=600 -y -q "$@"; }
if ! apt_get install --no-install-recommends "${missing[@]}" >&2; then
  log "install failed; refreshing the package lists once and retrying"
  apt_get update >&2
  apt_get install --no-install-recommends "${missing[@]}" >&2
fi
log "installed ${missing[*]}"
