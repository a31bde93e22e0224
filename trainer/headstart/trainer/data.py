"""Input data: TFDS datasets and image folders, decoded, resized and cached; batches for training.

Each split is a tf.data.Dataset of (uint8 image HxWx3, int label), decoded and resized in a parallel map
and cached (``dataset.cache``). Batching, shuffling and random augmentation come after the cache, so
augmented images are never cached. Every pipeline runs with tf.data's autotuning off (``untuned``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from headstart.api import AugmentationSpec, DatasetSpec, storage
from headstart.api.uris import redact, redact_text

from .errors import DatasetDownloadError, DatasetError, first_line, looks_like_network_failure
from .modelcard import DatasetCard

SPLITS = ("train", "validation", "test")


@dataclass
class Data:
    class_names: list[str]
    splits: dict[str, Any]
    """split name -> unbatched dataset of (uint8 image, label); absent splits are missing."""
    counts: dict[str, int | None]
    skipped: list[str]
    """Files of an image folder that are not readable images (skipped)."""
    card: DatasetCard


def load(spec: DatasetSpec, image_size: tuple[int, int], seed: int, workdir: str) -> Data:
    if spec.tfds is not None:
        data = _tfds(spec, image_size, seed)
    else:
        data = _image_folder(spec, image_size, seed, workdir)
    if len(data.class_names) < 2:
        raise DatasetError(f"the dataset has {len(data.class_names)} class(es) "
                           f"({', '.join(data.class_names) or 'none'}); a classifier needs at least two")
    data.splits = {k: untuned(ds) for k, ds in data.splits.items()}  # inherited by every pipeline on them
    if spec.cache:
        data.splits = {k: ds.cache() for k, ds in data.splits.items()}
    return data


def untuned(ds: Any) -> Any:
    """``ds`` with tf.data's autotuning off, for it and every pipeline built on it. Measured on TensorFlow
    2.21 (bench/README.md): releasing an autotuned iterator while TensorFlow computes often waits for the
    autotuner's current sleep, whose period doubles from 10 ms up to 60 s, so a pass over the images that
    took 11 s ended after 20.47 s (the next boundary, 10 ms x (2^11 - 1)), and so can every epoch (Keras
    makes an iterator per epoch). Untuned, AUTOTUNE map parallelism is the number of cores (at most 16)
    and prefetch buffers grow on their own: decoding was as fast or faster here."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def resize(image: Any, size: tuple[int, int]) -> Any:
    """An image at ``size`` (antialiased, rounded back to uint8): training data and the SavedModel's
    encoded-image signature (serving.py) alike."""
    import tensorflow as tf

    image = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def _tfds(spec: DatasetSpec, size: tuple[int, int], seed: int) -> Data:
    import tensorflow as tf
    import tensorflow_datasets as tfds

    src = spec.tfds
    assert src is not None
    data_dir = storage.url(src.data_dir) if src.data_dir else None
    try:
        builder = tfds.builder(src.name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as exc:
        raise DatasetError(f"dataset.tfds.name: TFDS has no dataset {src.name!r}") from exc
    except Exception as exc:
        raise DatasetError(f"dataset.tfds {src.name!r}: {first_line(exc)}") from exc
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    if not builder.is_prepared():
        if not src.download:
            raise DatasetError(f"TFDS dataset {src.name!r} is not prepared in {where} and download is off; "
                               "prepare it there or set dataset.tfds.download: true")
        _limit_download_retries()
        try:
            builder.download_and_prepare()
        except Exception as exc:
            if looks_like_network_failure(exc):
                raise DatasetDownloadError(
                    f"cannot download TFDS dataset {src.name!r}: no network ({first_line(exc)}). Give a "
                    f"local copy: prepare it once (tfds build {src.name}) into a folder and set "
                    "dataset.tfds.dataDir to it (or TFDS_DATA_DIR)") from exc
            raise DatasetError(f"cannot prepare TFDS dataset {src.name!r}: {first_line(exc)}") from exc
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2 or not isinstance(keys[0], str):
        raise DatasetError(f"TFDS dataset {src.name!r} has no (image, label) supervised keys")
    image_key, label_key = keys
    label = builder.info.features[label_key]
    if not isinstance(label, tfds.features.ClassLabel):
        raise DatasetError(f"TFDS dataset {src.name!r}: {label_key!r} is not a class label")
    channels = builder.info.features[image_key].shape[-1]

    def prepare(image: Any, y: Any) -> tuple[Any, Any]:
        if channels == 1:
            image = tf.image.grayscale_to_rgb(image)
        elif channels == 4:
            image = image[..., :3]
        return resize(image, size), tf.cast(y, tf.int32)

    wanted = {"train": spec.train_split, "validation": spec.splits.validation, "test": spec.splits.test}
    splits, counts = {}, {}
    for name, split in wanted.items():
        if split is None:
            continue
        try:
            ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        except (ValueError, KeyError, AssertionError) as exc:
            known = ", ".join(builder.info.splits.keys())
            raise DatasetError(f"dataset.splits.{name}: bad TFDS split {split!r} for {src.name} "
                               f"(splits: {known}): {first_line(exc)}") from exc
        counts[name] = _split_count(builder, split, ds)
        if counts[name] == 0:
            raise DatasetError(f"dataset.splits.{name}: split {split!r} of {src.name} is empty")
        splits[name] = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    card = DatasetCard(builder.info.full_name, "TFDS", str(builder.info.version),
                       {k: str(v) for k, v in wanted.items() if v is not None})
    return Data(list(label.names), splits, counts, [], card)


def _split_count(builder: Any, split: str, ds: Any) -> int | None:
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError):  # no split metadata (e.g. tfds.testing.mock_data)
        n = int(ds.cardinality())
        return n if n >= 0 else None


