"""The quickstart's data: sklearn's bundled 8x8 digits drawn on a canvas, with clutter, written as PNGs.

Split by writer sample, so no source image reaches the target. Importing this module does not import
TensorFlow (nor numpy until a function runs).
"""

from __future__ import annotations

import shutil
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANVAS, DIGIT = 32, 24


@dataclass(frozen=True)
class Style:
    """How a digit is drawn on the canvas."""

    shift: bool = True
    fragments: int = 0
    """Strokes cut from other digits and pasted around it (clutter)."""
    noise: float = 0.0
    """Standard deviation of Gaussian pixel noise (image range 0-1)."""
    contrast: bool = False
    """Random contrast from 40% to 100%."""


@dataclass(frozen=True)
class Sizes:
    """How much data and training; the defaults are the quickstart's, ``tiny()`` the test's."""

    source_copies: int = 3
    """Renderings of each source sample (random shift each time)."""
    train_per_class: int = 5
    """Labelled target images per class (the few labels)."""
    target_per_class: int = 80
    """Target images written per class: train_per_class for training, the rest for the test."""
    epoch_scale: float = 1.0
    """Multiplies every stage's epochs (at least 1)."""
    source_style: Style = field(default_factory=lambda: Style(shift=True, fragments=1, noise=0.05))
    target_style: Style = field(default_factory=lambda: Style(shift=True, fragments=2, noise=0.1))

    @classmethod
    def tiny(cls) -> Sizes:
        return cls(source_copies=1, target_per_class=30)


class QuickstartError(Exception):
    """Anything that stops the quickstart; ``str()`` is one line."""




def digits() -> tuple[Any, Any]:
    """sklearn's bundled digits upscaled to DIGITxDIGIT, values 0-1, and their labels."""
    import numpy as np
    try:
        from scipy.ndimage import zoom
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise QuickstartError(f"the quickstart needs scikit-learn ({exc.name} is missing): "
                              "pip install 'headstart[demo]'") from exc

    d = load_digits()
    up = np.stack([zoom(im / 16.0, DIGIT / 8, order=1) for im in d.images])
    return np.clip(up, 0.0, 1.0).astype("float32"), d.target.astype("int64")


def render(images: Any, pool: Any, rng: Any, style: Style) -> Any:
    """Draw each DIGITxDIGIT image on a CANVASxCANVAS canvas as ``style`` says; uint8 images."""
    import numpy as np

    n, size = len(images), images.shape[1]
    frag = size // 2
    out = np.zeros((n, CANVAS, CANVAS), "float32")
    for i in range(n):
        canvas = out[i]
        for _ in range(style.fragments):
            src = pool[rng.integers(len(pool))]
            y, x = rng.integers(0, size - frag + 1, 2)
            piece = src[y:y + frag, x:x + frag] * rng.uniform(0.5, 1.0)
            py, px = rng.integers(0, CANVAS - frag + 1, 2)
            region = canvas[py:py + frag, px:px + frag]
            np.maximum(region, piece, out=region)
        if style.shift:
            py, px = rng.integers(0, CANVAS - size + 1, 2)
        else:
            py = px = (CANVAS - size) // 2
        region = canvas[py:py + size, px:px + size]
        np.maximum(region, images[i], out=region)
        if style.contrast:
            canvas *= rng.uniform(0.4, 1.0)
        if style.noise:
            canvas += rng.normal(0.0, style.noise, canvas.shape).astype("float32")
    return (np.clip(out, 0.0, 1.0) * 255).round().astype("uint8")


def png(gray: Any) -> bytes:
    """A grayscale 8-bit PNG of a 2-D uint8 array (no imaging library needed)."""
    height, width = gray.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row.tobytes() for row in gray)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + \
        chunk(b"IEND", b"")


def _write_folder(root: Path, images: Any, labels: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for image, label in zip(images, labels):
        name = str(int(label))
        n = counts.get(name, 0)
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / f"{n:05d}.png").write_bytes(png(image))
        counts[name] = n + 1
    return counts


def prepare_data(workdir: Path, sizes: Sizes, seed: int = 0) -> dict[str, int]:
    """Write data/source and data/target under ``workdir``; returns images written per folder."""
    import numpy as np

    images, labels = digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    source_idx, target_idx = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])
    # The target: exactly target_per_class samples per class, so the manifest's test fraction leaves
    # exactly train_per_class for training.
    per_class = [target_idx[labels[target_idx] == c] for c in range(10)]
    fewest = min(len(p) for p in per_class)
    if sizes.target_per_class > fewest:
        raise QuickstartError(f"target_per_class {sizes.target_per_class} exceeds the {fewest} samples of "
                              "the smallest target class")
    if not 0 < sizes.train_per_class < sizes.target_per_class:
        raise QuickstartError("train_per_class must be between 1 and target_per_class - 1")
    target_idx = np.sort(np.concatenate([p[: sizes.target_per_class] for p in per_class]))
    data = workdir / "data"
    shutil.rmtree(data, ignore_errors=True)
    src = np.concatenate([render(images[source_idx], images, rng, sizes.source_style)
                          for _ in range(sizes.source_copies)])
    src_labels = np.tile(labels[source_idx], sizes.source_copies)
    tgt = render(images[target_idx], images, rng, sizes.target_style)
    written = _write_folder(data / "source", src, src_labels)
    written_t = _write_folder(data / "target", tgt, labels[target_idx])
    return {"source": sum(written.values()), "target": sum(written_t.values())}
