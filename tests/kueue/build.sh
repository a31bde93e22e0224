#!/usr/bin/env bash
# Build (or reuse) Kueue's controller manager and its CRDs for the test cluster; print their directory.
#
#   tests/kueue/build.sh      -> prints e.g. ~/.cache/headstart/kueue/v0.17.0-<key>
#
# That directory holds bin/kueue (sigs.k8s.io/kueue/cmd/kueue, built from the module this directory pins),
# crds/ (the CRDs of that same module zip: config/components/crd/bases) and config/ (from the same zip: the
# webhook configurations, config/components/webhook/manifests.yaml, and the manager's ClusterRole and secrets
# Role, config/components/rbac/{role,manager_secrets_role}.yaml), which tests/controlplane/kueue_manifests.py
# fits to the test cluster. Nothing of Kueue's is kept in the repository: go.mod and go.sum name the module,
# the Go module cache holds its source.
#
# * HEADSTART_KUEUE_DIR=DIR uses DIR as is (bin/kueue, crds/, config/) and never builds.
# * Otherwise: built once into
#       ${HEADSTART_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headstart}/kueue/<version>-<key>
#   where <key> hashes go.mod, go.sum, this script and the Go version. A cold build takes about 5 minutes
#   on 2 idle cores (downloads included; 25 minutes on 2 cores shared with other builds and tests); a
#   cache hit well under a second.
# All diagnostics go to stderr; stdout carries only the directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf 'kueue: %s\n' "$*" >&2; }

complete() {
  [[ -x "$1/bin/kueue" && -f "$1/crds/kueue.x-k8s.io_workloads.yaml" && -f "$1/config/webhooks.yaml" \
     && -f "$1/config/role.yaml" && -f "$1/config/secrets-role.yaml" ]]
}

if [[ -n "${HEADSTART_KUEUE_DIR:-}" ]]; then
  complete "$HEADSTART_KUEUE_DIR" || { log "HEADSTART_KUEUE_DIR=$HEADSTART_KUEUE_DIR lacks bin/kueue, crds/ or config/"; exit 1; }
  printf '%s\n' "$HEADSTART_KUEUE_DIR"
  exit 0
fi

go_bin="$(command -v go || true)"
[[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
if [[ -z "$go_bin" ]]; then
  log "no Go toolchain on PATH: install Go >= 1.26 or set HEADSTART_KUEUE_DIR to a directory made by this script"
  exit 1
fi
export GOTOOLCHAIN=local CGO_ENABLED=0

cd "$here"
version="$("$go_bin" list -m -f '{{.Version}}' sigs.k8s.io/kueue)"
key="$( { cat go.mod go.sum build.sh; "$go_bin" version; } | sha256sum | cut -c1-12)"
cache_root="${HEADSTART_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headstart}/kueue"
out="$cache_root/$version-$key"
mkdir -p "$cache_root"

# One builder at a time per cache entry; a second caller waits, then reuses.
exec 9>"$out.lock"
flock 9

if complete "$out" && [[ -f "$out/stamp" ]]; then
  log "reusing $out ($(cat "$out/stamp"))"
  printf '%s\n' "$out"
  exit 0
fi

pkg=sigs.k8s.io/kueue/pkg/version
build_date="$("$go_bin" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' sigs.k8s.io/kueue)"
ldflags="-s -w -X $pkg.GitVersion=$version -X $pkg.GitCommit=module-zip -X $pkg.BuildDate=$build_date"

tmp="$(mktemp -d "$out.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log "building Kueue $version into $out (a cold build takes about 5 minutes)"
start=$SECONDS
mkdir -p "$tmp/bin" "$tmp/crds" "$tmp/config"
"$go_bin" build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp/bin/kueue" sigs.k8s.io/kueue/cmd/kueue
module_dir="$("$go_bin" list -m -f '{{.Dir}}' sigs.k8s.io/kueue)"
cp "$module_dir"/config/components/crd/bases/*.yaml "$tmp/crds/"
cp "$module_dir/config/components/webhook/manifests.yaml" "$tmp/config/webhooks.yaml"
cp "$module_dir/config/components/rbac/role.yaml" "$tmp/config/role.yaml"
cp "$module_dir/config/components/rbac/manager_secrets_role.yaml" "$tmp/config/secrets-role.yaml"
chmod -R u+w "$tmp"  # the module cache is read-only; the copies need not be
chmod 755 "$tmp"
complete "$tmp" || { log "build produced an incomplete set in $tmp"; exit 1; }
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
printf '%s built in %ss with %s\n' "$version" "$((SECONDS - start))" "$("$go_bin" version)" >"$out/stamp"
log "built in $((SECONDS - start))s"
printf '%s\n' "$out"
