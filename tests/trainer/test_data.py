"""Input data: image folders (local, fsspec memory://), TFDS (mock_data), bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from trainer_support import Recorder, write_image_folder

from headstart.api import AugmentationSpec, DatasetSpec


def load(folder, tmp_path, **splits):
    from headstart.trainer import data

    spec = DatasetSpec(image_folder={"uri": str(folder)}, splits=splits or {"validation": 0.25})
    return data.load(spec, (32, 32), seed=1, workdir=str(tmp_path / "work"))


def images(ds) -> np.ndarray:
    return np.stack([x for x, _ in ds.as_numpy_iterator()])


def test_image_folder_splits_per_class_resizes_and_caches(image_folder, tmp_path):
    data = load(image_folder, tmp_path, validation=0.25, test=0.25)
    assert data.class_names == ["blue", "green", "red"]
    assert data.counts == {"train": 12, "validation": 6, "test": 6}
    assert data.skipped == []
    seen = []
    for split in ("train", "validation", "test"):
        xs = images(data.splits[split])
        assert xs.shape[1:] == (32, 32, 3) and xs.dtype == np.uint8
        labels = [int(y) for _, y in data.splits[split].as_numpy_iterator()]
        assert sorted(set(labels)) == [0, 1, 2]
        seen.append(xs)
    all_images = np.concatenate(seen).reshape(24, -1)
    assert len({row.tobytes() for row in all_images}) == 24  # no image in two splits
    assert "CacheDataset" in type(data.splits["train"]).__name__


def test_every_pipeline_runs_untuned(image_folder, tmp_path):
    """tf.data's autotuning is off in the splits and in everything built on them or on cached features
    (releasing an autotuned iterator can wait up to a minute: data.untuned, bench/README.md)."""
    import tensorflow as tf

    from headstart.trainer import data as data_mod
    from headstart.trainer import features

    assert tf.data.Dataset.range(3).options().autotune.enabled is not False  # TensorFlow's default: on
    data = load(image_folder, tmp_path, validation=0.25, test=0.25)
    built = [*data.splits.values(), data_mod.batches(data.splits["train"], 4, shuffle_buffer=8, seed=1),
             features.dataset(np.zeros((6, 5), "float32"), np.zeros((6,), "int32"), 4, shuffle_buffer=6)]
    assert [ds.options().autotune.enabled for ds in built] == [False] * len(built)


def test_corrupt_and_non_image_files_are_skipped_and_counted(image_folder, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(image_folder, folder)
    png = (folder / "red" / "000.png").read_bytes()
    (folder / "red" / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "green" / "notes.txt").write_text("not an image")
    (folder / "blue" / "empty.jpg").write_bytes(b"")
    (folder / "LICENSE.txt").write_text("files next to the class folders are not classes")
    data = load(folder, tmp_path)
    assert len(data.skipped) == 3
    assert {Path(p).name for p in data.skipped} == {"truncated.png", "notes.txt", "empty.jpg"}
    assert data.counts["train"] + data.counts["validation"] == 24


def test_image_folder_from_an_fsspec_memory_uri(image_folder, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    for path in image_folder.rglob("*.png"):
        fs.pipe(f"/colours/{path.parent.name}/{path.name}", path.read_bytes())
    fs.pipe("/colours/red/broken.png", b"\x89PNG broken")
    local = load(image_folder, tmp_path)
    remote = load("memory://colours", tmp_path)
    assert remote.class_names == local.class_names
    assert remote.counts == local.counts and len(remote.skipped) == 1
    np.testing.assert_array_equal(images(remote.splits["train"]), images(local.splits["train"]))


@pytest.mark.parametrize("layout, message", [
    ({"a": 3, "b": 0}, "class folder 'b' is empty"),
    ({"only": 4}, "found 1 class folder"),
    ({"a": 3, "b": -2}, "class folder 'b' has no readable image"),
    ({}, "found 0 class folder"),
])
def test_bad_image_folders_fail_before_training(folder_job, tmp_path, layout, message):
    from headstart.trainer import DatasetError, run_job

    root = tmp_path / "bad"
    root.mkdir()
    full = write_image_folder(tmp_path / "src", per_class=4)
    for name, n in layout.items():
        (root / name).mkdir()
        if n > 0:
            for i in range(n):
                shutil.copy(full / "red" / f"{i:03d}.png", root / name / f"{i}.png")
        for i in range(-n):
            (root / name / f"junk{i}.png").write_bytes(b"junk")
    job = folder_job(dataset={"imageFolder": {"uri": str(root)}, "splits": {"validation": 0.25}})
    rec = Recorder()
    with pytest.raises(DatasetError, match=message):
        run_job(job, str(tmp_path / "out"), rec)
    assert rec.names() == ["failed"]  # nothing started
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_missing_image_folder_is_a_dataset_error(folder_job, tmp_path):
    from headstart.trainer import DatasetError, run_job

    job = folder_job(dataset={"imageFolder": {"uri": str(tmp_path / "nowhere")}})
    with pytest.raises(DatasetError, match="no folder at"):
        run_job(job, str(tmp_path / "out"))


def test_augmentation_comes_after_the_cache_and_is_never_cached(image_folder, tmp_path):
    from headstart.trainer import data as data_mod

    data = load(image_folder, tmp_path)
    aug = data_mod.augmentation(AugmentationSpec(flip="horizontal_and_vertical", contrast=0.5, zoom=0.3), 1)
    plain = data_mod.batches(data.splits["train"], 6)
    augmented = data_mod.batches(data.splits["train"], 6, augment=aug)
    first, second = (np.concatenate([x for x, _ in augmented.as_numpy_iterator()]) for _ in range(2))
    clean = np.concatenate([x for x, _ in plain.as_numpy_iterator()])
    assert not np.array_equal(first, second), "each epoch must draw new augmentations"
    assert not np.array_equal(first, clean)
    np.testing.assert_array_equal(clean, np.concatenate([x for x, _ in plain.as_numpy_iterator()]))


def test_tfds_dataset_through_mock_data(folder_job, tmp_path):
    import tensorflow_datasets as tfds

    from headstart.trainer import run_job

    job = folder_job(dataset={"tfds": {"name": "tf_flowers", "dataDir": str(tmp_path / "tfds")},
                              "splits": {"train": "train[:80%]", "validation": "train[80%:]"},
                              "batchSize": 8},
                     output={"uri": "x", "formats": ["keras"]})
    with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path / "tfds")):
        result = run_job(job, str(tmp_path / "out"))
    assert result.model.class_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "tf_flowers/3.0.1" in card and "train[:80%]" in card
    assert (tmp_path / "out" / "labels.txt").read_text().split() == result.model.class_names


def test_tfds_unknown_dataset_and_unprepared_without_download(folder_job, tmp_path):
    from headstart.trainer import DatasetError, run_job

    unknown = folder_job(dataset={"tfds": {"name": "no_such_dataset_here"}})
    with pytest.raises(DatasetError, match="TFDS has no dataset 'no_such_dataset_here'"):
        run_job(unknown, str(tmp_path / "a"))
    offline = folder_job(dataset={"tfds": {"name": "tf_flowers", "dataDir": str(tmp_path / "empty"),
                                           "download": False}})
    with pytest.raises(DatasetError, match="not prepared in .*download is off"):
        run_job(offline, str(tmp_path / "b"))


def test_an_image_folder_that_cannot_be_reached_is_transient_and_named_without_credentials(folder_job, monkeypatch):
    """Object storage that refuses the connection: a network failure (transient: retried) naming the folder with
    its credentials redacted, not an unexpected error of the storage library."""
    import fsspec

    from headstart.trainer import DatasetDownloadError, run_job

    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": "http://127.0.0.1:1"})
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    job = folder_job(dataset={"imageFolder": {"uri": "s3://AKIAEXAMPLE:hunter2@bucket/photos"},
                              "splits": {"validation": 0.25}})
    with pytest.raises(DatasetDownloadError, match=r"dataset.imageFolder: cannot reach s3://\*\*\*@bucket/photos: ") \
            as failed:
        run_job(job)
    assert failed.value.exit_code == 75 and "hunter2" not in str(failed.value)  # transient, redacted
