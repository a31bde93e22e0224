"""What is trained: the pretrained base and the head put on top of it."""

from __future__ import annotations

import difflib
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from ._base import ApiModel, cel
from .applications import APPLICATIONS, MIN_SIDE, default_image_size, min_image_side, min_side_cel, suggest
from .keras_names import ACTIVATIONS, EXCLUDED_ACTIVATIONS
from .uris import check_uri_field, uri_cel

MAX_SIDE = 2048

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class BaseModelSpec(ApiModel):
    """The pretrained model to start from. Give exactly one of application, uri or fromJob."""

    model_config = cel(
        ("[has(self.application), has(self.uri), has(self.fromJob)].filter(x, x).size() == 1",
         "give exactly one of application, uri or fromJob"),
        ("!has(self.weights) || self.weights == 'imagenet' || self.weights == 'none' || has(self.application)",
         "weights: only an application takes weights; a model by uri or fromJob has its own"),
        ("!has(self.application) || !has(self.imageSize) || "
         + min_side_cel("self.application", "self.imageSize"),
         "imageSize: smaller than the application accepts (Xception 71, InceptionV3 and InceptionResNetV2 75, "
         "the others 32 pixels)"),
        *uri_cel("uri"),
        *uri_cel("weights", unless=("imagenet", "none")),
    )

    application: str | None = Field(default=None, max_length=64, json_schema_extra={"enum": list(APPLICATIONS)})
    """A keras.applications model by name, e.g. Xception, ResNet50, MobileNetV2, EfficientNetB0."""

    weights: str = Field(default="imagenet", min_length=1, max_length=2048)
    """Weights of the application: 'imagenet', 'none' (random initialisation) or the URI of a weights file.
    Default: imagenet."""

    uri: str | None = Field(default=None, min_length=1, max_length=2048)
    """A user's own model instead of an application: a .keras file or a SavedModel directory, by URI."""

    from_job: str | None = Field(default=None, max_length=253, pattern=NAME_PATTERN)
    """Start from the model another FineTuneJob (same namespace) produced."""

    cut_at: str | None = Field(default=None, max_length=256)
    """Name of the layer to cut the base at; its output feeds the head. Default: the base without its top."""

    image_size: list[Annotated[int, Field(ge=MIN_SIDE, le=MAX_SIDE)]] | None = Field(
        default=None, min_length=2, max_length=2)
    """Input [height, width] in pixels. Default: the application's own size (Xception 299, most 224), or
    the input size of a model given by uri or fromJob."""

    @model_validator(mode="after")
    def _one_source(self) -> BaseModelSpec:
        given = [n for n, v in (("application", self.application), ("uri", self.uri),
                                ("fromJob", self.from_job)) if v is not None]
        if len(given) != 1:
            which = " and ".join(given) if given else "none of them"
            raise ValueError(f"give exactly one of application, uri or fromJob (got {which})")
        if self.application is not None and self.application not in APPLICATIONS:
            hint = suggest(self.application)
            raise ValueError(
                f"application: unknown application {self.application!r}"
                + (f" (did you mean {hint!r}?)" if hint else " (see keras.applications for the names)")
            )
        if self.uri is not None:
            check_uri_field("uri", self.uri)
        if self.weights not in ("imagenet", "none"):
            check_uri_field("weights", self.weights, hint="'imagenet', 'none' or the URI of a weights file: ")
            if self.application is None:
                raise ValueError(
                    "weights: only an application takes weights; a model by uri or fromJob has its own")
        if self.application is not None and self.image_size is not None:
            least = min_image_side(self.application)
            if min(self.image_size) < least:
                raise ValueError(f"imageSize: {self.application} needs at least {least}x{least} pixels "
                                 f"(got {self.image_size[0]}x{self.image_size[1]})")
        return self

    def resolved_image_size(self) -> tuple[int, int] | None:
        """The input size to use; None when it must be read from a uri/fromJob model."""
        if self.image_size is not None:
            return (self.image_size[0], self.image_size[1])
        if self.application is not None:
            return default_image_size(self.application)
        return None


class HeadLayer(ApiModel):
    """One hidden Dense layer of the head."""

    units: int = Field(gt=0, le=65536)
    """Number of units."""

    activation: str = Field(default="relu", max_length=32, json_schema_extra={"enum": list(ACTIVATIONS)})
    """A keras.activations name, e.g. relu, gelu, swish, tanh. Default: relu."""

    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Dropout rate after this layer. Default: 0."""

    @field_validator("activation")
    @classmethod
    def _activation(cls, value: str) -> str:
        if value in ACTIVATIONS:
            return value
        if value in EXCLUDED_ACTIVATIONS:
            raise ValueError(f"{value!r} cannot be a head layer's activation: it {EXCLUDED_ACTIVATIONS[value]}")
        close = difflib.get_close_matches(value.lower(), ACTIVATIONS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else " (see keras.activations for the names)"
        raise ValueError(f"unknown activation {value!r}{hint}")


class HeadSpec(ApiModel):
    """The new top: pooling, optional hidden layers, and an output layer sized from the dataset's classes."""

    pooling: Literal["avg", "max"] = "avg"
    """Global pooling over the base's feature map. Default: avg."""

    layers: list[HeadLayer] = Field(default_factory=list, max_length=16)
    """Hidden Dense layers between pooling and output, e.g. [{units: 256, activation: relu, dropout: 0.2}]."""

    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Dropout rate just before the output layer. Default: 0."""