def _limit_download_retries() -> None:
    """TFDS retries a failed download ten times with back-off (minutes when offline); keep a few so a
    missing network fails fast with the hint below. HEADSTART_DOWNLOAD_RETRIES sets it (default 3)."""
    from tensorflow_datasets.core.download import downloader

    if hasattr(downloader, "MAX_RETRIES"):
        downloader.MAX_RETRIES = int(os.environ.get("HEADSTART_DOWNLOAD_RETRIES", "3"))


def _class_folders(fs: Any, root: str, uri: str) -> list[str]:
    """The class folder names under ``root``; a location that cannot be reached (transient) or read (not)
    says so naming ``uri``, never as an unexpected error of the storage library."""
    try:
        if not fs.exists(root) or not fs.isdir(root):
            raise DatasetError(f"dataset.imageFolder: no folder at {uri}")
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(root, detail=True)
                      if e["type"] == "directory" and not e["name"].rstrip("/").rsplit("/", 1)[-1].startswith("."))
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own kinds (botocore, google-auth)
        if looks_like_network_failure(exc):
            raise DatasetDownloadError(f"dataset.imageFolder: cannot reach {redact(uri)}: "
                                       f"{redact_text(first_line(exc))}") from exc
        raise DatasetError(f"dataset.imageFolder: cannot read {redact(uri)}: {redact_text(first_line(exc))}") from exc


def _image_folder(spec: DatasetSpec, size: tuple[int, int], seed: int, workdir: str) -> Data:
    import numpy as np
    import tensorflow as tf

    src = spec.image_folder
    assert src is not None
    fs, root = storage.fs_path(src.uri)
    root = root.rstrip("/")
    classes = _class_folders(fs, root, src.uri)
    if len(classes) < 2:
        raise DatasetError(f"dataset.imageFolder {src.uri}: found {len(classes)} class folder(s) "
                           f"({', '.join(classes) or 'none'}); need one subfolder per class, at least two")
    good, skipped = _readable_images(fs, root, classes, storage.is_local(src.uri), os.path.join(workdir, "images"))
    val_frac = float(spec.splits.validation or 0.0)
    test_frac = float(spec.splits.test or 0.0)
    parts = _split_per_class(classes, good, val_frac, test_frac, seed)

    def decode(path: Any, label: Any) -> tuple[Any, Any]:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return resize(image, size), label

    splits, counts = {}, {}
    for split in SPLITS:
        if split != "train" and not (val_frac if split == "validation" else test_frac):
            continue
        pairs = parts[split]
        ds = tf.data.Dataset.from_tensor_slices(
            ([p for p, _ in pairs], np.array([y for _, y in pairs], dtype="int32")))
        splits[split] = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        counts[split] = len(pairs)
    card = DatasetCard(src.uri, "image folder", "-", {"validation": str(val_frac), "test": str(test_frac)})
    return Data(classes, splits, counts, skipped, card)


def _readable_images(fs: Any, root: str, classes: list[str], local: bool,
                     staging: str) -> tuple[dict[str, list[str]], list[str]]:
    """({class: its readable images' paths}, the files skipped): every file of each class folder (hidden ones
    aside) decoded once, in threads; a remote folder's images are copied to ``staging`` on the way."""
    import tensorflow as tf

    files: dict[str, list[str]] = {}
    for name in classes:
        found = sorted(p for p in fs.find(f"{root}/{name}") if not p.rsplit("/", 1)[-1].startswith("."))
        if not found:
            raise DatasetError(f"dataset.imageFolder: class folder {name!r} is empty")
        files[name] = found

    def check(item: tuple[int, str, str]) -> str | None:
        index, name, path = item
        try:
            data = fs.cat_file(path)
            tf.io.decode_image(data, channels=3, expand_animations=False)
        except Exception:  # not an image, or a corrupt one: skipped and counted
            return None
        if local:
            return path
        dst = os.path.join(staging, name, f"{index:07d}")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(data)
        return dst

    items = [(i, name, p) for name in classes for i, p in enumerate(files[name])]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        checked = list(pool.map(check, items))
    skipped = [p for (_, _, p), ok in zip(items, checked) if ok is None]
    good: dict[str, list[str]] = {name: [] for name in classes}
    for (_, name, _), ok in zip(items, checked):
        if ok is not None:
            good[name].append(ok)
    for name, paths in good.items():
        if not paths:
            raise DatasetError(f"dataset.imageFolder: class folder {name!r} has no readable image "
                               f"({len(files[name])} file(s) skipped)")
    return good, skipped


