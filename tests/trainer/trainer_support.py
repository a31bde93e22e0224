"""Helpers of the trainer tests (a uniquely named module: `conftest` is ambiguous across test folders):
tiny images, a tiny base model, job specs, a recording reporter, the trainer's subprocess environment."""

from __future__ import annotations

import copy
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

COLORS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 50, 40)}


def write_image_folder(root: Path, per_class: int = 8, size: int = 24, seed: int = 0) -> Path:
    """One subfolder per class of small PNGs whose colour gives the class away."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    for name, color in COLORS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-30, 30, size=(size, size + i % 3, 3))
            img = np.clip(np.array(color)[None, None, :] + noise, 0, 255).astype("uint8")
            (root / name / f"{i:03d}.png").write_bytes(tf.io.encode_png(img).numpy())
    return root


def tiny_model(size: int = 32) -> Any:
    """A small convolutional 'pretrained' model with BatchNormalization, taking raw 0-255 pixels."""
    import keras

    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    return keras.Model(inputs, x, name="tiny")



def job_dict(name: str = "tiny", *, base: dict | None = None, dataset: dict | None = None,
             stages: list[dict] | None = None, output: str | dict = "unused", **spec: Any) -> dict:
    doc = {
        "apiVersion": "headstart.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": name},
        "spec": {
            "baseModel": base or {},
            "dataset": dataset or {},
            "stages": stages or [
                {"name": "head", "trainBase": "none", "epochs": 2,
                 "optimizer": {"type": "Adam", "learningRate": 0.01}},
            ],
            "output": output if isinstance(output, dict) else {"uri": output},
            **spec,
        },
    }
    return copy.deepcopy(doc)


def make_job(**kwargs: Any) -> Any:
    from headstart.api import FineTuneJob

    return FineTuneJob.model_validate(job_dict(**kwargs))



class Recorder:
    """A Reporter that remembers every event, to check what ran (and that nothing did)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        if name in ("started", "stage_started", "batch_ended", "epoch_ended", "stage_ended", "message",
                    "completed", "failed"):
            return lambda *args: self.events.append((name, args))
        raise AttributeError(name)

    def names(self) -> list[str]:
        return [n for n, _ in self.events if n != "batch_ended"]


REPO = Path(__file__).resolve().parents[2]


def trainer_env(**extra: str) -> dict[str, str]:
    import sys

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / p) for p in ("sdk", "trainer", "operator"))
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["PYTHON"] = sys.executable
    env.update(extra)
    return env


def write_job_file(path: Path, doc: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(doc))
    return path





def wait_for_line(proc: Any, text: str, timeout: float) -> list[str]:
    """A trainer subprocess's stdout lines up to the first with ``text`` (the rest is read in the background,
    so the pipe never fills); an AssertionError if it ends first."""
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            q.put(line.rstrip("\n"))
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen, deadline = [], time.monotonic() + timeout
    while True:
        line = q.get(timeout=max(0.1, deadline - time.monotonic()))
        assert line is not None, f"the trainer ended before {text!r}: {seen}"
        seen.append(line)
        if text in line:
            return seen
