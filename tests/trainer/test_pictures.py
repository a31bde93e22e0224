"""The model card's pictures: curves.png across every stage and confusion.png on the test (else validation)
split, in the card and the manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from trainer_support import make_job

TWO_STAGES = [
    {"name": "head", "trainBase": "none", "epochs": 3, "optimizer": {"type": "Adam", "learningRate": 0.02}},
    {"name": "finetune", "trainBase": "top:3", "epochs": 2, "optimizer": {"type": "SGD", "learningRate": 0.01}},
]


def _png(path) -> np.ndarray:
    import tensorflow as tf

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return tf.io.decode_png(data).numpy()


def test_a_run_draws_its_curves_and_confusion_into_the_card_and_manifest(tiny_model_uri, image_folder, tmp_path):
    from headstart.trainer import run_job

    out = tmp_path / "out"
    job = make_job(base={"uri": tiny_model_uri}, stages=TWO_STAGES, output=str(out),
                   dataset={"imageFolder": {"uri": str(image_folder)},
                            "splits": {"validation": 0.25, "test": 0.25}, "batchSize": 4})
    result = run_job(job, str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"curves.png", "confusion.png"} <= set(manifest["artifacts"])
    assert manifest["pictures"] == ["confusion.png", "curves.png"]
    assert result.model.pictures == ["confusion.png", "curves.png"]
    card = (out / "README.md").read_text()
    assert "](curves.png)" in card and "](confusion.png)" in card and "on the test split" in card
    curves, confusion = _png(out / "curves.png"), _png(out / "confusion.png")
    assert curves.shape[:2] == (400, 1100) and confusion.shape[0] == confusion.shape[1]
    assert curves.std() > 10 and confusion.std() > 10  # drawn, not blank


@pytest.mark.parametrize("splits", [{}, {"validation": 0.25}])
def test_the_confusion_falls_back_to_validation_and_without_it_there_are_curves_only(
        folder_job, image_folder, tmp_path, splits):
    from headstart.trainer import run_job

    out = tmp_path / "out"
    job = folder_job(output=str(out), dataset={"imageFolder": {"uri": str(image_folder)}, "splits": splits,
                                               "batchSize": 8})
    run_job(job, str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    card = (out / "README.md").read_text()
    if splits:
        assert manifest["pictures"] == ["confusion.png", "curves.png"] and "on the validation split" in card
    else:
        assert "curves.png" in manifest["artifacts"] and "confusion.png" not in manifest["artifacts"]
        assert manifest["pictures"] == ["curves.png"] and "confusion" not in card
    again = run_job(job, str(out))  # the complete model, returned as it is: its pictures from the manifest
    assert again.already_complete and again.model.pictures == manifest["pictures"]


def test_the_confusion_matrix_counts_true_against_predicted():
    from headstart.trainer.plots import confusion_matrix

    counts = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_the_curves_put_every_stage_on_one_epoch_axis():
    from headstart.trainer.plots import _across_stages
    from headstart.trainer.reporting import StageResult

    stages = [StageResult("head", 0, 3, 3, 0.5, 1.0, history={"loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 1.5]}),
              StageResult("all", 1, 4, 2, 0.6, 1.0, stopped_early=True,
                          history={"loss": [0.9, 0.8], "val_loss": [1.4, 1.3]})]
    assert _across_stages(stages, "loss") == ([1, 2, 3, 4, 5], [3.0, 2.0, 1.0, 0.9, 0.8])
    assert _across_stages(stages, "val_accuracy") == ([], [])


@pytest.mark.parametrize("classes", [3, 60])
def test_the_confusion_picture_reads_at_any_number_of_classes(tmp_path, classes):
    from headstart.trainer import plots

    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, 200)
    counts = plots.confusion_matrix(labels, np.where(rng.random(200) < 0.7, labels, 0), classes)
    plots.confusion(counts, [f"class-{i}" for i in range(classes)], "validation", str(tmp_path / "c.png"))
    image = _png(tmp_path / "c.png")
    assert image.shape[0] == image.shape[1] and 400 <= image.shape[0] <= 2000
