"""Benchmark: how long releasing a tf.data iterator takes after a pass that kept TensorFlow busy, with
tf.data's autotuning on (TensorFlow's default) and off (``headstart.trainer.data.untuned``, what the trainer
uses).

``python -m bench.iterator_release [--seconds 3,7,13] [--rounds 3]``

Each pass iterates ``map(AUTOTUNE) -> prefetch(AUTOTUNE)`` over a few elements and runs, per element, a
traced function of matrix products (about half a second on 2 cores), for about the given seconds; then the
iterator is released (``del``), as Keras does at the end of every epoch. The autotuner sleeps between its
rounds for 10 ms, 20 ms, 40 ms, ... up to 60 s, so its rounds fall at 10 ms x (2^k - 1) after the iterator
was made: 2.55 s, 5.11 s, 10.23 s, 20.47 s, 40.95 s, 81.91 s, then every 60 s. A release that waits for the
current sleep ends at the next of those. Prints each pass, then a table of medians and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from . import environment


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.iterator_release", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", default="3,7,13", help="work per pass, comma-separated (default 3,7,13)")
    p.add_argument("--rounds", type=int, default=3, help="passes per length and mode (default 3)")
    args = p.parse_args(argv)
    try:
        args.lengths = [float(s) for s in args.seconds.split(",")]
    except ValueError:
        p.error(f"--seconds: {args.seconds!r} is not a comma-separated list of numbers")
    if args.rounds < 1 or not args.lengths or min(args.lengths) <= 0:
        p.error("--rounds and every --seconds must be above 0")
    return args


def one_pass(work: Any, elements: int, autotune: bool) -> tuple[float, float]:
    """(seconds iterating, seconds releasing the iterator)."""
    import tensorflow as tf

    from headstart.trainer.data import untuned

    ds = tf.data.Dataset.range(elements).map(lambda x: x + 1, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    if not autotune:
        ds = untuned(ds)
    start = time.perf_counter()
    iterator = iter(ds)
    for x in iterator:
        work(x).numpy()
    looped = time.perf_counter()
    del iterator
    return looped - start, time.perf_counter() - looped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    machine = environment.describe()
    a = tf.random.stateless_normal([1500, 1500], seed=[1, 2])

    @tf.function
    def work(x: Any) -> Any:
        y = a
        for _ in range(8):
            y = tf.matmul(y, a) / 40.0
        return tf.reduce_sum(y) + tf.cast(x, tf.float32)

    work(tf.constant(0, tf.int64)).numpy()  # traced before any clock
    t = time.perf_counter()
    work(tf.constant(0, tf.int64)).numpy()
    per_call = time.perf_counter() - t
    print(f"one call of the work: {per_call:.2f}s", flush=True)
    passes: dict[str, list[dict[str, float]]] = {}
    for r in range(args.rounds):
        for length in args.lengths:
            elements = max(1, round(length / per_call))
            for autotune in (True, False):
                looped, released = one_pass(work, elements, autotune)
                key = f"{length:g}s autotune {'on' if autotune else 'off'}"
                passes.setdefault(key, []).append({"loop_s": looped, "release_s": released})
                print(f"round {r + 1}: {key}: loop {looped:.2f}s, release {released:.2f}s, "
                      f"total {looped + released:.2f}s", flush=True)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="releasing a tf.data iterator after a busy pass (medians)")
    for column in ("pass", "loop", "release", "total", "releases over 0.1 s"):
        table.add_column(column)
    summary: dict[str, Any] = {}
    for key, rows in passes.items():
        loop = statistics.median(p["loop_s"] for p in rows)
        release = statistics.median(p["release_s"] for p in rows)
        total = statistics.median(p["loop_s"] + p["release_s"] for p in rows)
        slow = sum(p["release_s"] > 0.1 for p in rows)
        table.add_row(key, f"{loop:.2f}s", f"{release:.2f}s", f"{total:.2f}s", f"{slow} of {len(rows)}")
        summary[key] = {"median_loop_s": round(loop, 2), "median_release_s": round(release, 2),
                        "median_total_s": round(total, 2), "slow_releases": slow, "passes": len(rows),
                        "release_s": [round(p["release_s"], 2) for p in rows]}
    Console().print(table)
    print(json.dumps({"per_call_s": round(per_call, 3), "passes": summary,
                      "machine": {**machine, "load_after": environment.load()}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