def _split_per_class(classes: list[str], good: dict[str, list[str]], val_frac: float, test_frac: float,
                     seed: int) -> dict[str, list[tuple[str, int]]]:
    """{split: [(path, label)]}: each class's images shuffled with ``seed`` and cut into test, validation and
    train by the fractions; the train split shuffled again across classes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    for label, name in enumerate(classes):
        paths = [good[name][i] for i in rng.permutation(len(good[name]))]
        n_test, n_val = _portion(len(paths), test_frac), _portion(len(paths), val_frac)
        if len(paths) - n_test - n_val < 1:
            raise DatasetError(f"dataset.imageFolder: class {name!r} has {len(paths)} image(s), too few to "
                               "split into train, validation and test")
        parts["test"] += [(p, label) for p in paths[:n_test]]
        parts["validation"] += [(p, label) for p in paths[n_test:n_test + n_val]]
        parts["train"] += [(p, label) for p in paths[n_test + n_val:]]
    order = rng.permutation(len(parts["train"]))
    parts["train"] = [parts["train"][i] for i in order]
    return parts


def _portion(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, int(round(n * fraction)))


def augmentation(spec: AugmentationSpec, seed: int) -> Any | None:
    """The random augmentation as keras preprocessing layers, or None when there is none."""
    import keras

    if not spec.enabled:
        return None
    layers = []
    if spec.flip != "none":
        layers.append(keras.layers.RandomFlip(spec.flip, seed=seed))
    if spec.rotation > 0:
        layers.append(keras.layers.RandomRotation(spec.rotation, seed=seed + 1))
    if spec.zoom > 0:
        layers.append(keras.layers.RandomZoom(spec.zoom, seed=seed + 2))
    if spec.contrast > 0:
        layers.append(keras.layers.RandomContrast(spec.contrast, seed=seed + 3, value_range=(0, 255)))
    return keras.Sequential(layers, name="augmentation")


BATCH_LOG_ENV = "HEADSTART_BATCH_LOG"
"""A file to append, for every training batch the pipeline makes, a JSON line: the epoch (from 0), the
batch's position in it (from 1) and each image's pixel sum (a debugging aid: which images, in which order)."""
EPOCH_SEED_STRIDE = 1_000_003


@dataclass
class EpochOrder:
    """Which epoch the training pipeline's next pass is: set (by callbacks.EpochPosition) before Keras
    starts the pass, read by the pipeline when the pass starts. A resumed run skips the batches of
    ``resume_epoch`` a checkpoint says were trained."""

    epoch: int = -1
    resume_epoch: int = -1
    resume_batches: int = 0

    def skip(self, epoch: int) -> int:
        return self.resume_batches if epoch == self.resume_epoch else 0

    def current(self) -> tuple[int, int]:
        return self.epoch, self.skip(self.epoch)


def train_batches(ds: Any, batch_size: int, order: EpochOrder, *, batches: int | None = None,
                  shuffle_buffer: int = 0, seed: int = 0, augment: Any | None = None) -> Any:
    """Training batches, one pass per epoch: the order of each epoch is seeded by the seed and the epoch
    (not by how many passes this process made), so a resumed run sees an epoch in the order an interrupted
    one did, and skips the batches it trained (``order``). ``batches``: those of each pass, when known (Keras
    then knows an epoch's length before its end; a pass of another length is an error)."""
    import tensorflow as tf

    log = os.environ.get(BATCH_LOG_ENV)

    def position(_: Any) -> tuple[Any, Any]:
        epoch, skip = tf.py_function(lambda: order.current(), [], (tf.int64, tf.int64))
        return tf.reshape(epoch, []), tf.reshape(skip, [])

    def one_pass(epoch: Any, skip: Any) -> Any:
        d = ds
        if shuffle_buffer > 0:
            d = d.shuffle(shuffle_buffer, seed=seed * EPOCH_SEED_STRIDE + epoch, reshuffle_each_iteration=False)
        d = d.batch(batch_size).skip(skip)
        if log:
            d = d.enumerate(start=skip + 1).map(lambda i, b: _logged(log, epoch, i, b))
        return d

    ds = tf.data.Dataset.from_tensors(0).map(position).flat_map(one_pass)
    if batches is not None:
        ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _logged(path: str, epoch: Any, index: Any, batch: tuple[Any, Any]) -> tuple[Any, Any]:
    import json

    import tensorflow as tf

    x, y = batch

    def write(e: Any, i: Any, sums: Any) -> int:
        line = {"epoch": int(e), "batch": int(i), "images": [int(v) for v in sums.numpy()]}
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")
        return 0

    done = tf.py_function(write, [epoch, index, tf.reduce_sum(tf.cast(x, tf.int64), axis=[1, 2, 3])], tf.int64)
    with tf.control_dependencies([done]):
        return tf.identity(x), y


def batches(ds: Any, batch_size: int, *, shuffle_buffer: int = 0, seed: int = 0,
            augment: Any | None = None) -> Any:
    """Batches of (float32 image 0-255, label): shuffled (training), augmented after the cache."""
    import tensorflow as tf

    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
