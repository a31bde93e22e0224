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
    fn = features.extractor(via_features.features)
    feats, labels = features.extract(fn, via_features.features, data.batches(ds.splits["train"], 4))
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
