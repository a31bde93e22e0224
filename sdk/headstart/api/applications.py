"""The keras.applications models a FineTuneJob can name, with their default input sizes.

This is metadata, not a translation: the name is the keras.applications attribute itself. It lives here,
without TensorFlow, so that `headstart validate` and the operator can reject an unknown application and
pick the default image size without importing TensorFlow. A test checks it against keras.applications.
"""

from __future__ import annotations

_SIZES: dict[str, int] = {
    "Xception": 299,
    "VGG16": 224,
    "VGG19": 224,
    "ResNet50": 224,
    "ResNet101": 224,
    "ResNet152": 224,
    "ResNet50V2": 224,
    "ResNet101V2": 224,
    "ResNet152V2": 224,
    "InceptionV3": 299,
    "InceptionResNetV2": 299,
    "MobileNet": 224,
    "MobileNetV2": 224,
    "MobileNetV3Small": 224,
    "MobileNetV3Large": 224,
    "DenseNet121": 224,
    "DenseNet169": 224,
    "DenseNet201": 224,
    "NASNetMobile": 224,
    "NASNetLarge": 331,
    "EfficientNetB0": 224,
    "EfficientNetB1": 240,
    "EfficientNetB2": 260,
    "EfficientNetB3": 300,
    "EfficientNetB4": 380,
    "EfficientNetB5": 456,
    "EfficientNetB6": 528,
    "EfficientNetB7": 600,
    "EfficientNetV2B0": 224,
    "EfficientNetV2B1": 240,
    "EfficientNetV2B2": 260,
    "EfficientNetV2B3": 300,
    "EfficientNetV2S": 384,
    "EfficientNetV2M": 480,
    "EfficientNetV2L": 480,
    "ConvNeXtTiny": 224,
    "ConvNeXtSmall": 224,
    "ConvNeXtBase": 224,
    "ConvNeXtLarge": 224,
    "ConvNeXtXLarge": 224,
}

APPLICATIONS: tuple[str, ...] = tuple(_SIZES)

#: The smallest input side each application accepts (keras.applications' own min_size); 32 for the rest.
_MIN_SIDES: dict[str, int] = {"Xception": 71, "InceptionV3": 75, "InceptionResNetV2": 75}
MIN_SIDE = 32


def min_image_side(application: str) -> int:
    """The smallest height or width keras.applications accepts for ``application`` without its top."""
    return _MIN_SIDES.get(application, MIN_SIDE)


def min_side_cel(application: str, image_size: str) -> str:
    """A CEL rule: every side of ``image_size`` is at least the application's minimum."""
    by_min: dict[int, list[str]] = {}
    for name, side in _MIN_SIDES.items():
        by_min.setdefault(side, []).append(name)
    expr = str(MIN_SIDE)
    for side, names in sorted(by_min.items()):
        expr = f"({application} in {names!r} ? {side} : {expr})"
    return f"{image_size}.all(s, s >= {expr})"


def default_image_size(application: str) -> tuple[int, int]:
    """The (height, width) an application was trained at on ImageNet."""
    side = _SIZES[application]
    return (side, side)


def suggest(name: str) -> str | None:
    """The known application closest to a misspelt name, if any."""
    import difflib

    lowered = {a.lower(): a for a in APPLICATIONS}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, APPLICATIONS, n=1, cutoff=0.6)
    return close[0] if close else None
