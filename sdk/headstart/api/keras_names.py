"""Names the spec hands to Keras as they are: activations and each optimizer's arguments.

This is metadata, not a translation: ``head.layers[].activation`` is a ``keras.activations`` name and
``optimizer.type`` a ``keras.optimizers`` class. It lives here, without TensorFlow, so that `headstart
validate`, the CRD (enums and CEL) and the operator reject what Keras would reject minutes later in a GPU
pod. tests/trainer/test_keras_tables.py checks both tables against Keras itself.
"""

from __future__ import annotations

#: keras.activations names a hidden Dense layer of the head may use.
ACTIVATIONS: tuple[str, ...] = (
    "celu", "elu", "exponential", "gelu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu",
    "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid",
    "sparsemax", "squareplus", "swish", "tanh", "tanh_shrink",
)

#: keras.activations names Keras has but a head layer cannot use as a plain activation, and why.
EXCLUDED_ACTIVATIONS: dict[str, str] = {
    "glu": "halves the layer's width (and fails on an odd number of units)",
    "threshold": "needs arguments (threshold, default_value) that an activation name cannot carry",
}

#: The optimizer classes a stage may name, with the keyword arguments of each that the spec sets.
OPTIMIZER_ARGUMENTS: dict[str, frozenset[str]] = {
    "SGD": frozenset({"learning_rate", "momentum", "weight_decay"}),
    "Adam": frozenset({"learning_rate", "weight_decay"}),
    "AdamW": frozenset({"learning_rate", "weight_decay"}),
    "RMSprop": frozenset({"learning_rate", "momentum", "weight_decay"}),
}

OPTIMIZERS: tuple[str, ...] = tuple(OPTIMIZER_ARGUMENTS)
WITH_MOMENTUM: tuple[str, ...] = tuple(name for name, args in OPTIMIZER_ARGUMENTS.items() if "momentum" in args)
