"""Synthetic photo-like images for the trainer benchmark, written as JPEG files in an image folder.

Each class has its own palette and shape (ellipses, bars or rings of a class hue on a noisy gradient
background), so a head on a random-weight base can still learn something; the point is the cost of
decoding, resizing and running the base, which is that of real photos of the same size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CLASS_NAMES = ("amber", "cobalt", "jade", "rose", "slate", "violet")


def _image(rng: Any, label: int, height: int, width: int) -> Any:
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width].astype("float32")
    base = rng.uniform(40, 200, 3).astype("float32")
    tilt = rng.uniform(-0.3, 0.3, 2)
    img = base + (yy[..., None] * tilt[0] + xx[..., None] * tilt[1])
    hue = np.roll(np.array([230.0, 120.0, 30.0]), label % 3) * (0.6 if label >= 3 else 1.0)
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.05, 0.25) * height, rng.uniform(0.05, 0.25) * width
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        mask = (d < 1) if label % 2 == 0 else ((d > 0.5) & (d < 1))
        img[mask] = hue + rng.normal(0, 20, 3)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype("uint8")


def write_folder(root: Path, per_class: int, classes: int, height: int, width: int, seed: int = 0,
                 first: int = 0) -> int:
    """Write ``per_class`` JPEGs for each of ``classes`` classes under ``root``, starting at class ``first``
    of CLASS_NAMES; returns the count."""
    import numpy as np
    import tensorflow as tf

    if not 2 <= classes <= len(CLASS_NAMES) - first or first < 0:
        raise ValueError(f"classes must be from 2 to {len(CLASS_NAMES) - first}")
    rng = np.random.default_rng(seed)
    n = 0
    for label in range(first, first + classes):
        folder = root / CLASS_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            data = tf.io.encode_jpeg(_image(rng, label, height, width), quality=90).numpy()
            (folder / f"{i:05d}.jpg").write_bytes(data)
            n += 1
    return n


def split_like_trainer(root: Path, validation: float, seed: int) -> dict[str, list[tuple[str, int]]]:
    """The (path, label) lists of train and validation exactly as the trainer's image-folder split
    makes them (same seed, same per-class permutation, train shuffled), so both sides see the same data."""
    import numpy as np

    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[str, int]]] = {"train": [], "validation": []}
    for label, name in enumerate(classes):
        files = sorted(str(p) for p in (root / name).rglob("*") if p.is_file() and not p.name.startswith("."))
        files = [files[i] for i in rng.permutation(len(files))]
        n_val = max(1, int(round(len(files) * validation))) if validation > 0 else 0
        parts["validation"] += [(p, label) for p in files[:n_val]]
        parts["train"] += [(p, label) for p in files[n_val:]]
    order = rng.permutation(len(parts["train"]))
    parts["train"] = [parts["train"][i] for i in order]
    return parts
