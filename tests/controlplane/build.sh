#!/usr/bin/env bash
# Build (or reuse) the test control-plane binaries and print their directory.
#
#   tests/controlplane/build.sh          -> prints e.g. ~/.cache/headstart/k8s/v1.36.3-<key>/bin
#
# Binaries: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, and for the
# real test node kubelet, kube-proxy and pause (compiled with the C compiler from the pinned
# module's build/pause/linux/pause.c, statically linked, as the upstream pause image is).
#
# * KUBEBUILDER_ASSETS (the envtest convention): if it names a directory holding
#   all five binaries, nothing is built and that directory is printed.  envtest's
#   own asset bundles ship only etcd, kube-apiserver and kubectl; in that case the
#   full set is built into the cache and the Python launcher still prefers the
#   KUBEBUILDER_ASSETS copy of each binary it finds there.
# * Otherwise the binaries are built with the Go toolchain from the module in this
#   directory into a cache outside the repository:
#       ${HEADSTART_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headstart}/k8s/<version>-<key>/bin
#   where <key> hashes go.mod, go.sum, this script, the etcd main package and the
#   Go version.  A later run with the same key reuses the cache; changing the pin
#   builds a fresh directory.
# All diagnostics go to stderr; stdout carries only the directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy pause)

log() { printf 'controlplane: %s\n' "$*" >&2; }

have_all() {
  local dir="$1" b
  for b in "${binaries[@]}"; do [[ -x "$dir/$b" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if have_all "$KUBEBUILDER_ASSETS"; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    printf '%s\n' "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks some of: ${binaries[*]}; building the full set"
fi

go_bin="$(command -v go || true)"
[[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
if [[ -z "$go_bin" ]]; then
  log "no Go toolchain on PATH: install Go >= 1.26 or set KUBEBUILDER_ASSETS to a directory with ${binaries[*]}"
  exit 1
fi
export GOTOOLCHAIN=local CGO_ENABLED=0

cd "$here"
k8s_version="$("$go_bin" list -m -f '{{.Version}}' k8s.io/kubernetes)"
cc_bin="${CC:-cc}"
command -v "$cc_bin" >/dev/null || { log "no C compiler ($cc_bin) for pause.c: run tests/node/install-packages.sh"; exit 1; }
key="$( { cat go.mod go.sum build.sh cmd/etcd/main.go; "$go_bin" version; "$cc_bin" --version | head -1; } \
        | sha256sum | cut -c1-12)"
cache_root="${HEADSTART_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headstart}/k8s"
out="$cache_root/$k8s_version-$key"
bin="$out/bin"
mkdir -p "$cache_root"

# One builder at a time per cache entry; a second caller waits, then reuses.
exec 9>"$out.lock"
flock 9

if have_all "$bin" && [[ -f "$out/stamp" ]]; then
  log "reusing $bin ($(cat "$out/stamp"))"
  printf '%s\n' "$bin"
  exit 0
fi

major="${k8s_version#v}"; major="${major%%.*}"
minor="${k8s_version#v*.}"; minor="${minor%%.*}"
build_date="$("$go_bin" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
pkg=k8s.io/component-base/version
ldflags="-s -w \
 -X $pkg.gitVersion=$k8s_version \
 -X $pkg.gitMajor=$major \
 -X $pkg.gitMinor=$minor \
 -X $pkg.gitCommit=unknown \
 -X $pkg.gitTreeState=archive \
 -X $pkg.buildDate=$build_date"

tmp="$(mktemp -d "$out.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "building $k8s_version control plane into $bin (cold builds take tens of minutes)"
start=$SECONDS
"$go_bin" build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp/" \
  ./cmd/etcd \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy
# The pause binary of every pod sandbox, from the pinned module's source (its Makefile's flags).
k8s_dir="$("$go_bin" list -m -f '{{.Dir}}' k8s.io/kubernetes)"
pause_tag="$(sed -n 's/^TAG ?= //p' "$k8s_dir/build/pause/Makefile")"
"$cc_bin" -Os -Wall -Werror -static -DVERSION="v$pause_tag-headstart" -o "$tmp/pause" "$k8s_dir/build/pause/linux/pause.c"
printf '%s\n' "$pause_tag" >"$tmp/pause.version"
have_all "$tmp" || { log "build produced an incomplete set in $tmp"; exit 1; }
chmod 755 "$tmp"
rm -rf "$bin"
mkdir -p "$out"
mv "$tmp" "$bin"
trap - EXIT
printf '%s built in %ss with %s\n' "$k8s_version" "$((SECONDS - start))" "$("$go_bin" version)" >"$out/stamp"
log "built in $((SECONDS - start))s"
printf '%s\n' "$bin"
