"""Fixtures of the SDK tests: the trainer tests' tiny base model and image folder (the local S3 server,
`s3_server`, is in tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))  # trainer_support: tiny data and models


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    """A tiny .keras base model (the trainer tests' own)."""
    from trainer_support import tiny_model

    path = tmp_path_factory.mktemp("sdk-models") / "tiny.keras"
    tiny_model().save(path)
    return str(path)


@pytest.fixture(scope="session")
def colour_folder(tmp_path_factory) -> Path:
    from trainer_support import write_image_folder

    return write_image_folder(tmp_path_factory.mktemp("sdk-images") / "images")
