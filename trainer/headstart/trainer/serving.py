"""The SavedModel's serving signatures: raw pixels (the default, as before) and encoded images.

``serving_default`` (also the ``serve`` function) takes a float32 batch of raw 0-255 pixels at the model's
input size. ``serve_image_bytes`` takes a batch of encoded images (JPEG, PNG, GIF's first frame, BMP: the
bytes TF Serving's and KServe's REST APIs receive as ``{"b64": ...}``), decodes and resizes each as the
training data was (data.resize), and returns ``probabilities`` (one per class) and ``classes`` (the class
names, in the same order, for every image).
"""

from __future__ import annotations

from typing import Any

#: The encoded-image signature and its input (the ``_bytes`` suffix is what some REST front ends look for).
BYTES_SIGNATURE = "serve_image_bytes"
BYTES_INPUT = "image_bytes"


def export(model: Any, path: str, class_names: list[str], image_size: tuple[int, int]) -> None:
    """Write ``model`` as a SavedModel at ``path`` with both signatures."""
    import keras
    import tensorflow as tf

    from .data import resize

    height, width = image_size
    names = tf.constant(list(class_names), dtype=tf.string)

    def decode(encoded: Any) -> Any:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return tf.cast(resize(image, (height, width)), tf.float32)

    def from_bytes(image_bytes: Any) -> dict[str, Any]:
        pixels = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32))
        probabilities = tf.cast(model(pixels, training=False), tf.float32)
        classes = tf.tile(names[None, :], [tf.shape(image_bytes)[0], 1])
        return {"probabilities": probabilities, "classes": classes}

    archive = keras.export.ExportArchive()
    # First, so that it is serving_default, as model.export made it.
    archive.track_and_add_endpoint("serve", model, _pixel_signature(model, image_size))
    archive.add_endpoint(BYTES_SIGNATURE, from_bytes,
                         input_signature=[tf.TensorSpec((None,), tf.string, name=BYTES_INPUT)])
    archive.write_out(path, verbose=False)


def _pixel_signature(model: Any, image_size: tuple[int, int]) -> list[Any]:
    import tensorflow as tf

    spec = model.inputs[0]
    return [tf.TensorSpec((None, *image_size, 3), tf.float32, name=spec.name)]
