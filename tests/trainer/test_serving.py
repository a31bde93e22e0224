"""The SavedModel serves as it is: encoded images in, probabilities and class names out, loaded in a fresh
process (tf.saved_model.load, saved_model_cli), equal to model.keras on the decoded pixels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from trainer_support import make_job, trainer_env

#: JPEG and PNG bytes: two at the model's input size (32x32), one that must be resized.
SHAPES = {"a.jpg": (32, 32), "b.png": (32, 32), "c.png": (40, 52)}

LOAD = """
import json, sys
import numpy as np
import tensorflow as tf
out, images = sys.argv[1], json.loads(sys.argv[2])
loaded = tf.saved_model.load(sys.argv[3])
encoded = tf.constant([open(p, "rb").read() for p in images])
served = loaded.signatures["serve_image_bytes"](image_bytes=encoded)
default = loaded.signatures["serving_default"]
np.savez(out, probabilities=served["probabilities"].numpy(), classes=served["classes"].numpy().astype(str),
         default_dtype=str(list(default.structured_input_signature[1].values())[0].dtype.name),
         headstart=",".join(m for m in sys.modules if m.startswith("headstart")))
"""


@pytest.fixture(scope="module")
def served_output(tiny_model_uri: str, image_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from headstart.trainer import run_job

    out = tmp_path_factory.mktemp("serving") / "out"
    job = make_job(base={"uri": tiny_model_uri}, output=str(out),
                   dataset={"imageFolder": {"uri": str(image_folder)}, "splits": {"validation": 0.25},
                            "batchSize": 8})
    run_job(job, str(out))
    return out


def _write_images(folder: Path) -> list[Path]:
    import tensorflow as tf

    rng = np.random.default_rng(3)
    paths = []
    for name, (h, w) in SHAPES.items():
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        encode = tf.io.encode_jpeg if name.endswith(".jpg") else tf.io.encode_png
        (folder / name).write_bytes(encode(pixels).numpy())
        paths.append(folder / name)
    return paths


def _keras_on_decoded(model_path: Path, paths: list[Path]) -> np.ndarray:
    """model.keras on each image decoded (the JPEG decoder's own pixels) and resized as training data is."""
    import keras
    import tensorflow as tf

    pixels = []
    for path in paths:
        image = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
        image = tf.image.resize(image, (32, 32), antialias=True)
        pixels.append(tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8).numpy())
    model = keras.saving.load_model(model_path)
    return model.predict(np.stack(pixels).astype("float32"), verbose=0)


def test_the_savedmodel_takes_encoded_images_in_a_fresh_process(served_output, tmp_path):
    paths = _write_images(tmp_path)
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    result = tmp_path / "served.npz"
    proc = subprocess.run([sys.executable, str(script), str(result), json.dumps([str(p) for p in paths]),
                           str(served_output / "savedmodel")], env=trainer_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(result)
    expected = _keras_on_decoded(served_output / "model.keras", paths)
    assert served["probabilities"].shape == (3, 3)
    np.testing.assert_allclose(served["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert served["classes"].tolist() == [["blue", "green", "red"]] * 3
    assert str(served["default_dtype"]) == "float32"  # the default signature still takes pixels
    assert str(served["headstart"]) == ""  # nothing of headstart is needed to serve it


def test_saved_model_cli_runs_the_encoded_image_signature(served_output, tmp_path):
    paths = _write_images(tmp_path)
    cli = Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        pytest.fail(f"saved_model_cli is not installed beside {sys.executable} (it comes with tensorflow)")
    # Every byte escaped: the tool splits its argument at ';' and '='.
    literal = ", ".join("b'" + "".join(f"\\x{c:02x}" for c in p.read_bytes()) + "'" for p in paths)
    outdir = tmp_path / "cli-out"
    proc = subprocess.run([str(cli), "run", "--dir", str(served_output / "savedmodel"), "--tag_set", "serve",
                           "--signature_def", "serve_image_bytes", "--input_exprs", f"image_bytes=[{literal}]",
                           "--outdir", str(outdir)], env=trainer_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probabilities = np.load(outdir / "probabilities.npy")
    classes = np.load(outdir / "classes.npy", allow_pickle=True)
    expected = _keras_on_decoded(served_output / "model.keras", paths)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    assert [[c.decode() if isinstance(c, bytes) else c for c in row] for row in classes] == \
        [["blue", "green", "red"]] * 3


def test_a_picture_that_is_not_an_image_is_refused_by_the_signature(served_output):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(served_output / "savedmodel"))
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["serve_image_bytes"](image_bytes=tf.constant([b"not an image"]))
