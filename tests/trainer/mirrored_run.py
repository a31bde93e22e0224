"""Run by test_distribution in a subprocess: splits the CPU into logical devices before TensorFlow starts
(so the test process keeps its own configuration), then trains a job under the MirroredStrategy the trainer
picks, once interrupted and resumed, once straight through, and compares the feature pass with a
single-device one. Prints one JSON line.

``python tests/trainer/mirrored_run.py JOB.json OUT_DIR REPLICAS``
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    job_path, out, replicas = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)

    from headstart.api import FineTuneJob
    from headstart.trainer import Reporter, run_job

    with open(job_path) as f:
        job = FineTuneJob.model_validate(json.load(f))
    messages: list[str] = []

    class StopInTune(Reporter):
        """Interrupts the run (as Ctrl-C would) after the first epoch of the second stage."""

        def message(self, text: str) -> None:
            messages.append(text)

        def epoch_ended(self, progress) -> None:
            if progress.stage_index == 1 and progress.epoch == 1:
                raise KeyboardInterrupt

    try:
        run_job(job, f"{out}/interrupted", StopInTune())
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    resumed = run_job(job, f"{out}/interrupted")
    straight = run_job(job, f"{out}/straight")
    return print(json.dumps({
        "interrupted": interrupted, "resumed": resumed.resumed,
        "messages": messages, "features": _features_match(job),
        "val_accuracy": straight.metrics.get("val_accuracy"),
        "stages": [s.epochs_completed for s in straight.stages],
    })) or 0


def _features_match(job) -> dict:
    """The distributed feature pass against the single-device one, on the same model and data."""
    import tempfile

    import numpy as np

    from headstart.trainer import data, distribution, features
    from headstart.trainer.base import build_base
    from headstart.trainer.head import assemble

    dist = distribution.select()
    spec = job.spec
    with tempfile.TemporaryDirectory() as work, dist.scope():
        base = build_base(spec.base_model, work)
        ds = data.load(spec.dataset, base.image_size, spec.seed, work)
        model = assemble(base, spec.head, len(ds.class_names))
        splits = {k: v for k, v in ds.splits.items() if k != "test"}
        batch = dist.global_batch(spec.dataset.batch_size)
        mirrored = features.compute(model.features, splits, lambda d: data.batches(d, batch), cached=True,
                                    strategy=dist.strategy)
        single = features.compute(model.features, splits, lambda d: data.batches(d, batch), cached=True)
    out = {"replicas": dist.replicas}
    for name in splits:
        (fm, lm), (fs, ls) = mirrored[name], single[name]
        out[name] = {"n": len(lm), "labels_equal": bool(np.array_equal(lm, ls)),
                     "max_diff": float(np.abs(fm - fs).max()) if len(fm) else 0.0}
    return out


if __name__ == "__main__":
    sys.exit(main())
