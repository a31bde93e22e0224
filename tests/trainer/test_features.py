"""The feature cache computes the same model as training end to end."""

from __future__ import annotations

import numpy as np

from headstart.api import BaseModelSpec, DatasetSpec, HeadSpec, StageSpec


def test_feature_cache_trains_the_same_model_as_end_to_end(tiny_model_uri, image_folder, tmp_path):
    import keras

    from headstart.trainer import data, features
    from headstart.trainer.base import build_base
    from headstart.trainer.head import assemble
    from headstart.trainer.stages import compile_for_stage, set_trainable

    spec = DatasetSpec(image_folder={"uri": str(image_folder)}, splits={"validation": 0.25}, batch_size=4)
    stage = StageSpec(name="head", epochs=3, optimizer={"type": "SGD", "learningRate": 0.05, "momentum": 0.5})
    head = HeadSpec(layers=[{"units": 8}], pooling="max")
    keras.utils.set_random_seed(5)
    ds = data.load(spec, (32, 32), seed=5, workdir=str(tmp_path))
    via_features = assemble(build_base(BaseModelSpec(uri=tiny_model_uri), str(tmp_path / "a")), head, 3)
    end_to_end = assemble(build_base(BaseModelSpec(uri=tiny_model_uri), str(tmp_path / "b")), head, 3)
    end_to_end.model.set_weights(via_features.model.get_weights())

    set_trainable(via_features.base, stage.trainable)
    compile_for_stage(via_features.head, stage, xla=False)
    cached = features.compute(via_features.features, {"train": ds.splits["train"]}, lambda d: data.batches(d, 4),
                              cached=True)
    feats, labels = cached["train"]
    assert feats.shape == (18, 16) and labels.shape == (18,)
    keras.utils.set_random_seed(11)
    via_features.head.fit(features.dataset(feats, labels, 4, shuffle_buffer=32, seed=5), epochs=3, verbose=0)

    set_trainable(end_to_end.base, stage.trainable)
    compile_for_stage(end_to_end.model, stage, xla=False)
    keras.utils.set_random_seed(11)
    end_to_end.model.fit(data.batches(ds.splits["train"], 4, shuffle_buffer=32, seed=5), epochs=3, verbose=0)

    for a, b in zip(via_features.model.get_weights(), end_to_end.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    images = np.concatenate([x for x, _ in data.batches(ds.splits["validation"], 8).as_numpy_iterator()])
    full = via_features.model.predict(images, verbose=0)
    np.testing.assert_allclose(full, end_to_end.model.predict(images, verbose=0), rtol=1e-4, atol=1e-5)
    on_features = via_features.head.predict(via_features.features.predict(images, verbose=0), verbose=0)
    np.testing.assert_allclose(full, on_features, rtol=1e-5, atol=1e-6)
    # The base did not move: its weights are still the file's.
    original = keras.saving.load_model(tiny_model_uri)
    for a, b in zip(original.get_weights(), via_features.base.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_feature_cache_only_for_a_frozen_base_without_augmentation():
    from headstart.api import AugmentationSpec
    from headstart.trainer import data, features

    frozen = StageSpec(name="a", epochs=1, optimizer={"type": "SGD", "learningRate": 0.1})
    tuned = StageSpec(name="b", train_base="top:2", epochs=1, optimizer={"type": "SGD", "learningRate": 0.1})
    flip = data.augmentation(AugmentationSpec(flip="horizontal"), 1)
    assert features.applies(frozen, None)
    assert not features.applies(frozen, flip)
    assert not features.applies(tuned, None)


def test_the_pass_decodes_while_tracing_and_gives_every_example_in_order(tiny_model_uri, image_folder, tmp_path):
    """compute() over cached splits (filled while the function is traced) and over uncached ones gives what
    a plain forward pass over the same images gives, in order, for every split."""
    from headstart.trainer import data, features
    from headstart.trainer.base import build_base
    from headstart.trainer.head import assemble

    spec = DatasetSpec(image_folder={"uri": str(image_folder)}, splits={"validation": 0.25}, batch_size=5)
    ds = data.load(spec, (32, 32), seed=3, workdir=str(tmp_path))
    model = assemble(build_base(BaseModelSpec(uri=tiny_model_uri), str(tmp_path / "m")), HeadSpec(), 3)
    splits = {k: v for k, v in ds.splits.items() if k != "test"}
    expected = {}
    for name, split in splits.items():
        pairs = list(data.batches(split, 5).as_numpy_iterator())
        expected[name] = (np.concatenate([model.features(x, training=False).numpy() for x, _ in pairs]),
                          np.concatenate([y for _, y in pairs]))
    for cached in (True, False):
        got = features.compute(model.features, splits, lambda d: data.batches(d, 5), cached=cached)
        assert set(got) == {"train", "validation"}
        for name, (feats, labels) in got.items():
            np.testing.assert_array_equal(labels, expected[name][1])
            np.testing.assert_allclose(feats, expected[name][0], rtol=1e-5, atol=1e-6)
            assert feats.dtype == np.float32
    # an empty split gives empty arrays of the right shape
    empty = features.compute(model.features, {"train": splits["train"].take(0)}, lambda d: data.batches(d, 5),
                             cached=False)
    assert empty["train"][0].shape == (0, 16) and empty["train"][1].shape == (0,)


def test_bfloat16_feature_pass_is_close_and_leaves_the_model_in_float32(tiny_model_uri, tmp_path):
    import keras
    import tensorflow as tf

    from headstart.trainer import features
    from headstart.trainer.base import build_base
    from headstart.trainer.head import assemble

    model = assemble(build_base(BaseModelSpec(uri=tiny_model_uri), str(tmp_path)), HeadSpec(), 3)
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32"))
    full = features.extractor(model.features)(x).numpy()
    fn = features.extractor(model.features, dtype="bfloat16")
    graph_ops = {op.type for op in fn.get_concrete_function().graph.get_operations()}
    half = fn(x).numpy()
    assert half.dtype == np.float32 and "Conv2D" in graph_ops
    assert any(t.dtype == tf.bfloat16 for op in fn.get_concrete_function().graph.get_operations()
               if op.type == "Conv2D" for t in op.outputs), "the convolutions run in bfloat16"
    np.testing.assert_allclose(half, full, rtol=0.05, atol=0.05 * np.abs(full).max())
    assert not np.array_equal(half, full)
    # the layers are float32 again: training and the saved model are unchanged

    def layers(m):
        for layer in m.layers:
            yield layer
            yield from layers(layer) if isinstance(layer, keras.Model) else ()

    assert {layer.dtype_policy.name for layer in layers(model.model)} == {"float32"}
    np.testing.assert_array_equal(model.features(x, training=False).numpy(), full)
