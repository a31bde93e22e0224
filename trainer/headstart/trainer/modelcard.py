"""README.md model card: what the model is, how it was trained and how well it does."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata

from headstart.api import StageSpec

from .reporting import StageResult
from .runtime import Runtime

LIBRARIES = ("tensorflow", "keras", "tensorflow-datasets", "numpy", "headstart")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class BaseCard:
    """What the card says about the base model."""

    source: str
    """e.g. 'keras.applications.Xception', 'model s3://bucket/base.keras', 'job digits-source (URI)'."""
    weights: str
    """e.g. 'imagenet', 'none', a weights URI, 'its own', 'fine-tuned'."""


@dataclass(frozen=True)
class DatasetCard:
    """What the card says about the data."""

    name: str
    source: str
    """'TFDS' or 'image folder'."""
    version: str = "-"
    splits: dict[str, str] = field(default_factory=dict)
    """split (train, validation, test) -> what it selects, e.g. 'train[:80%]' or '0.2'."""


@dataclass(frozen=True)
class ModelCard:
    job_name: str
    base: BaseCard
    image_size: tuple[int, int]
    dataset: DatasetCard
    class_names: list[str]
    counts: dict[str, int | None]
    skipped: int
    stages: list[StageResult]
    stage_specs: list[StageSpec]
    metrics: dict[str, float]
    seed: int
    runtime: Runtime
    formats: list[str]
    pictures: dict[str, str] = field(default_factory=dict)
    """artifact name (curves.png, confusion.png) -> caption."""


def sweep_table(result: StageResult) -> list[str]:
    """The candidates of a stage's sweep as a Markdown table (none without a sweep)."""
    if not result.candidates:
        return []
    monitor = result.candidates[0]["monitor"]
    lines = ["", f"Stage {result.name} swept {len(result.candidates)} candidates on the cached features; the best "
             f"by {monitor} on the validation split continued:", "",
             f"| learningRate | dropout | {monitor} | epochs | |", "| --- | --- | --- | --- | --- |"]
    for c in result.candidates:
        value = "not finite" if c["value"] is None else f"{c['value']:.4f}"
        lines.append(f"| {c['learning_rate']:g} | {c['dropout']:g} | {value} | {c['epochs_completed']} | "
                     f"{'chosen' if c['chosen'] else ''} |")
    return lines


def render(card: ModelCard) -> str:
    base, dataset, class_names, formats = card.base, card.dataset, card.class_names, card.formats
    image_size, counts = card.image_size, card.counts
    lines = [
        f"# {card.job_name}",
        "",
        f"An image classifier over {len(class_names)} classes, fine-tuned by Headstart from "
        f"{base.source}.",
        "",
        "## Use",
        "",
        f"Input: RGB images of {image_size[0]}x{image_size[1]} pixels, raw values 0-255 (float32); the "
        "model does its own preprocessing. Output: one probability per class, in the order of labels.txt.",
        "",
        "Formats: " + ", ".join({"keras": "`model.keras` (keras.saving.load_model)",
                                 "savedmodel": "`savedmodel/` (TF Serving, tf.saved_model.load; signature "
                                               "`serve_image_bytes` takes encoded images)",
                                 "tflite": "`model.tflite`"}[f] for f in formats) + ".",
        "",
        "## Base model",
        "",
        f"- Base: {base.source}",
        f"- Weights: {base.weights}",
        "",
        "## Data",
        "",
        f"- Dataset: {dataset.name} ({dataset.source}), version {dataset.version}",
    ]
    for key in ("train", "validation", "test"):
        split = dataset.splits.get(key)
        count = counts.get(key)
        if split is not None or count is not None:
            lines.append(f"- {key}: {split if split is not None else 'rest'} ({count if count is not None else '?'}"
                         " images)")
    if card.skipped:
        lines.append(f"- Skipped {card.skipped} unreadable or non-image files")
    lines += ["", "Classes: " + ", ".join(class_names), "", "## Training", "",
              "| stage | trainBase | optimizer | epochs (done/planned) | best val_accuracy | time (s) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for result, spec in zip(card.stages, card.stage_specs):
        opt = spec.optimizer
        best = "-" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.4f}"
        chosen = [c["learning_rate"] for c in result.candidates if c["chosen"]]
        rate = f"{chosen[0]:g} (swept)" if chosen else f"{opt.learning_rate}"
        lines.append(f"| {result.name} | {spec.train_base} | {opt.type} lr {rate} | "
                     f"{result.epochs_completed}/{result.epochs} | {best} | {result.duration_seconds:.1f} |")
    for result in card.stages:
        lines += sweep_table(result)
    runtime = card.runtime
    lines += [f"\n![{caption}]({name})\n\n{caption}." for name, caption in card.pictures.items()]
    lines += ["", f"Seed: {card.seed}. Runtime: mixed precision {runtime.mixed_precision}, XLA {runtime.xla}, "
              f"GPUs {runtime.gpus}, deterministic {runtime.deterministic}, replicas {runtime.replicas}, "
              f"frozen-base feature pass in {runtime.feature_dtype}.", "", "## Metrics", ""]
    lines += [f"- {k}: {v:.4f}" for k, v in card.metrics.items()] or ["- (no validation or test split)"]
    lines += ["", "## Libraries", ""]
    lines += [f"- {k} {v}" for k, v in library_versions().items()]
    return "\n".join(lines) + "\n"
