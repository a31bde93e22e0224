#!/usr/bin/env bash
# Build (or reuse) the images the test node runs; print "<name> <image ref> <archive>" per image.
#
#   tests/node/build-images.sh pause|base|trainer|operator ...
#
# Built here, never pulled, with a daemonless builder (buildah) and Debian's packages:
#   pause     the sandbox image: the pause binary compiled by tests/controlplane/build.sh from the
#             pinned Kubernetes module's build/pause/linux/pause.c, on an empty filesystem;
#   base      Debian (mmdebstrap --variant=minbase) with python3 and pip; its /etc/pip.conf makes
#             every pip install offline (--no-index --find-links /wheels);
#   trainer   trainer/Dockerfile with --build-arg BASE_IMAGE=<base> (its default stays the GPU
#             TensorFlow image), the wheels of `.[trainer]` (CPU TensorFlow) mounted at /wheels;
#   operator  operator/Dockerfile the same way (`.[operator]`), when that file exists.
# Each image is a docker-archive in ${HEADSTART_CACHE:-~/.cache/headstart}/images, named after a
# hash of its inputs, so it is rebuilt only when they change; the node imports it into containerd
# (tests/controlplane/node.py).  Diagnostics go to stderr.
set -euo pipefail

# Builders leave state in /run (runc's root, libmount's utab, netns mounts): build in a mount
# namespace of our own with a private /run, so nothing of it reaches the host's.
if [[ -z "${HEADSTART_IMAGES_PRIVATE_RUN:-}" ]]; then
  exec unshare --mount --propagation private -- env HEADSTART_IMAGES_PRIVATE_RUN=1 \
    bash -c 'mount -n -t tmpfs -o mode=0755 headstart-images-run /run && exec "$0" "$@"' "$0" "$@"
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${HEADSTART_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headstart}/images"
# What defines each image (its cache key hashes these, not this script's text):
suite=bookworm
base_packages=python3,python3-pip,python-is-python3,passwd
base_hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
# Images built on the base install Python packages offline, from wheels mounted at /wheels.
pip_conf=$'[global]\nno-index = true\nfind-links = /wheels\nbreak-system-packages = true\n'
pause_config=(--entrypoint '["/pause"]' --user 65535:65535 --os linux --arch amd64)
python="${PYTHON:-$repo/.venv/bin/python}"

