"""Outputs: every artifact, written atomically, with a manifest that decides completeness."""

from __future__ import annotations

import json

import numpy as np
import pytest
from trainer_support import Recorder

from headstart.api.output_manifest import Owner

THREE_STAGES = [
    {"name": "head", "trainBase": "none", "epochs": 2, "optimizer": {"type": "Adam", "learningRate": 0.02}},
    {"name": "top", "trainBase": "top:3", "epochs": 1,
     "optimizer": {"type": "SGD", "learningRate": 0.01, "momentum": 0.9,
                   "schedule": {"type": "exponential", "decayRate": 0.5}}},
    {"name": "all", "trainBase": "all", "epochs": 3, "optimizer": {"type": "RMSprop", "learningRate": 1e-4},
     "earlyStopping": {"monitor": "val_accuracy", "patience": 0, "minDelta": 1.0}},
]


def test_a_full_run_writes_every_artifact_and_a_manifest(folder_job, image_folder, tiny_model_uri, tmp_path):
    import keras
    import tensorflow as tf

    from headstart.trainer import outputs, run_job

    job = folder_job(stages=THREE_STAGES, head={"layers": [{"units": 8, "dropout": 0.2}], "dropout": 0.1},
                     dataset={"imageFolder": {"uri": str(image_folder)},
                              "splits": {"validation": 0.25, "test": 0.25}, "batchSize": 4})
    out = tmp_path / "out"
    rec = Recorder()
    result = run_job(job, str(out), rec)

    # stages as scheduled; early stopping ends 'all' after its second epoch (patience 0, min_delta 1.0)
    assert [(s.name, s.epochs_completed, s.feature_cache) for s in result.stages] == [
        ("head", 2, True), ("top", 1, False), ("all", 2, False)]
    assert result.stages[2].stopped_early
    assert set(result.metrics) == {"val_loss", "val_accuracy", "test_loss", "test_accuracy"}
    epochs = [a[0] for n, a in rec.events if n == "epoch_ended"]
    assert [(p.stage, p.epoch, p.epochs) for p in epochs] == [
        ("head", 1, 2), ("head", 2, 2), ("top", 1, 1), ("all", 1, 3), ("all", 2, 3)]
    assert rec.names()[-1] == "completed"

    manifest = json.loads((out / "manifest.json").read_text())
    names = set(manifest["artifacts"])
    assert {"model.keras", "labels.txt", "metrics.json", "README.md", "savedmodel/saved_model.pb"} <= names
    assert any(n.startswith("logs/head/") for n in names) and any(n.startswith("logs/all/") for n in names)
    assert manifest["job"] == "tiny" and manifest["class_names"] == ["blue", "green", "red"]
    assert outputs.verify(str(out)) == []
    assert result.model.sha256 == __import__("hashlib").sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    assert (out / "labels.txt").read_text() == "blue\ngreen\nred\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert [len(s["epochs_history"]) for s in metrics["stages"]] == [2, 1, 2]
    assert metrics["final"]["test_accuracy"] == pytest.approx(result.metrics["test_accuracy"])
    card = (out / "README.md").read_text()
    for words in ("## Training", "| top | top:3 |", "Seed: 42", "tensorflow ", "test_accuracy", "Weights: its own"):
        assert words in card

    # The saved model takes raw pixels; the SavedModel computes the same; BatchNormalization never moved.
    model = keras.saving.load_model(out / "model.keras")
    x = np.random.default_rng(0).uniform(0, 255, (5, 32, 32, 3)).astype("float32")
    keras_out = model.predict(x, verbose=0)
    loaded = tf.saved_model.load(str(out / "savedmodel"))
    served = loaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(served, keras_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras_out.sum(axis=1), 1.0, rtol=1e-5)
    original = keras.saving.load_model(tiny_model_uri)
    for name in ("bn1", "bn2"):
        for a, b in zip(original.get_layer(name).get_weights(), model.get_layer("base").get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(original.get_layer("conv1").get_weights()[0],
                              model.get_layer("base").get_layer("conv1").get_weights()[0])

    # Checkpoints keep the stage boundaries only.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "stage-00-end-head.weights.npz", "stage-01-end-top.weights.npz", "stage-02-end-all.weights.npz",
        "state.json"]


def test_outputs_to_an_fsspec_uri(folder_job, tmp_path):
    import fsspec

    from headstart.trainer import outputs, run_job

    job = folder_job(output={"uri": "memory://models/tiny", "formats": ["keras"]})
    result = run_job(job)
    fs = fsspec.filesystem("memory")
    assert fs.exists("/models/tiny/manifest.json") and fs.exists("/models/tiny/model.keras")
    assert result.model.uri == "memory://models/tiny"
    assert outputs.verify("memory://models/tiny") == []


def test_another_jobs_model_is_refused_unless_overwrite(folder_job, tmp_path):
    from headstart.trainer import OutputError, run_job

    out = str(tmp_path / "out")
    one_epoch = [{"name": "head", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}}]
    run_job(folder_job(name="first", stages=one_epoch, output={"uri": out, "formats": ["keras"]}))
    rec = Recorder()
    with pytest.raises(OutputError, match="already holds the complete model of first.*overwrite"):
        run_job(folder_job(name="second", stages=one_epoch, output={"uri": out, "formats": ["keras"]}),
                reporter=rec)
    assert rec.names() == ["failed"]
    # the same job again: already complete, nothing trains
    again = run_job(folder_job(name="first", stages=one_epoch, output={"uri": out, "formats": ["keras"]}))
    assert again.already_complete and again.stages[0].epochs_completed == 1
    result = run_job(folder_job(name="second", stages=one_epoch,
                                output={"uri": out, "formats": ["keras"], "overwrite": True}))
    assert not result.already_complete
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["job"] == "second"
    # overwrite also retrains a complete model of the same job and spec
    rec = Recorder()
    again = run_job(folder_job(name="second", stages=one_epoch,
                               output={"uri": out, "formats": ["keras"], "overwrite": True}), reporter=rec)
    assert not again.already_complete and not again.resumed and "epoch_ended" in rec.names()


