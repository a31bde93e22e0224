"""The model card's pictures: curves.png (loss and accuracy per epoch across every stage, the stage
boundaries marked) and confusion.png (true class against predicted, on the test split, else validation).

matplotlib is imported here only, with the Agg backend (no display), so nothing else pays for it.
"""

from __future__ import annotations

import os
from typing import Any

from .reporting import StageResult

CURVES = "curves.png"
CONFUSION = "confusion.png"


def write_all(staging: str, stages: list[StageResult], predicted: tuple[str, Any, Any] | None,
              class_names: list[str]) -> dict[str, tuple[str, str]]:
    """Both pictures under ``staging`` (confusion.png only with a test or validation split): artifact name ->
    (local path, caption for the model card). ``predicted``: (split, true labels, predicted labels)."""
    out = {CURVES: (os.path.join(staging, CURVES), "Loss and accuracy per epoch; dotted lines: stage boundaries")}
    curves(stages, out[CURVES][0])
    if predicted is not None:
        split, labels, predictions = predicted
        path = os.path.join(staging, CONFUSION)
        confusion(confusion_matrix(labels, predictions, len(class_names)), class_names, split, path)
        out[CONFUSION] = (path, f"Confusion matrix on the {split} split (rows: true class, columns: predicted)")
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(stages: list[StageResult], path: str) -> None:
    """Training and validation loss (left) and accuracy (right) against the epoch counted over the whole
    run; a dashed line where a stage begins, named at the top."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    starts, offset = [], 0
    for stage in stages:
        starts.append((offset, stage.name))
        offset += max((len(v) for v in stage.history.values()), default=0)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            xs, ys = _across_stages(stages, key)
            if xs:
                ax.plot(xs, ys, style, markersize=3, label=key.replace("_", " ").replace("val", "validation"))
        for start, name in starts:
            ax.axvline(start + 0.5, color="grey", linestyle=":", linewidth=1)
            ax.annotate(name, (start + 0.6, 0.98), xycoords=("data", "axes fraction"), va="top", fontsize=8,
                        color="dimgrey")
        ax.set_xlabel("epoch (all stages)")
        ax.set_ylabel(metric)
        ax.set_xlim(0.5, max(offset, 1) + 0.5)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="center right", fontsize=8)
    fig.suptitle("Training per epoch; dotted lines: stage boundaries")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _across_stages(stages: list[StageResult], key: str) -> tuple[list[int], list[float]]:
    xs, ys, offset = [], [], 0
    for stage in stages:
        values = stage.history.get(key) or []
        xs += [offset + i + 1 for i in range(len(values))]
        ys += list(values)
        offset += max((len(v) for v in stage.history.values()), default=0)
    return xs, ys


def confusion_matrix(labels: Any, predictions: Any, classes: int) -> Any:
    """counts[true, predicted]."""
    import numpy as np

    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return counts


def confusion(counts: Any, class_names: list[str], split: str, path: str) -> None:
    """The confusion matrix as a picture, each cell's count written in it."""
    plt = _pyplot()
    n = len(class_names)
    side = min(max(4.0, 0.45 * n + 2.5), 20.0)
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    ax.imshow(counts, cmap="Blues", vmin=0)
    if n <= 40:
        ax.set_xticks(range(n), class_names, rotation=90 if n > 8 else 0, fontsize=8)
        ax.set_yticks(range(n), class_names, fontsize=8)
        peak = counts.max() or 1
        for (i, j), value in _cells(counts):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > peak / 2 else "black")
    numbered = "" if n <= 40 else " (class index, the order of labels.txt)"
    ax.set_xlabel("predicted" + numbered)
    ax.set_ylabel("true" + numbered)
    total = int(counts.sum())
    right = int(counts.trace())
    ax.set_title(f"Confusion on the {split} split: {right}/{total} right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cells(counts: Any) -> list[tuple[tuple[int, int], int]]:
    return [((i, j), int(counts[i, j])) for i in range(counts.shape[0]) for j in range(counts.shape[1])]
