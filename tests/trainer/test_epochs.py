"""Each epoch is shuffled by its own seed: its order does not depend on what was read before, so a resumed
run trains exactly the model an uninterrupted run trains."""

from __future__ import annotations

import numpy as np
import pytest


def epochs_of(ds) -> list[list[int]]:
    return [list(y) for _, y in ds.as_numpy_iterator()]


def test_an_epoch_has_the_same_order_however_it_is_reached():
    import tensorflow as tf

    from headstart.trainer import data

    ds = tf.data.Dataset.from_tensor_slices((np.zeros((10, 2), "float32"), np.arange(10, dtype="int32")))
    all_three = epochs_of(data.epoch_shuffled(ds, 10, (0, 3), shuffle_buffer=100, seed=4))
    assert len(all_three) == 3 and all(sorted(e) == list(range(10)) for e in all_three)
    assert len({tuple(e) for e in all_three}) == 3, "every epoch has its own order"
    assert epochs_of(data.epoch_shuffled(ds, 10, (2, 3), shuffle_buffer=100, seed=4)) == all_three[2:]
    again = data.epoch_shuffled(ds, 10, (0, 3), shuffle_buffer=100, seed=4)
    assert epochs_of(again) == epochs_of(again) == all_three, "reading it again changes nothing"
    assert epochs_of(data.epoch_shuffled(ds, 10, (0, 3), shuffle_buffer=100, seed=5)) != all_three
    assert epochs_of(data.epoch_shuffled(ds, 4, (0, 2))) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 2
    # the trainer's batches: float32 images, the same order
    batched = data.batches(ds, 10, shuffle_buffer=100, seed=4, epochs=(0, 3))
    assert [list(y) for x, y in batched.as_numpy_iterator()] == all_three


@pytest.mark.parametrize("stop_in", ["head", "tune"])
def test_an_interrupted_run_resumes_to_the_model_of_an_uninterrupted_one(folder_job, tmp_path, stop_in):
    import keras

    from headstart.trainer import Reporter, run_job

    stages = [{"name": "head", "trainBase": "none", "epochs": 3,
               "optimizer": {"type": "SGD", "learningRate": 0.1, "momentum": 0.9}},
              {"name": "tune", "trainBase": "all", "epochs": 3,
               "optimizer": {"type": "SGD", "learningRate": 0.02, "momentum": 0.9}}]

    class StopAfterEpoch2(Reporter):
        def epoch_ended(self, progress):
            if progress.stage == stop_in and progress.epoch == 2:
                raise KeyboardInterrupt

    def job(name):
        return folder_job(stages=stages, output={"uri": str(tmp_path / name), "formats": ["keras"]})

    straight = run_job(job("straight"))
    with pytest.raises(KeyboardInterrupt):
        run_job(job("resumed"), reporter=StopAfterEpoch2())
    resumed = run_job(job("resumed"))
    assert resumed.resumed
    assert [s.history["loss"] for s in resumed.stages] == [s.history["loss"] for s in straight.stages]
    a = keras.saving.load_model(tmp_path / "straight" / "model.keras").get_weights()
    b = keras.saving.load_model(tmp_path / "resumed" / "model.keras").get_weights()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
