"""Where the control-plane binaries come from.

Order, per binary (envtest's convention first):
  1. $KUBEBUILDER_ASSETS/<name>, if present there;
  2. $HEADSTART_K8S_BIN/<name>, if that variable is set (no build attempted);
  3. the directory printed by build.sh, which reuses the pinned build cache or
     builds it with the Go toolchain.
A binary found nowhere is an error, never a reason to skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
NODE_NAMES = ("kubelet", "kube-proxy", "pause")  # the real node's (node.py); built by the same build.sh


class BinariesMissing(RuntimeError):
    pass


def pinned_version() -> str:
    """The k8s.io/kubernetes version required by tests/controlplane/go.mod."""
    for line in (HERE / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "k8s.io/kubernetes":
            return parts[1]
    raise BinariesMissing("tests/controlplane/go.mod does not require k8s.io/kubernetes")


def _has(directory: Path, name: str) -> bool:
    path = directory / name
    return path.is_file() and os.access(path, os.X_OK)


def build_dir(timeout: float = 3600.0) -> Path:
    """Run build.sh (a cache hit takes about a second) and return its directory."""
    try:
        done = subprocess.run(
            [str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BinariesMissing(f"{BUILD_SCRIPT} did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise BinariesMissing(
            f"{BUILD_SCRIPT} failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
        )
    return Path(done.stdout.strip().splitlines()[-1])


def resolve(names: tuple[str, ...] = NAMES) -> dict[str, Path]:
    """Map each binary name to an executable path, building if needed."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    explicit = os.environ.get("HEADSTART_K8S_BIN")
    found: dict[str, Path] = {}
    if assets:
        found = {n: Path(assets) / n for n in names if _has(Path(assets), n)}
    missing = [n for n in names if n not in found]
    if missing:
        fallback = Path(explicit) if explicit else build_dir()
        for name in missing:
            if not _has(fallback, name):
                raise BinariesMissing(
                    f"{name} not found in {fallback} (KUBEBUILDER_ASSETS={assets!r}); "
                    "run `make controlplane` or point KUBEBUILDER_ASSETS at the binaries"
                )
            found[name] = fallback / name
    return found


def resolve_node() -> dict[str, Path]:
    """kubelet, kube-proxy and pause, from the same places as the control plane's binaries."""
    return resolve(NODE_NAMES)
