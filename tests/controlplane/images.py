"""Images for the real node, built here by tests/node/build-images.sh and cached by input hash.

    ref, archive = images.build("trainer")     # reuses the cache when nothing changed
    node.load_image(archive)                   # then pods use `ref` with imagePullPolicy: Never

Images are never pulled: the node's containerd has no route to any registry, and
every image a pod uses is imported from an archive first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "node" / "build-images.sh"
KINDS = ("pause", "base", "trainer", "operator")
#: The names deploy/ and the operator use by default; imported images are tagged so as well.
DEFAULT_TAGS = {"trainer": ("headstart-trainer:latest",), "operator": ("headstart-operator:latest",)}


class ImageBuildFailed(RuntimeError):
    """build-images.sh failed; the message carries the end of its output."""

    pass


def build(kind: str, timeout: float = 3600.0) -> tuple[str, Path]:
    """Build (or reuse) one image; return its reference and its docker-archive."""
    if kind not in KINDS:
        raise ValueError(f"unknown image {kind!r}; one of {', '.join(KINDS)}")
    try:
        done = subprocess.run([str(SCRIPT), kind], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildFailed(f"{SCRIPT} {kind} did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise ImageBuildFailed(f"{SCRIPT} {kind} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    name, ref, archive = done.stdout.strip().splitlines()[-1].split()
    if name != kind:
        raise ImageBuildFailed(f"{SCRIPT} {kind} printed {done.stdout!r}")
    return ref, Path(archive)
