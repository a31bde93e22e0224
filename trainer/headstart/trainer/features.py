"""The feature cache: for a stage whose base is frozen and whose images are not augmented, the base's
(pooled) features are computed once and the head trains on them. The head's layers are the full model's
own, so the full model afterwards computes exactly what the end-to-end path would.

The pass over the images costs one forward pass of the base and little more (``compute``):

* the base's forward function is traced once, with an open batch dimension, for every split and batch;
* while it is traced (Python, one core), the images are decoded and resized into the data cache (tf.data's
  threads), so tracing and decoding overlap instead of following each other;
* its first call (TensorFlow optimizes the graph then) is made on a single image, still while decoding;
* then the forward pass runs over the cached images with nothing else competing for the cores: on every
  replica when several devices train (a MirroredStrategy), in bfloat16 where the runtime says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from headstart.api import StageSpec

from .data import untuned


def applies(stage: StageSpec, augment: Any | None) -> bool:
    return stage.trainable.frozen and augment is None


def extractor(feature_model: Any, xla: bool = False, dtype: str = "float32") -> Any:
    """The base's forward pass, traced once for every split and batch size (the batch dimension is open);
    features come out in the model's output dtype. ``dtype`` "bfloat16" computes the base in bfloat16 (see
    _computing_in)."""
    import tensorflow as tf

    inp = feature_model.inputs[0]
    spec = tf.TensorSpec([None, *inp.shape[1:]], inp.dtype)
    out_dtype = feature_model.outputs[0].dtype

    def forward(x: Any) -> Any:
        return tf.cast(feature_model(x, training=False), out_dtype)

    fn = tf.function(forward, input_signature=[spec], jit_compile=xla)
    if dtype != "float32":
        with _computing_in(feature_model, dtype):
            fn.get_concrete_function()  # traced now: the trace keeps the dtype, the layers get theirs back
    return fn


def extract(fn: Any, feature_model: Any, batched: Any) -> tuple[Any, Any]:
    """(features, labels) as numpy arrays for every example of a batched dataset, in order; ``fn`` comes from
    ``extractor(feature_model)``."""
    feats, labels = [], []
    for x, y in batched:
        feats.append(fn(x).numpy())
        labels.append(y.numpy())
    return _concatenate(feats, labels, feature_model)


def compute(feature_model: Any, splits: dict[str, Any], batches: Callable[[Any], Any], *, cached: bool,
            xla: bool = False, dtype: str = "float32", strategy: Any | None = None) -> dict[str, tuple[Any, Any]]:
    """(features, labels) of every split: ``splits`` maps names to unbatched datasets of (image, label),
    ``batches`` batches one for the pass. ``cached``: the splits are cached datasets, so decoding them
    first (while the forward function is traced) fills the cache the pass then reads."""
    batched = {name: batches(ds) for name, ds in splits.items()}
    filler = _CacheFiller(list(splits.values())) if cached else None
    if filler is not None:
        filler.start()
    try:
        if strategy is None:
            fn = extractor(feature_model, xla, dtype)
            if not xla:  # XLA compiles per input shape: a one-image call would compile a shape never used
                fn(_zeros(feature_model, 1))  # the graph is optimized on the first call: do it while decoding
            run = lambda ds: extract(fn, feature_model, ds)  # noqa: E731
        else:
            run = _DistributedPass(feature_model, strategy, xla, dtype)
            for ds in batched.values():
                run.trace(ds)
        if filler is not None:
            filler.join()  # re-raises the filler's error
    except BaseException:  # a trace error, the filler's, or an interrupt: the thread stops after its batch
        if filler is not None:
            filler.cancel()
            filler.join()
        raise
    return {name: run(ds) for name, ds in batched.items()}


def dataset(features: Any, labels: Any, batch_size: int, *, shuffle_buffer: int = 0, seed: int = 0) -> Any:
    """Batches of cached features, shuffled exactly as data.batches shuffles the images."""
    import tensorflow as tf

    ds = untuned(tf.data.Dataset.from_tensor_slices((features, labels)))
    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class _CacheFiller:
    """Iterates cached datasets once in a thread: tf.data decodes and resizes into the cache in its own
    threads (the iterating thread mostly waits, without the GIL). ``join`` re-raises its error."""

    def __init__(self, datasets: list[Any]):
        self.datasets = datasets
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="headstart-cache-fill", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        import tensorflow as tf

        try:
            for ds in self.datasets:
                for _ in ds.batch(64).prefetch(tf.data.AUTOTUNE):
                    if self.stopped.is_set():
                        return
        except BaseException as exc:  # handed to the caller by join
            self.error = exc

    def cancel(self) -> None:
        """Stop after the batch being decoded (the caller is raising anyway; join raises nothing then)."""
        self.stopped.set()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None and not self.stopped.is_set():
            raise self.error


class _DistributedPass:
    """The pass on every replica: each global batch is split across the replicas, whose results come back
    in replica order (each replica gets a contiguous slice of the batch), so the examples keep their order.
    One traced function per element spec (every split has the same), traced by ``trace`` or on first use."""

    def __init__(self, feature_model: Any, strategy: Any, xla: bool, dtype: str):
        self.feature_model = feature_model
        self.strategy = strategy
        self.xla = xla
        self.dtype = dtype
        self.traced: dict[str, Any] = {}

    def trace(self, batched: Any) -> tuple[Any, Any]:
        """(the distributed dataset, its traced function)."""
        import tensorflow as tf

        dist = self.strategy.experimental_distribute_dataset(batched)
        key = repr(dist.element_spec)
        if key not in self.traced:
            model, strategy = self.feature_model, self.strategy
            out_dtype = model.outputs[0].dtype

            def per_replica(x: Any, y: Any) -> tuple[Any, Any]:
                return tf.cast(model(x, training=False), out_dtype), y

            fn = tf.function(lambda batch: strategy.run(per_replica, args=batch),
                             input_signature=[dist.element_spec], jit_compile=self.xla)
            with _computing_in(model, self.dtype):
                fn.get_concrete_function()
            self.traced[key] = fn
        return dist, self.traced[key]

    def __call__(self, batched: Any) -> tuple[Any, Any]:
        dist, fn = self.trace(batched)
        local = self.strategy.experimental_local_results
        feats, labels = [], []
        for batch in dist:
            out_x, out_y = fn(batch)
            feats += [t.numpy() for t in local(out_x)]
            labels += [t.numpy() for t in local(out_y)]
        return _concatenate(feats, labels, self.feature_model)


class _computing_in:  # noqa: N801 (a context manager, used as a function)
    """Within the block, the base's layers compute in ``dtype`` (policy mixed_<dtype>: float32 variables,
    cast when read); on leaving, every layer gets its own policy back. Only what is traced inside keeps it.
    Layers whose policy is pinned to float32 on purpose (the preprocessing layer, the head) are not in the
    base. float32 does nothing."""

    def __init__(self, feature_model: Any, dtype: str):
        self.layers = [] if dtype == "float32" else _base_layers(feature_model)
        self.policy = f"mixed_{dtype}"
        self.saved: list[tuple[Any, Any]] = []

    def __enter__(self) -> None:
        for layer in self.layers:
            self.saved.append((layer, layer.dtype_policy))
            layer.dtype_policy = self.policy

    def __exit__(self, *exc: Any) -> None:
        for layer, policy in self.saved:
            layer.dtype_policy = policy
        self.saved.clear()


def _base_layers(feature_model: Any) -> list[Any]:
    from .base import BASE_NAME

    try:
        base = feature_model.get_layer(BASE_NAME)
    except ValueError:
        return []
    out = []

    def walk(layer: Any) -> None:
        out.append(layer)
        for inner in getattr(layer, "layers", []):
            walk(inner)

    walk(base)
    return out


def _zeros(feature_model: Any, n: int) -> Any:
    import tensorflow as tf

    inp = feature_model.inputs[0]
    return tf.zeros([n, *inp.shape[1:]], inp.dtype)


def _concatenate(feats: list[Any], labels: list[Any], feature_model: Any) -> tuple[Any, Any]:
    import numpy as np

    if not feats:
        shape = tuple(int(d) for d in feature_model.outputs[0].shape[1:])
        return np.zeros((0, *shape), feature_model.outputs[0].dtype), np.zeros((0,), "int32")
    return np.concatenate(feats), np.concatenate(labels)
