"""The API's tables of Keras names (headstart.api.keras_names, headstart.api.applications) agree with Keras
itself, so `headstart validate` and the API server refuse exactly what Keras would refuse in a pod."""

from __future__ import annotations

import inspect
import typing

import numpy as np
import pytest

from headstart.api import OptimizerSpec
from headstart.api.applications import APPLICATIONS, min_image_side
from headstart.api.keras_names import ACTIVATIONS, EXCLUDED_ACTIVATIONS, OPTIMIZER_ARGUMENTS

#: Every optimizer argument a spec can set (the table says which optimizer takes which).
SPEC_ARGUMENTS = {"learning_rate", "momentum", "weight_decay"}


def keras_activations() -> set[str]:
    import keras

    module = keras.activations
    return {name for name in dir(module) if not name.startswith("_") and callable(getattr(module, name))
            and name not in ("get", "serialize", "deserialize")}


def test_activation_table_covers_every_keras_activation():
    assert set(ACTIVATIONS) | set(EXCLUDED_ACTIVATIONS) == keras_activations()
    assert not set(ACTIVATIONS) & set(EXCLUDED_ACTIVATIONS)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_each_allowed_activation_works_in_a_head_layer(name):
    import keras

    out = keras.layers.Dense(5, activation=name)(np.ones((2, 4), "float32"))
    assert tuple(out.shape) == (2, 5) and np.all(np.isfinite(np.asarray(out)))


@pytest.mark.parametrize("name", sorted(EXCLUDED_ACTIVATIONS))
def test_each_excluded_activation_breaks_a_head_layer(name):
    import keras

    try:
        out = keras.layers.Dense(6, activation=name)(np.ones((2, 4), "float32"))
    except (TypeError, ValueError):
        return  # refused
    assert tuple(out.shape) != (2, 6)  # or it changes the layer's width


def test_optimizer_table_matches_keras_signatures():
    import keras

    assert set(OPTIMIZER_ARGUMENTS) == set(typing.get_args(OptimizerSpec.model_fields["type"].annotation))
    for name, arguments in OPTIMIZER_ARGUMENTS.items():
        accepted = set(inspect.signature(getattr(keras.optimizers, name)).parameters)
        assert arguments == SPEC_ARGUMENTS & accepted, name


@pytest.mark.parametrize("name", APPLICATIONS)
def test_applications_refuse_images_below_the_tables_minimum(name):
    import keras

    side = min_image_side(name) - 1
    with pytest.raises(ValueError):
        getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(side, side, 3))


@pytest.mark.parametrize("name", ["Xception", "InceptionV3", "InceptionResNetV2", "ResNet50"])
def test_applications_accept_the_tables_minimum(name):
    import keras

    side = min_image_side(name)
    model = getattr(keras.applications, name)(include_top=False, weights=None, input_shape=(side, side, 3))
    assert model.output.shape[-1] > 0
