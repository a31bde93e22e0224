"""The pretrained base: a keras.applications model, a user's own model, or another job's output.

Applications get their own ``preprocess_input`` inside the model, so the trained model takes raw RGB
pixel values 0-255. A user's own model is taken as it is.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headstart.api import BaseModelSpec, storage

from .errors import BaseModelError, WeightsDownloadError, first_line, looks_like_network_failure
from .modelcard import BaseCard

BASE_NAME = "base"
PREPROCESSING_NAME = "preprocessing"
SAVEDMODEL_NAME = "savedmodel"


@dataclass
class Base:
    model: Any
    """The base as a keras Model named 'base'; a stage's trainBase applies to its layers."""
    preprocessing: Any | None
    """A frozen layer mapping raw 0-255 RGB to what the base expects, or None."""
    image_size: tuple[int, int]
    card: BaseCard
    """What the model card says about the base."""
    self_contained: bool = True
    """False for a plain SavedModel base: a .keras file would only reference the SavedModel's files."""


def build_base(spec: BaseModelSpec, workdir: str,
               resolve_from_job: Callable[[str], str] | None = None) -> Base:
    if spec.application is not None:
        return _application(spec, workdir)
    if spec.uri is not None:
        model = _load_user_model(spec.uri, workdir)
        saved_model = model.name == SAVEDMODEL_NAME
        if saved_model and spec.cut_at is not None:
            raise BaseModelError("baseModel.cutAt: a plain SavedModel has no layers to cut at")
        base = _cut(model, spec.cut_at)
        size = _image_size(base, spec)
        return Base(base, None, size, BaseCard(f"model {spec.uri}", "its own"),
                    self_contained=not saved_model)
    assert spec.from_job is not None
    if resolve_from_job is None:
        raise BaseModelError(f"baseModel.fromJob {spec.from_job!r}: no way to find that job's output here")
    uri = resolve_from_job(spec.from_job)
    return _from_job(spec, uri, workdir)


def _application(spec: BaseModelSpec, workdir: str) -> Base:
    import keras

    name = spec.application
    assert name is not None
    ctor = getattr(keras.applications, name, None)
    if ctor is None:
        raise BaseModelError(f"keras.applications has no model {name!r}")
    size = spec.resolved_image_size()
    assert size is not None
    weights: str | None
    if spec.weights == "none":
        weights = None
    elif spec.weights == "imagenet":
        weights = "imagenet"
    else:
        weights = _fetch_weights(spec.weights, workdir)
    try:
        model = ctor(include_top=False, weights=weights, input_shape=(size[0], size[1], 3))
    except Exception as exc:  # keras raises plain Exception for a failed download
        if weights == "imagenet" and looks_like_network_failure(exc):
            raise WeightsDownloadError(
                f"cannot download the ImageNet weights of {name}: no network ({first_line(exc)}). "
                "Give a local copy: put the weights file in $KERAS_HOME/models/ (default ~/.keras/models/) "
                "or set baseModel.weights to the URI of a weights file") from exc
        raise BaseModelError(f"cannot build {name} with weights {spec.weights!r}: {first_line(exc)}") from exc
    preprocessing = application_preprocessing(ctor)
    base = _cut(model, spec.cut_at)
    return Base(base, preprocessing, size, BaseCard(f"keras.applications.{name}", spec.weights))


