#!/usr/bin/env bash
# Build (or reuse) the helm binary the chart tests run (deploy/helm/headstart); print its path.
#
#   tests/helm/build.sh       -> prints e.g. ~/.cache/headstart/helm/v3.22.0-<key>/bin/helm
#
# helm.sh/helm/v3/cmd/helm, built from the module this directory pins (go.mod, go.sum) with the ldflags of
# Helm's own Makefile: its version, and the Kubernetes version that `helm template` and `helm lint` assume
# offline (client-go's minor, as Helm's release builds set it). Nothing of Helm's is kept in the repository:
# go.mod and go.sum name the module, the Go module cache holds its source.
#
# * HEADSTART_HELM=PATH uses that binary as is and never builds.
# * Otherwise: built once into
#       ${HEADSTART_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headstart}/helm/<version>-<key>/bin/helm
#   where <key> hashes go.mod, go.sum, this script and the Go version (a change to any builds afresh). A cold
#   build is about 5 minutes of CPU: 80 s on an idle many-core machine, 12.5 minutes on 2 cores shared with
#   other builds and tests (plus 30 s of module downloads); a cache hit well under a second.
# All diagnostics go to stderr; stdout carries only the binary's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf 'helm: %s\n' "$*" >&2; }

if [[ -n "${HEADSTART_HELM:-}" ]]; then
  [[ -x "$HEADSTART_HELM" ]] || { log "HEADSTART_HELM=$HEADSTART_HELM is not an executable file"; exit 1; }
  printf '%s\n' "$HEADSTART_HELM"
  exit 0
fi

go_bin="$(command -v go || true)"
[[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
if [[ -z "$go_bin" ]]; then
  log "no Go toolchain on PATH: install Go >= 1.26 or set HEADSTART_HELM to a helm binary"
  exit 1
fi
export GOTOOLCHAIN=local CGO_ENABLED=0

cd "$here"
version="$("$go_bin" list -m -f '{{.Version}}' helm.sh/helm/v3)"
key="$( { cat go.mod go.sum build.sh; "$go_bin" version; } | sha256sum | cut -c1-12)"
cache_root="${HEADSTART_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headstart}/helm"
out="$cache_root/$version-$key"
mkdir -p "$cache_root"

# One builder at a time per cache entry; a second caller waits, then reuses.
exec 9>"$out.lock"
flock 9

if [[ -x "$out/bin/helm" && -f "$out/stamp" ]]; then
  log "reusing $out/bin/helm ($(cat "$out/stamp"))"
  printf '%s\n' "$out/bin/helm"
  exit 0
fi

client_go="$("$go_bin" list -m -f '{{.Version}}' k8s.io/client-go)"  # v0.37.0 -> Kubernetes 1.37
k8s_minor="${client_go#v0.}"; k8s_minor="${k8s_minor%%.*}"
commit="$("$go_bin" list -m -f '{{.Sum}}' helm.sh/helm/v3)"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version \
 -X helm.sh/helm/v3/internal/version.gitCommit=module:$commit \
 -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"

tmp="$(mktemp -d "$out.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "building helm $version into $out (a cold build is about 5 minutes of CPU)"
start=$SECONDS
mkdir -p "$tmp/bin"
"$go_bin" build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp/bin/helm" helm.sh/helm/v3/cmd/helm
"$tmp/bin/helm" version --short >/dev/null || { log "the built helm does not run"; exit 1; }
chmod 755 "$tmp"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
printf '%s built in %ss with %s\n' "$version" "$((SECONDS - start))" "$("$go_bin" version)" >"$out/stamp"
log "built in $((SECONDS - start))s"
printf '%s\n' "$out/bin/helm"
