"""The base: applications (weights by URI, ImageNet from the local cache, no network), cutAt, fromJob."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from trainer_support import REPO, Recorder, job_dict, trainer_env, write_job_file

from headstart.api.exitcodes import ExitCode

FROZEN = [{"name": "head", "trainBase": "none", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}}]


def mobilenet(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))


def folder_dataset(image_folder) -> dict:
    return {"imageFolder": {"uri": str(image_folder)}, "splits": {"validation": 0.25}, "batchSize": 8}


def test_application_with_a_weights_uri_saves_a_model_taking_raw_pixels(image_folder, tmp_path):
    import keras
    import tensorflow as tf

    from headstart.api import FineTuneJob
    from headstart.trainer import run_job

    app = mobilenet()
    weights = tmp_path / "mobilenet.weights.h5"
    app.save_weights(weights)
    job = FineTuneJob.model_validate(job_dict(
        "app", base={"application": "MobileNetV2", "weights": str(weights), "imageSize": [32, 32]},
        dataset=folder_dataset(image_folder), stages=FROZEN, output=str(tmp_path / "unused")))
    out = tmp_path / "out"
    result = run_job(job, str(out))
    assert result.stages[0].feature_cache

    model = keras.saving.load_model(out / "model.keras")
    for a, b in zip(app.get_weights(), model.get_layer("base").get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(2).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    # reference: the application's own preprocess_input, the base, average pooling, the new softmax layer
    pooled = app.predict(keras.applications.mobilenet_v2.preprocess_input(x.copy()), verbose=0).mean(axis=(1, 2))
    kernel, bias = model.get_layer("predictions").get_weights()
    logits = pooled @ kernel + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    loaded = tf.saved_model.load(str(out / "savedmodel"))
    np.testing.assert_allclose(loaded.serve(tf.constant(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_preprocessing_layer_reproduces_preprocess_input_of_each_mode():
    import keras

    from headstart.trainer.base import application_preprocessing

    x = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    for ctor, module in ((keras.applications.ResNet50, keras.applications.resnet50),  # caffe: BGR, mean
                         (keras.applications.DenseNet121, keras.applications.densenet),  # torch
                         (keras.applications.Xception, keras.applications.xception)):  # tf: [-1, 1]
        layer = application_preprocessing(ctor)
        np.testing.assert_allclose(layer(x), module.preprocess_input(x.copy()), rtol=1e-5, atol=1e-4)
    assert application_preprocessing(keras.applications.EfficientNetB0) is None  # preprocesses itself


def imagenet_job(tmp_path, image_folder) -> str:
    doc = job_dict("imagenet", base={"application": "MobileNetV2", "weights": "imagenet", "imageSize": [32, 32]},
                   dataset=folder_dataset(image_folder), stages=FROZEN,
                   output={"uri": str(tmp_path / "out"), "formats": ["keras"]})
    return str(write_job_file(tmp_path / "job.yaml", doc))


def offline(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run the trainer in a network namespace of its own: no traffic can leave this machine."""
    return subprocess.run(["unshare", "--net", sys.executable, "-m", "headstart.trainer", *args],
                          capture_output=True, text=True, env=trainer_env(**env), cwd=REPO, timeout=300)


