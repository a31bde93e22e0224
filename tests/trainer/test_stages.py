"""What trains in each stage, and BatchNormalization kept in inference mode throughout."""

from __future__ import annotations

import numpy as np
import pytest

from headstart.api import BaseModelSpec, HeadSpec, TrainBase


@pytest.fixture
def assembled(tiny_model_uri, tmp_path):
    return assemble_tiny(tiny_model_uri, tmp_path)


def assemble_tiny(tiny_model_uri, tmp_path):
    import keras

    from headstart.trainer.base import build_base
    from headstart.trainer.head import assemble

    keras.utils.set_random_seed(3)
    base = build_base(BaseModelSpec(uri=tiny_model_uri), str(tmp_path))
    return assemble(base, HeadSpec(layers=[{"units": 8, "dropout": 0.1}]), 3)


def trainable_layers(asm) -> set[str]:
    names = set()
    for layer in asm.base.layers:
        if layer.trainable_weights:
            names.add(layer.name)
    return names


@pytest.mark.parametrize("train_base, expected", [
    ("none", set()),
    ("all", {"conv1", "conv2"}),  # BatchNormalization layers stay frozen (inference mode)
    ("top:3", {"conv2"}),  # the top 3 layers: conv2, bn2, relu2
    ("from:relu1", {"conv2"}),
    ("from:conv1", {"conv1", "conv2"}),
])
def test_train_base_sets_what_trains(assembled, train_base, expected):
    from headstart.trainer.stages import set_trainable

    for earlier in ("top:1", "all", "none", "from:relu2"):  # earlier stages' settings must not leak
        set_trainable(assembled.base, TrainBase.parse(earlier))
    set_trainable(assembled.base, TrainBase.parse(train_base))
    assert trainable_layers(assembled) == expected
    head = {w.path.split("/")[0] for w in assembled.model.trainable_weights} - {"base"}
    assert {"head_dense_1", "predictions"} <= head


@pytest.mark.parametrize("train_base", ["all", "from:conv2"])
def test_training_keeps_batchnorm_statistics_and_frozen_layers(assembled, train_base):
    import keras

    from headstart.api import StageSpec
    from headstart.trainer.stages import compile_for_stage, set_trainable

    stage = StageSpec(name="s", train_base=train_base, epochs=2,
                      optimizer={"type": "SGD", "learningRate": 0.1})
    set_trainable(assembled.base, stage.trainable)
    compile_for_stage(assembled.model, stage, xla=False)
    before = {v.path: v.numpy().copy() for v in assembled.base.weights}
    x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 3
    assembled.model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    after = {v.path: v.numpy() for v in assembled.base.weights}
    for path in before:
        same = np.array_equal(before[path], after[path])
        if "bn" in path:
            assert same, f"{path}: BatchNormalization must stay in inference mode, untouched"
        elif path.startswith(("base/conv1", "tiny/conv1")) or "conv1" in path:
            assert same == (train_base != "all"), path
        elif "conv2" in path:
            assert not same, f"{path} should train"
    assert isinstance(assembled.base.get_layer("bn1"), keras.layers.BatchNormalization)
    # and in inference mode: the model computes the same in training and inference mode
    np.testing.assert_allclose(assembled.features(x, training=True), assembled.features(x, training=False),
                               rtol=1e-6)


def test_stage_naming_missing_layers_is_an_error_before_training(assembled):
    from headstart.api import StageSpec
    from headstart.trainer import SpecError
    from headstart.trainer.stages import check_stage

    opt = {"type": "SGD", "learningRate": 0.1}
    with pytest.raises(SpecError, match="no such layer.*'conv2'"):
        check_stage(StageSpec(name="s", train_base="from:conv3", epochs=1, optimizer=opt), assembled.base)
    with pytest.raises(SpecError, match="top:99 but the base has 7 layers"):
        check_stage(StageSpec(name="s", train_base="top:99", epochs=1, optimizer=opt), assembled.base)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_a_stage_traces_its_train_and_test_steps_once(tiny_model_uri, tmp_path, policy):
    """Keras creates unbuilt optimizer and metric variables inside the first trace of a step, and a
    tf.function that created variables is traced again: compile_for_stage and compile_model build them
    first, so fit traces each step once and evaluate after a new compile once more."""
    import keras

    from headstart.api import StageSpec
    from headstart.trainer.stages import compile_for_stage, compile_model, set_trainable

    keras.mixed_precision.set_global_policy(policy)  # the conftest restores float32
    assembled = assemble_tiny(tiny_model_uri, tmp_path)
    model = assembled.model
    stage = StageSpec(name="s", train_base="all", epochs=2, optimizer={"type": "Adam", "learningRate": 1e-3})
    set_trainable(assembled.base, stage.trainable)
    optimizer = compile_for_stage(model, stage, xla=False)
    assert (type(model.optimizer).__name__ == "LossScaleOptimizer") == (policy == "mixed_float16")
    variables = len(model.optimizer.variables)
    traces: dict[str, int] = {"train_step": 0, "test_step": 0}
    for step in traces:
        original = getattr(model, step)

        def counted(data, step=step, original=original):
            traces[step] += 1  # runs only while tracing
            return original(data)

        setattr(model, step, counted)
    x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 3
    history = model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=8, verbose=0)
    assert traces == {"train_step": 1, "test_step": 1}
    assert len(model.optimizer.variables) == variables  # built once, before fit
    assert 0.0 <= history.history["accuracy"][0] <= 1.0
    compile_model(model, optimizer, xla=False)  # as StageTrainer.evaluate compiles
    values = model.evaluate(x, y, verbose=0, return_dict=True)
    assert traces == {"train_step": 1, "test_step": 2}
    manual = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))
    assert values["accuracy"] == pytest.approx(manual)  # the metric's build left nothing in its state
