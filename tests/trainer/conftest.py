"""Fixtures of the trainer tests; the helpers live in trainer_support."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from trainer_support import make_job, tiny_model, write_image_folder


@pytest.fixture(scope="session")
def tiny_model_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    import keras

    keras.utils.set_random_seed(1)
    model = tiny_model()
    # Non-trivial BatchNormalization statistics, as a pretrained model has.
    for name in ("bn1", "bn2"):
        bn = model.get_layer(name)
        mean, var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
        bn.moving_mean.assign(mean + 0.1)
        bn.moving_variance.assign(var * 2.0)
    model.save(path)
    return str(path)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("flowers") / "images")


@pytest.fixture
def folder_job(tiny_model_uri: str, image_folder: Path):
    """A factory of jobs on the tiny model and the colour folder; keyword arguments replace spec parts."""

    def factory(**kwargs: Any) -> Any:
        kwargs.setdefault("base", {"uri": tiny_model_uri})
        kwargs.setdefault("dataset", {"imageFolder": {"uri": str(image_folder)},
                                      "splits": {"validation": 0.25}, "batchSize": 8})
        return make_job(**kwargs)

    return factory


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends with the float32 policy (a mixed-precision run sets it globally)."""
    yield
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")