def test_imagenet_weights_load_from_the_keras_home_cache_without_network(image_folder, tmp_path):
    import h5py
    import keras
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    app = mobilenet(seed=4)
    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    # the exact file keras.applications.MobileNetV2 looks for (alpha 1.0, no top; 224 for small inputs)
    with h5py.File(cache / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", "w") as f:
        save_weights_to_hdf5_group(f, app)
    run = offline(["--job", imagenet_job(tmp_path, image_folder)], KERAS_HOME=str(tmp_path / "keras"))
    assert run.returncode == 0, run.stderr[-3000:]
    model = keras.saving.load_model(tmp_path / "out" / "model.keras")
    for a, b in zip(app.get_weights(), model.get_layer("base").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert "Weights: imagenet" in (tmp_path / "out" / "README.md").read_text()


def test_imagenet_weights_without_network_fail_in_one_line_with_the_fix(image_folder, tmp_path):
    run = offline(["--job", imagenet_job(tmp_path, image_folder)], KERAS_HOME=str(tmp_path / "empty-keras"))
    assert run.returncode == ExitCode.TEMPORARY  # transient: a training Job retries it (the network may come back)
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot download the ImageNet weights of MobileNetV2: no network")
    assert "KERAS_HOME" in last and "baseModel.weights" in last


def test_tfds_download_without_network_fails_in_one_line_with_the_fix(tiny_model_uri, tmp_path):
    doc = job_dict("flowers", base={"uri": tiny_model_uri},
                   dataset={"tfds": {"name": "tf_flowers", "dataDir": str(tmp_path / "tfds")}},
                   output=str(tmp_path / "out"))
    run = offline(["--job", str(write_job_file(tmp_path / "job.yaml", doc))], HEADSTART_DOWNLOAD_RETRIES="0")
    assert run.returncode == ExitCode.TEMPORARY  # transient: a training Job retries it (the network may come back)
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot download TFDS dataset 'tf_flowers': no network")
    assert "dataDir" in last


def test_cut_at_a_missing_layer_fails_before_training(folder_job, tiny_model_uri, tmp_path):
    from headstart.trainer import BaseModelError, run_job

    rec = Recorder()
    with pytest.raises(BaseModelError, match="no layer 'relu3' \\(did you mean 'relu2', 'relu1'"):
        run_job(folder_job(base={"uri": tiny_model_uri, "cutAt": "relu3"}), str(tmp_path / "out"), rec)
    assert rec.names() == ["failed"]


def test_cut_at_takes_that_layers_output(tiny_model_uri, tmp_path):
    from headstart.api import BaseModelSpec
    from headstart.trainer.base import build_base

    base = build_base(BaseModelSpec(uri=tiny_model_uri, cut_at="relu1"), str(tmp_path))
    assert tuple(base.model.output.shape) == (None, 15, 15, 8)
    assert base.model.layers[-1].name == "relu1" and base.image_size == (32, 32)


def test_from_job_starts_from_that_jobs_model(folder_job, tmp_path):
    import keras

    from headstart.trainer import BaseModelError, run_job

    parent_out = tmp_path / "parent"
    tune = [{"name": "tune", "trainBase": "all", "epochs": 1, "optimizer": {"type": "SGD", "learningRate": 0.05}}]
    run_job(folder_job(name="parent", stages=tune, output={"uri": str(parent_out), "formats": ["keras"]}))
    child = folder_job(name="child", base={"fromJob": "parent"}, stages=FROZEN,
                       output={"uri": str(tmp_path / "child"), "formats": ["keras"]})
    result = run_job(child, resolve_from_job=lambda name: str(tmp_path / name))
    parent = keras.saving.load_model(parent_out / "model.keras")
    model = keras.saving.load_model(tmp_path / "child" / "model.keras")
    for a, b in zip(parent.get_layer("base").get_weights(), model.get_layer("base").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert result.model.class_names == ["blue", "green", "red"]
    orphan = folder_job(name="orphan", base={"fromJob": "nobody"})
    with pytest.raises(BaseModelError, match="no complete model at"):
        run_job(orphan, str(tmp_path / "o"), resolve_from_job=lambda name: str(tmp_path / name))

    # the same child again: complete, nothing to do; after the parent is trained anew: trained anew
    again = run_job(child, resolve_from_job=lambda name: str(tmp_path / name))
    assert again.already_complete
    run_job(folder_job(name="parent", stages=tune, seed=7,
                       output={"uri": str(parent_out), "formats": ["keras"], "overwrite": True}))
    after = run_job(child, resolve_from_job=lambda name: str(tmp_path / name))
    assert not after.already_complete and not after.resumed
    retrained = keras.saving.load_model(parent_out / "model.keras")
    model = keras.saving.load_model(tmp_path / "child" / "model.keras")
    for a, b in zip(retrained.get_layer("base").get_weights(), model.get_layer("base").get_weights()):
        np.testing.assert_array_equal(a, b)

    savedmodel_only = folder_job(name="sm-parent", stages=tune,
                                 output={"uri": str(tmp_path / "sm-parent"), "formats": ["savedmodel"]})
    run_job(savedmodel_only)
    needs_keras = folder_job(name="sm-child", base={"fromJob": "sm-parent"}, stages=FROZEN,
                             output={"uri": str(tmp_path / "sm-child"), "formats": ["keras"]})
    with pytest.raises(BaseModelError, match="needs 'keras' in that job's output.formats"):
        run_job(needs_keras, resolve_from_job=lambda name: str(tmp_path / name))


def test_a_users_savedmodel_is_a_base(folder_job, tiny_model_uri, tmp_path):
    import keras
    import tensorflow as tf

    from headstart.trainer import BaseModelError, SpecError, run_job

    exported = tmp_path / "exported"
    keras.saving.load_model(tiny_model_uri).export(str(exported), format="tf_saved_model", verbose=False)
    job = folder_job(base={"uri": str(exported)}, output={"uri": str(tmp_path / "out"), "formats": ["savedmodel"]})
    result = run_job(job)
    assert result.stages[0].feature_cache and result.model.class_names == ["blue", "green", "red"]
    loaded = tf.saved_model.load(str(tmp_path / "out" / "savedmodel"))
    probs = loaded.serve(tf.constant(np.full((2, 32, 32, 3), 100.0, "float32"))).numpy()
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(SpecError, match="cannot be saved as keras"):
        run_job(folder_job(base={"uri": str(exported)}), str(tmp_path / "out2"))
    with pytest.raises(BaseModelError, match="no layers to cut at"):
        run_job(folder_job(base={"uri": str(exported), "cutAt": "conv1"}), str(tmp_path / "out3"))