log() { printf 'images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
hash_of() { sha256sum | cut -c1-12; }
# Inputs of a directory tree, as they would be copied into a build context.
tree_hash() {
  (cd "$repo" && find "$@" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 \
     | LC_ALL=C sort -z | xargs -0 sha256sum) | hash_of
}

mkdir -p "$cache"
# One builder per image at a time; a second caller waits, then reuses what the first built.  A lock
# lasts until the (sub)shell that took it ends: each image is built in a subshell of its own.
lock() { local fd; exec {fd}>"$cache/.lock-$1"; flock "$fd"; }

runroot="$(mktemp -d /tmp/headstart-buildah-run.XXXXXX)"
trap 'rm -rf "$runroot"' EXIT
bah() { buildah --root "$cache/buildah-storage" --runroot "$runroot" --storage-driver overlay "$@"; }

# Keep two archives per image name, the one just built or reused and the newest other one (switching
# between two branches rebuilds nothing).
prune() {
  local name="$1" keep="$2" f n=0
  while IFS= read -r f; do
    [[ "$f" == "$keep" ]] && continue
    n=$((n + 1))
    if ((n > 1)); then rm -f "$f"; fi
  done < <(ls -1t "$cache/$name"-*.tar 2>/dev/null)
}

emit() { printf '%s %s %s\n' "$1" "$2" "$3"; }

build_pause() {
  local bin pause_bin version key ref out ctr
  bin="$("$repo/tests/controlplane/build.sh")"
  pause_bin="$bin/pause"
  [[ -x "$pause_bin" ]] || die "no pause binary in $bin"
  version="$(cat "$bin/pause.version")"
  key="$( { sha256sum <"$pause_bin"; echo "${pause_config[*]}"; } | hash_of)"
  ref="localhost/headstart/pause:$version"
  out="$cache/pause-$key.tar"
  [[ -s "$out" ]] || lock pause  # a cache hit needs no lock: archives appear whole (mv)
  if [[ ! -s "$out" ]]; then
    log "building $ref"
    ctr="$(bah from --name "headstart-pause-$$" scratch)"
    bah copy "$ctr" "$pause_bin" /pause >/dev/null
    bah config "${pause_config[@]}" --label "headstart.dev/input-hash=$key" "$ctr"
    bah commit --quiet --rm "$ctr" "$ref" >/dev/null
    bah push --quiet "$ref" "docker-archive:$out.tmp:$ref" >/dev/null
    mv "$out.tmp" "$out"
  fi
  prune pause "$out"
  emit pause "$ref" "$out"
}

base_key() { printf '%s\n' "$suite" "$base_packages" "$base_hook" "$pip_conf" | hash_of; }

build_base() {
  local key ref out rootfs ctr
  key="$(base_key)"
  ref="localhost/headstart/python-base:$key"
  out="$cache/base-$key.tar"
  [[ -s "$out" ]] || lock base
  if [[ -s "$out" ]] && ! bah inspect --type image "$ref" >/dev/null 2>&1; then
    bah pull --quiet "docker-archive:$out" >/dev/null  # back into the store, from the local archive
  fi
  if [[ ! -s "$out" ]]; then
    log "building $ref with mmdebstrap ($suite, minbase, $base_packages)"
    rootfs="$(mktemp /tmp/headstart-rootfs.XXXXXX.tar)"
    # Debian's own archive through apt, as configured on this machine.
    mmdebstrap --quiet --variant=minbase --include="$base_packages" --mode=root \
      --customize-hook="$base_hook" \
      "$suite" "$rootfs" /etc/apt/sources.list.d/debian.sources </dev/null >&2
    ctr="$(bah from --name "headstart-base-$$" scratch)"
    bah add "$ctr" "$rootfs" / >/dev/null
    rm -f "$rootfs"
    printf '%s' "$pip_conf" >"$runroot/pip.conf"
    bah copy "$ctr" "$runroot/pip.conf" /etc/pip.conf >/dev/null
    bah config --cmd '["python3"]' --os linux --arch amd64 --label "headstart.dev/input-hash=$key" "$ctr"
    bah commit --quiet --rm "$ctr" "$ref" >/dev/null
    bah push --quiet "$ref" "docker-archive:$out.tmp:$ref" >/dev/null
    mv "$out.tmp" "$out"
  fi
  prune base "$out"
  emit base "$ref" "$out"
}

# Wheels of everything `pip install .[EXTRA]` needs, for the image's Python (3.11, like the venv's),
# plus the build backend: taken from pip's cache or the package index on the host, never in a build.
wheels() {
  local extra="$1" key dir
  key="$( { cat "$repo/pyproject.toml"; echo "$extra"; "$python" --version; } | hash_of)"
  dir="$cache/wheels-$extra-$key"
  [[ -f "$dir/.complete" ]] || lock "wheels-$extra"
  if [[ ! -f "$dir/.complete" ]]; then
    [[ -x "$python" ]] || die "no Python at $python (run make install)"
    log "collecting wheels for .[$extra] into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    "$python" -m pip wheel --quiet --wheel-dir "$dir" "$repo[$extra]" hatchling >&2
    rm -f "$dir"/headstart-*.whl  # the image builds the project from its own copy of the source
    touch "$dir/.complete"
    # New dependencies: older wheel sets and the builder's cached layers built from them go.
    find "$cache" -maxdepth 1 -name "wheels-$extra-*" -not -name "$(basename "$dir")" -exec rm -rf {} +
    bah rmi --prune >/dev/null 2>&1 || true
  fi
  printf '%s\n' "$dir"
}

build_app() {  # name dockerfile extra
  local name="$1" dockerfile="$2" extra="$3" base_ref wheel_dir key ref out
  [[ -f "$repo/$dockerfile" ]] || die "$dockerfile does not exist yet"
  base_ref="$(build_base | cut -d' ' -f2)"
  wheel_dir="$(wheels "$extra")"
  key="$( { echo "$base_ref"; basename "$wheel_dir";
            tree_hash "$dockerfile" "$dockerfile.dockerignore" pyproject.toml README.md sdk operator trainer; } \
          | hash_of)"
  ref="localhost/headstart/$name:$key"
  out="$cache/$name-$key.tar"
  [[ -s "$out" ]] || lock "$name"
  if [[ ! -s "$out" ]]; then
    log "building $ref from $dockerfile on $base_ref"
    local ignore=()
    [[ -f "$repo/$dockerfile.dockerignore" ]] && ignore=(--ignorefile "$repo/$dockerfile.dockerignore")
    # --layers: the dependency layer (trainer/Dockerfile) is reused while pyproject.toml is unchanged
    bah build --quiet --layers --pull=never --network=none --isolation=oci "${ignore[@]}" \
      --build-arg "BASE_IMAGE=$base_ref" --volume "$wheel_dir:/wheels:ro" \
      --label "headstart.dev/input-hash=$key" \
      -f "$repo/$dockerfile" -t "$ref" "$repo" >&2
    bah push --quiet "$ref" "docker-archive:$out.tmp:$ref" >/dev/null
    mv "$out.tmp" "$out"
    # Keep this image in the store (its untagged parents are the layer cache of the next build);
    # drop older ones of the same name.
    bah images --format '{{.Name}}:{{.Tag}}' | grep "^localhost/headstart/$name:" | grep -v ":$key\$" \
      | xargs -r buildah --root "$cache/buildah-storage" --runroot "$runroot" --storage-driver overlay rmi \
      >/dev/null 2>&1 || true
  fi
  prune "$name" "$out"
  emit "$name" "$ref" "$out"
}

(($# > 0)) || die "usage: $0 pause|base|trainer|operator ..."
command -v buildah >/dev/null || die "buildah missing: run tests/node/install-packages.sh"
for image in "$@"; do
  start=$SECONDS
  case "$image" in
    pause) (build_pause) ;;
    base) (build_base) ;;
    trainer) (build_app trainer trainer/Dockerfile trainer) ;;
    operator) (build_app operator operator/Dockerfile operator) ;;
    *) die "unknown image '$image' (pause, base, trainer, operator)" ;;
  esac
  log "$image ready in $((SECONDS - start))s"
done