def _owned(job, namespace: str, uid: str):
    """``job`` as the operator hands it on: its namespace and uid in its metadata."""
    return job.model_copy(update={"metadata": job.metadata.model_copy(update={"namespace": namespace, "uid": uid})})


def test_a_model_belongs_to_its_jobs_namespace_name_and_uid(folder_job, tmp_path):
    """The same name recreated (another uid) or in another namespace never adopts a model: OutputConflict
    naming the owner, the model untouched; with overwrite it trains and says whose model it replaces."""
    from headstart.trainer import OutputConflictError, run_job

    out = str(tmp_path / "out")
    one_epoch = [{"name": "head", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}}]

    def job(namespace: str, uid: str, **output):
        return _owned(folder_job(name="flowers", stages=one_epoch, output={"uri": out, "formats": ["keras"],
                                                                           **output}), namespace, uid)

    run_job(job("team-a", "uid-1"))
    manifest = (tmp_path / "out" / "manifest.json").read_bytes()
    assert json.loads(manifest)["owner"] == {"namespace": "team-a", "name": "flowers", "uid": "uid-1"}
    for namespace, uid in (("team-a", "uid-2"), ("team-b", "uid-3")):
        rec = Recorder()
        with pytest.raises(OutputConflictError, match=r"complete model of team-a/flowers \(uid uid-1\)"):
            run_job(job(namespace, uid), reporter=rec)
        assert rec.names() == ["failed"]
        assert (tmp_path / "out" / "manifest.json").read_bytes() == manifest  # untouched
    assert run_job(job("team-a", "uid-1")).already_complete  # its own
    rec = Recorder()
    result = run_job(job("team-a", "uid-2", overwrite=True), reporter=rec)
    assert not result.already_complete
    said = [args[0] for name, args in rec.events if name == "message"]
    assert any("overwriting the model of team-a/flowers (uid uid-1)" in line for line in said), said
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["owner"]["uid"] == "uid-2"


def test_an_interrupted_write_never_looks_complete(tmp_path):
    from headstart.trainer import OutputError, outputs

    out = tmp_path / "out"
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "labels.txt").write_text("a\nb\n")
    good = {"labels.txt": str(staged / "labels.txt")}
    outputs.publish(str(out), good, owner=Owner("j"), spec_sha256="x", formats=["keras"], class_names=["a", "b"])
    assert outputs.existing(str(out)) is not None
    outputs.invalidate(str(out))  # a new write starts by removing the manifest
    assert outputs.existing(str(out)) is None
    broken = {**good, "model.keras": str(staged / "missing.keras")}
    with pytest.raises(OutputError, match="cannot write the outputs"):
        outputs.publish(str(out), broken, owner=Owner("j"), spec_sha256="x", formats=["keras"],
                        class_names=["a", "b"])
    assert outputs.existing(str(out)) is None
    assert not (out / "model.keras").exists()
    (out / "labels.txt").write_text("tampered\n")
    outputs.publish(str(out), good, owner=Owner("j"), spec_sha256="x", formats=["keras"], class_names=["a", "b"])
    (out / "labels.txt").write_text("tampered\n")
    assert outputs.verify(str(out)) == ["labels.txt"]


def test_tflite_format_takes_raw_pixels_too(folder_job, tmp_path):
    import keras
    import tensorflow as tf

    from headstart.trainer import run_job

    one = [{"name": "head", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}}]
    run_job(folder_job(stages=one, output={"uri": str(tmp_path / "out"), "formats": ["keras", "tflite"]}))
    out = tmp_path / "out"
    assert not (out / "savedmodel").exists()  # only the formats asked for
    interpreter = tf.lite.Interpreter(model_path=str(out / "model.tflite"))
    interpreter.allocate_tensors()
    x = np.random.default_rng(3).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = keras.saving.load_model(out / "model.keras").predict(x, verbose=0)
    np.testing.assert_allclose(lite, expected, rtol=1e-4, atol=1e-5)
    assert "model.tflite" in json.loads((out / "manifest.json").read_text())["artifacts"]


def test_an_output_that_cannot_be_written_fails_before_any_data_is_read(folder_job, tmp_path):
    """A file where the output folder should be: permanent (exit 13, OutputUnwritable), found before the
    dataset is opened (here it does not even exist), and nothing is left behind."""
    from headstart.api.exitcodes import ExitCode, is_permanent
    from headstart.trainer import run_job
    from headstart.trainer.errors import OutputUnwritableError

    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder\n")
    rec = Recorder()
    job = folder_job(dataset={"imageFolder": {"uri": str(tmp_path / "no-such-dataset")}},
                     output={"uri": str(blocker / "model"), "formats": ["keras"]})
    with pytest.raises(OutputUnwritableError, match=r"output.uri: .*taken/model cannot be written") as caught:
        run_job(job, reporter=rec)
    assert caught.value.exit_code == ExitCode.OUTPUT_UNWRITABLE == 13 and is_permanent(caught.value.exit_code)
    assert rec.names() == ["failed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"] and blocker.read_text() == "a file, not a folder\n"


def test_the_write_probe_leaves_nothing_behind(tmp_path):
    from headstart.trainer import outputs

    outputs.probe_writable(str(tmp_path / "out"))
    assert list((tmp_path / "out").iterdir()) == []
