"""What it is trained on: the dataset, its splits and the augmentation."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from ._base import ApiModel, cel
from .uris import check_uri_field, uri_cel

SplitValue = str | float

# TFDS's split grammar (tfds.core.ReadInstruction.from_spec): parts joined by '+', each a split name with
# an optional selector: [from:to] in examples or percent (either side may be empty), or [N shard].
_SPLIT_PART = re.compile(r"^(?P<name>[\w-]+)(\[(?P<selector>[^\]]*)\])?$")
_SPLIT_BOUND = re.compile(r"^(?P<value>-?[0-9_.]+)?(?P<unit>%|shard)?$")


def tfds_split_problem(text: str) -> str | None:
    """Why ``text`` is not a TFDS split string, or None when it is one."""
    for part in re.split(r"\s*\+\s*", text.strip()):
        match = _SPLIT_PART.match(part)
        if match is None:
            return f"{part!r} is not a split such as 'train', 'train[:80%]' or 'train[10:20]+test'"
        selector = match.group("selector")
        if selector is None:
            continue
        if match.group("name") == "all":
            return "'all' takes no slice"
        bounds = [_SPLIT_BOUND.match(b) for b in selector.split(":")]
        if len(bounds) > 2 or not all(bounds) or not any(b.group("value") for b in bounds if b):
            return f"{part!r}: a slice is [from:to] with numbers or percentages, e.g. [:80%] or [100:]"
        units = {b.group("unit") or "abs" for b in bounds if b and b.group("value")}
        if len(bounds) == 1 and units != {"shard"}:
            return f"{part!r}: a single index selects a shard ([3shard]); use a slice such as [:10] or [:10%]"
        for bound in bounds:
            value = bound.group("value") if bound else None
            if not value:
                continue
            try:
                number = float(value) if "%" in units else int(value)
            except ValueError:
                return f"{part!r}: {value!r} is not a whole number (only percentages take decimals)"
            if "%" in units and not -100 <= number <= 100:
                return f"{part!r}: a percentage must lie between -100 and 100"
    return None


class TfdsSource(ApiModel):
    """A TensorFlow Datasets dataset."""

    model_config = cel(*uri_cel("dataDir"))

    name: str = Field(min_length=1, max_length=256, pattern=r"^[a-z0-9_]+(/[\w.-]+)?(:[\d.*]+)?$")
    """The TFDS name, e.g. tf_flowers (optionally with config and version, e.g. 'cifar10:3.0.2')."""

    data_dir: str | None = Field(default=None, min_length=1, max_length=2048)
    """Where TFDS keeps prepared data, e.g. pvc://datasets/tfds; a shared copy avoids downloads per job."""

    download: bool = True
    """Download and prepare the dataset when it is not in dataDir. Default: true."""

    @model_validator(mode="after")
    def _check(self) -> TfdsSource:
        if self.data_dir is not None:
            check_uri_field("dataDir", self.data_dir)
        return self


class ImageFolderSource(ApiModel):
    """A folder with one subfolder of images per class; the subfolder names are the class names."""

    model_config = cel(*uri_cel("uri"))

    uri: str = Field(min_length=1, max_length=2048)
    """Local path or URI of the folder (file://, s3://, gs://, pvc://...)."""

    @model_validator(mode="after")
    def _check(self) -> ImageFolderSource:
        check_uri_field("uri", self.uri)
        return self


class Splits(ApiModel):
    """Which data trains, validates and tests. TFDS: split strings such as 'train[:80%]'. Image folder:
    validation and test are fractions of the folder (e.g. 0.2), train is the rest."""

    train: SplitValue | None = None
    """TFDS split string for training. Default: 'train' (TFDS); the rest of the folder (image folder)."""

    validation: SplitValue | None = None
    """TFDS split string, or fraction of an image folder, for validation. Default: none."""

    test: SplitValue | None = None
    """TFDS split string, or fraction of an image folder, for the final test. Default: none."""


class DatasetSpec(ApiModel):
    """The dataset. Give exactly one of tfds or imageFolder."""

    model_config = cel(
        ("has(self.tfds) != has(self.imageFolder)", "give exactly one of tfds or imageFolder"),
    )
    # The splits take a string or a number, which a structural schema cannot type, so CEL cannot see
    # them: their rules are checked when reading (headstart validate, the operator, the trainer).

    tfds: TfdsSource | None = None
    """A TensorFlow Datasets dataset by name."""

    image_folder: ImageFolderSource | None = None
    """A folder of images, one subfolder per class."""

    splits: Splits = Field(default_factory=Splits)
    """Train, validation and test splits."""

    batch_size: int = Field(default=32, gt=0, le=65536)
    """Images per batch. Default: 32."""

    cache: bool = True
    """Cache decoded and resized images in memory between epochs. Default: true."""

    shuffle_buffer: int = Field(default=1000, ge=0, le=10_000_000)
    """Shuffle buffer size in images (0 = no shuffling). Default: 1000."""

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        if (self.tfds is None) == (self.image_folder is None):
            raise ValueError("give exactly one of tfds or imageFolder")
        split_items = (("train", self.splits.train), ("validation", self.splits.validation),
                       ("test", self.splits.test))
        if self.tfds is not None:
            for name, value in split_items:
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"splits.{name}: a TFDS split is a string such as 'train[:80%]'")
                if isinstance(value, str) and not value.strip():
                    raise ValueError(f"splits.{name}: must not be empty")
                problem = tfds_split_problem(value) if isinstance(value, str) else None
                if problem is not None:
                    raise ValueError(f"splits.{name}: {problem}")
        else:
            if self.splits.train is not None:
                raise ValueError("splits.train: an image folder trains on what validation and test leave")
            total = 0.0
            for name, value in split_items[1:]:
                if value is None:
                    continue
                if isinstance(value, str) or not 0.0 <= value < 1.0:
                    raise ValueError(f"splits.{name}: for an image folder, a fraction from 0 to below 1")
                total += value
            if total >= 1.0:
                raise ValueError("splits: validation and test together must leave images to train on")
        return self

    @property
    def train_split(self) -> SplitValue:
        """The split that trains: splits.train when given, else ``"train"``."""
        return self.splits.train if self.splits.train is not None else "train"


class AugmentationSpec(ApiModel):
    """Random augmentation of training images (applied after the cache, never cached)."""

    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = "none"
    """Random flips. Default: none."""

    rotation: float = Field(default=0.0, ge=0.0, le=0.5)
    """Random rotation as a fraction of a full turn (0.1 = up to +-36 degrees). Default: 0."""

    zoom: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Random zoom factor (0.2 = up to 20% in or out). Default: 0."""

    contrast: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Random contrast factor. Default: 0."""

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is asked for (a flip, or a rotation, zoom or contrast above 0)."""
        return self.flip != "none" or self.rotation > 0 or self.zoom > 0 or self.contrast > 0
