"""spec.runtime: deterministic on CPU with a seed; mixed precision and XLA when asked (auto on GPUs)."""

from __future__ import annotations

import numpy as np

TWO_STAGES = [
    {"name": "head", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}},
    {"name": "tune", "trainBase": "all", "epochs": 1, "optimizer": {"type": "SGD", "learningRate": 0.01}},
]


def weights_of(out) -> list:
    import keras

    return keras.saving.load_model(out / "model.keras").get_weights()


def test_same_seed_same_model_on_cpu(folder_job, tmp_path):
    from headstart.trainer import run_job

    kwargs = {"stages": TWO_STAGES, "augmentation": {"flip": "horizontal", "rotation": 0.1},
              "head": {"layers": [{"units": 8, "dropout": 0.3}]}}
    for name in ("a", "b"):
        run_job(folder_job(output={"uri": str(tmp_path / name), "formats": ["keras"]}, **kwargs))
    for x, y in zip(weights_of(tmp_path / "a"), weights_of(tmp_path / "b")):
        np.testing.assert_array_equal(x, y)
    run_job(folder_job(output={"uri": str(tmp_path / "c"), "formats": ["keras"]}, seed=7, **kwargs))
    assert any(not np.array_equal(x, y) for x, y in zip(weights_of(tmp_path / "a"), weights_of(tmp_path / "c")))


def test_mixed_precision_and_xla_when_asked(folder_job, tmp_path):
    import keras

    from headstart.trainer import run_job
    from headstart.trainer.runtime import configure

    job = folder_job(stages=TWO_STAGES, runtime={"mixedPrecision": True, "xla": True},
                     output={"uri": str(tmp_path / "out"), "formats": ["keras"]})
    result = run_job(job)
    assert [s.epochs_completed for s in result.stages] == [1, 1]
    assert "mixed precision True, XLA True" in (tmp_path / "out" / "README.md").read_text()
    model = keras.saving.load_model(tmp_path / "out" / "model.keras")
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    probs = model.predict(np.full((2, 32, 32, 3), 128, "float32"), verbose=0)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-3)
    auto = configure(job.spec.runtime.model_copy(update={"mixed_precision": None, "xla": None}), 1)
    assert (auto.mixed_precision, auto.xla, auto.deterministic) == (auto.gpus > 0, auto.gpus > 0, auto.gpus == 0)
    assert keras.mixed_precision.global_policy().name == ("mixed_float16" if auto.gpus else "float32")
