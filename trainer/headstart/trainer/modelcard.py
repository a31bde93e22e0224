"""README.md model card: what the model is, how it was trained and how well it does."""

from __future__ import annotations

import platform
from importlib import metadata

from .reporting import StageResult

LIBRARIES = ("tensorflow", "keras", "tensorflow-datasets", "numpy", "headstart")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def render(*, job_name: str, base: dict[str, str], image_size: tuple[int, int], dataset: dict[str, str],
           class_names: list[str], counts: dict[str, int | None], skipped: int, stages: list[StageResult],
           stage_specs: list[dict], metrics: dict[str, float], seed: int, runtime: dict[str, object],
           formats: list[str]) -> str:
    lines = [
        f"# {job_name}",
        "",
        f"An image classifier over {len(class_names)} classes, fine-tuned by Headstart from "
        f"{base.get('source', '?')}.",
        "",
        "## Use",
        "",
        f"Input: RGB images of {image_size[0]}x{image_size[1]} pixels, raw values 0-255 (float32); the "
        "model does its own preprocessing. Output: one probability per class, in the order of labels.txt.",
        "",
        "Formats: " + ", ".join({"keras": "`model.keras` (keras.saving.load_model)",
                                 "savedmodel": "`savedmodel/` (TF Serving, tf.saved_model.load)",
                                 "tflite": "`model.tflite`"}[f] for f in formats) + ".",
        "",
        "## Base model",
        "",
        f"- Base: {base.get('source', '?')}",
        f"- Weights: {base.get('weights', '?')}",
        "",
        "## Data",
        "",
        f"- Dataset: {dataset.get('name', '?')} ({dataset.get('source', '?')}), version "
        f"{dataset.get('version', '-')}",
    ]
    for key in ("train", "validation", "test"):
        split = dataset.get(f"split_{key}")
        count = counts.get(key)
        if split is not None or count is not None:
            lines.append(f"- {key}: {split if split is not None else 'rest'} ({count if count is not None else '?'}"
                         " images)")
    if skipped:
        lines.append(f"- Skipped {skipped} unreadable or non-image files")
    lines += ["", "Classes: " + ", ".join(class_names), "", "## Training", "",
              "| stage | trainBase | optimizer | epochs (done/planned) | best val_accuracy | time (s) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for result, spec in zip(stages, stage_specs):
        opt = spec["optimizer"]
        best = "-" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.4f}"
        lines.append(f"| {result.name} | {spec['train_base']} | {opt['type']} lr {opt['learning_rate']} | "
                     f"{result.epochs_completed}/{result.epochs} | {best} | {result.duration_seconds:.1f} |")
    lines += ["", f"Seed: {seed}. Runtime: " + ", ".join(f"{k} {v}" for k, v in runtime.items()) + ".", "",
              "## Metrics", ""]
    lines += [f"- {k}: {v:.4f}" for k, v in metrics.items()] or ["- (no validation or test split)"]
    lines += ["", "## Libraries", ""]
    lines += [f"- {k} {v}" for k, v in library_versions().items()]
    return "\n".join(lines) + "\n"