def _fetch_weights(uri: str, workdir: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if not name.endswith((".h5", ".hdf5", ".keras")):
        raise BaseModelError(f"baseModel.weights {uri!r}: expected a .weights.h5, .h5 or .keras file")
    local = os.path.join(workdir, "weights", name)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    try:
        storage.download(uri, local)
    except FileNotFoundError as exc:
        raise BaseModelError(f"baseModel.weights: no file at {uri}") from exc
    except Exception as exc:
        raise BaseModelError(f"baseModel.weights: cannot read {uri}: {first_line(exc)}") from exc
    return local


def application_preprocessing(ctor: Any) -> Any | None:
    """The application's own preprocess_input as a frozen Dense layer over the channels.

    Every keras.applications preprocess_input is affine per pixel (scale, shift, maybe RGB->BGR), so it
    is recovered exactly from probes and kept as a built-in layer: the saved model loads anywhere without
    custom code. None when preprocess_input is the identity (the model preprocesses itself).
    """
    import keras
    import numpy as np

    module = importlib.import_module(ctor.__module__)
    fn = getattr(module, "preprocess_input", None)
    if fn is None:
        return None
    probe = np.array([[[[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]]], dtype="float32")
    out = np.asarray(fn(probe.copy()), dtype="float64")[0, 0]
    bias = out[0]
    kernel = (out[1:] - bias) / 255.0  # row i: response to input channel i
    if np.allclose(kernel, np.eye(3), atol=1e-7) and np.allclose(bias, 0.0, atol=1e-7):
        return None
    check = np.random.default_rng(0).uniform(0, 255, size=(1, 4, 4, 3)).astype("float32")
    expected = np.asarray(fn(check.copy()), dtype="float64")
    if not np.allclose(check.astype("float64") @ kernel + bias, expected, atol=1e-3, rtol=1e-4):
        raise BaseModelError(f"{ctor.__name__}: its preprocess_input is not a per-pixel affine map")
    layer = keras.layers.Dense(3, name=PREPROCESSING_NAME, trainable=False, dtype="float32")
    layer.build((None, None, None, 3))
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return layer


def _load_user_model(uri: str, workdir: str) -> Any:
    import keras

    fs, path = storage.fs_path(uri)
    if not fs.exists(path):
        raise BaseModelError(f"baseModel.uri: nothing at {uri}")
    name = path.rstrip("/").rsplit("/", 1)[-1] or "model"
    local = os.path.join(workdir, "user-model", name)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    storage.download(uri, local)
    if os.path.isdir(local):
        if not os.path.exists(os.path.join(local, "saved_model.pb")):
            raise BaseModelError(f"baseModel.uri {uri}: a folder without saved_model.pb is not a SavedModel")
        return _saved_model(local, uri)
    try:
        return keras.saving.load_model(local, compile=False)
    except Exception as exc:
        raise BaseModelError(f"baseModel.uri {uri}: cannot load the model: {first_line(exc)}") from exc


def _saved_model(local: str, uri: str) -> Any:
    """A plain TF SavedModel, wrapped as an inference-only layer (it cannot train nor be cut)."""
    import keras
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(local)
        signature = loaded.signatures["serving_default"]
        (spec,) = signature.structured_input_signature[1].values()
        layer = keras.layers.TFSMLayer(local, call_endpoint="serving_default", trainable=False)
    except Exception as exc:
        raise BaseModelError(f"baseModel.uri {uri}: cannot load the SavedModel: {first_line(exc)}") from exc
    inputs = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype.name)
    out = layer(inputs)
    if isinstance(out, dict):
        if len(out) != 1:
            raise BaseModelError(f"baseModel.uri {uri}: the SavedModel has {len(out)} outputs; need one")
        out = next(iter(out.values()))
    return keras.Model(inputs, out, name=SAVEDMODEL_NAME)


def _cut(model: Any, cut_at: str | None) -> Any:
    import keras

    if cut_at is None:
        output = model.outputs[0] if len(model.outputs) == 1 else None
        if output is None:
            raise BaseModelError(f"the base has {len(model.outputs)} outputs; set cutAt to pick one layer")
    else:
        names = [layer.name for layer in model.layers]
        if cut_at not in names:
            close = difflib.get_close_matches(cut_at, names, n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise BaseModelError(f"baseModel.cutAt: the base has no layer {cut_at!r}{hint}")
        output = model.get_layer(cut_at).output
    try:
        return keras.Model(model.inputs, output, name=BASE_NAME)
    except Exception as exc:
        raise BaseModelError(f"cannot cut the base at {cut_at!r}: {first_line(exc)}") from exc


def _image_size(base: Any, spec: BaseModelSpec) -> tuple[int, int]:
    shape = tuple(base.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise BaseModelError(f"the base takes input of shape {shape}; need images (batch, height, width, 3)")
    wanted = spec.resolved_image_size()
    fixed = (shape[1], shape[2]) if shape[1] is not None and shape[2] is not None else None
    if wanted is not None and fixed is not None and tuple(wanted) != fixed:
        raise BaseModelError(f"baseModel.imageSize {list(wanted)} differs from the model's input "
                             f"{list(fixed)}")
    size = wanted or fixed
    if size is None:
        raise BaseModelError("the model's input size is not fixed; set baseModel.imageSize")
    return (int(size[0]), int(size[1]))


def _from_job(spec: BaseModelSpec, uri: str, workdir: str) -> Base:
    import keras

    if not storage.exists(storage.join(uri, "manifest.json")):
        raise BaseModelError(f"baseModel.fromJob {spec.from_job!r}: no complete model at {uri} "
                             "(run that job first)")
    if not storage.exists(storage.join(uri, "model.keras")):
        raise BaseModelError(f"baseModel.fromJob {spec.from_job!r}: {uri} has no model.keras; continuing "
                             "from a job needs 'keras' in that job's output.formats")
    model = _load_user_model(storage.join(uri, "model.keras"), workdir)
    try:
        previous = model.get_layer(BASE_NAME)
    except ValueError as exc:
        raise BaseModelError(f"baseModel.fromJob {spec.from_job!r}: {uri} is not a headstart model") from exc
    preprocessing = None
    if PREPROCESSING_NAME in [layer.name for layer in model.layers]:
        old = model.get_layer(PREPROCESSING_NAME)
        preprocessing = keras.layers.Dense(3, name=PREPROCESSING_NAME, trainable=False, dtype="float32")
        preprocessing.build((None, None, None, 3))
        preprocessing.set_weights(old.get_weights())
    base = _cut(previous, spec.cut_at)
    shape = tuple(model.inputs[0].shape)
    size = (int(shape[1]), int(shape[2]))
    if spec.image_size is not None and tuple(spec.image_size) != size:
        raise BaseModelError(f"baseModel.imageSize {spec.image_size} differs from job "
                             f"{spec.from_job!r}'s input {list(size)}")
    return Base(base, preprocessing, size, BaseCard(f"job {spec.from_job} ({uri})", "fine-tuned"))
