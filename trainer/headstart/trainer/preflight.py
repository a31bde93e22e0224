"""Pre-flight: what the trainer checks with Keras and TFDS before it reads any data or builds the base.

Every rule the spec alone decides lives in the ``headstart.api`` models (so `headstart validate`, the API
server and the operator refuse a bad spec before a pod starts). This is the trainer's side of that
contract: the spec's names and values handed to Keras and TFDS exactly as training will hand them, on
tiny inputs, so a spec the API admits but the libraries refuse fails here in a second with a SpecError
naming the field, never minutes into training. tests/trainer/test_preflight_mutants.py holds the two sides
together over hundreds of mutated manifests.
"""

from __future__ import annotations

import math

from headstart.api import FineTuneJobSpec

from .errors import SpecError, first_line


def check(spec: FineTuneJobSpec) -> None:
    """Raise SpecError when Keras or TFDS would refuse what the spec asks for."""
    _check_stages(spec)
    _check_head(spec)
    _check_augmentation(spec)
    _check_tfds_splits(spec)


def _check_stages(spec: FineTuneJobSpec) -> None:
    from .stages import learning_rate_at, make_optimizer

    for index, stage in enumerate(spec.stages):
        where = f"stages[{index}].optimizer"
        try:
            make_optimizer(stage.optimizer)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{where}: Keras refuses it: {first_line(exc)}") from exc
        rates = [learning_rate_at(stage.optimizer, epoch, stage.epochs) for epoch in range(stage.epochs)]
        if not all(math.isfinite(rate) and rate >= 0 for rate in rates):
            raise SpecError(f"{where}.schedule: gives a learning rate that is not a finite number >= 0")


def _check_head(spec: FineTuneJobSpec) -> None:
    import keras
    import numpy as np

    features = np.zeros((1, 4), "float32")
    for index, layer in enumerate(spec.head.layers):
        try:
            keras.layers.Dense(2, activation=layer.activation)(features)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"head.layers[{index}].activation: Keras refuses {layer.activation!r}: "
                            f"{first_line(exc)}") from exc


def _check_augmentation(spec: FineTuneJobSpec) -> None:
    import numpy as np

    from .data import augmentation

    try:
        layers = augmentation(spec.augmentation, spec.seed)
        if layers is not None:
            layers(np.zeros((1, 8, 8, 3), "float32"), training=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SpecError(f"augmentation: Keras refuses it (with seed {spec.seed}): {first_line(exc)}") from exc


def _check_tfds_splits(spec: FineTuneJobSpec) -> None:
    if spec.dataset.tfds is None:
        return
    import tensorflow_datasets as tfds

    splits = spec.dataset.splits
    for name, value in (("train", spec.dataset.train_split), ("validation", splits.validation),
                        ("test", splits.test)):
        if value is None:
            continue
        try:
            tfds.core.ReadInstruction.from_spec(str(value))
        except (ValueError, NotImplementedError, AssertionError) as exc:
            raise SpecError(f"dataset.splits.{name}: TFDS refuses {value!r}: {first_line(exc)}") from exc
