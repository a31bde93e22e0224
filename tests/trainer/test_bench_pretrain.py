"""bench/pretrain.py and bench/floor.py's BatchNormalization statistics: the trainer benchmark's pretrained base
is made once per recipe, written atomically into the cache, and loads into the application as its weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from trainer_support import REPO


@pytest.fixture
def bench_package(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path / "cache"))


def test_batch_norm_statistics_become_those_of_the_batch(bench_package):
    import keras

    from bench.floor import set_batch_norm_statistics

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, name="conv")
    norm = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(inputs, norm(conv(inputs)))
    x = np.random.default_rng(0).uniform(0, 5, (16, 8, 8, 3)).astype("float32")
    set_batch_norm_statistics(model, x)
    fmap = keras.Model(inputs, conv.output)(x).numpy()
    np.testing.assert_allclose(norm.moving_mean.numpy(), fmap.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(), fmap.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    assert norm.momentum == 0.99  # given back


def test_pretrained_base_is_made_once_per_recipe_and_loads_as_application_weights(bench_package):
    import keras
    from keras.applications import resnet50

    from bench.pretrain import cache_dir, pretrained

    ctor, preprocess = keras.applications.ResNet50, resnet50.preprocess_input
    recipe = dict(per_class=3, epochs=1, learning_rate=1e-3, seed=1)
    path, info = pretrained("ResNet50", ctor, preprocess, 32, (40, 30), **recipe)
    assert info["cached"] is False
    assert (info["source_train_images"], info["source_val_images"]) == (6, 3)
    assert info["recipe"]["source_classes"] == ["rose", "slate", "violet"]
    weights = Path(path)
    info_name = weights.name.removesuffix(".weights.h5") + ".json"
    assert weights.parent == cache_dir()  # nothing else left there: no temporary folder
    assert sorted(p.name for p in cache_dir().iterdir()) == sorted([weights.name, info_name])
    mtime = weights.stat().st_mtime_ns

    again, info2 = pretrained("ResNet50", ctor, preprocess, 32, (40, 30), **recipe)
    assert (again, info2["cached"], info2["seconds"]) == (path, True, info["seconds"])
    assert weights.stat().st_mtime_ns == mtime

    base = ctor(weights=path, include_top=False, input_shape=(32, 32, 3))
    variance = base.get_layer("conv1_bn").moving_variance.numpy()
    assert not np.allclose(variance, 1.0)  # the statistics of the source images, not the initial ones

    other, info3 = pretrained("ResNet50", ctor, preprocess, 32, (40, 30), **{**recipe, "epochs": 2})
    assert other != path and info3["cached"] is False


def test_bench_refuses_target_classes_that_overlap_the_source_task(bench_package, capsys):
    from bench.trainer import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args(["--classes", "4"])
    assert exc.value.code == 2
    assert "--base pretrained: --classes must be at most 3" in capsys.readouterr().err
    assert parse_args(["--classes", "4", "--base", "calibrated"]).classes == 4
    with pytest.raises(SystemExit):
        parse_args(["--finetune-lr", "0"])
    assert "--finetune-lr must be above 0" in capsys.readouterr().err
