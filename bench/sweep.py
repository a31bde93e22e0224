"""Benchmark: a frozen stage that sweeps N learning rates on its cached features, against the same stage with
one learning rate, and against the N learning rates run as N separate jobs (same seeds).

``python -m bench.trainer --sweep 8 --repeat 3 [--application ResNet50 --size 128 ...]``

Each round runs the one-rate stage (the spec's --frozen-lr) and the sweeping stage side by side, alternately;
the cost is the median of the rounds' ratios of the two stages' wall times (each from the stage's start to
its end, its feature pass included). Then each rate runs alone as a job of its own; the sweep's chosen
candidate must be the best of them, with the same validation loss. Prints one line per run, then (from
bench.trainer) one JSON line.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.3
"""Issue 20: a sweep of 8 costs at most 1.3x one frozen stage."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """bench.trainer's options of this bench."""
    p.add_argument("--sweep", type=int, default=0, metavar="N",
                   help="bench.sweep: a frozen stage sweeping N learning rates (log range --sweep-min..--sweep-max) "
                   "against the same stage with one, and against the N run as separate jobs")
    p.add_argument("--sweep-min", type=float, default=1e-4, help="--sweep: smallest learning rate (default 1e-4)")
    p.add_argument("--sweep-max", type=float, default=0.3, help="--sweep: largest learning rate (default 0.3)")


def check_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (p.error) a sweep of fewer than 2 learning rates or an empty range."""
    if args.sweep and (args.sweep < 2 or not 0 < args.sweep_min < args.sweep_max):
        p.error("--sweep needs at least 2 learning rates, and 0 < --sweep-min < --sweep-max")


def sweep_rounds(args: argparse.Namespace, parts: dict, folder: Path, work: Path, weights: str | None) -> dict:
    from headstart.api import LogRange

    from .trainer import _fresh, headstart

    rates = LogRange(min=args.sweep_min, max=args.sweep_max, count=args.sweep).values()
    sweep = {"sweep": {"learningRates": rates}}
    rounds = []
    for r in range(args.repeat):
        one = headstart(args, folder, work / "one", weights, args.cpu_bfloat16)
        _fresh()
        swept = headstart(args, folder, work / "swept", weights, args.cpu_bfloat16, frozen=sweep)
        _fresh()
        ratio = swept["frozen_s"] / one["frozen_s"]
        rounds.append({"one_s": one["frozen_s"], "sweep_s": swept["frozen_s"], "ratio": ratio,
                       "candidates": swept["candidates"]})
        print(f"round {r + 1}: one learning rate {one['frozen_s']:.1f}s, sweep of {len(rates)} "
              f"{swept['frozen_s']:.1f}s = {ratio:.2f}x", flush=True)
    alone = []
    for rate in rates:
        args_one = argparse.Namespace(**{**vars(args), "frozen_lr": rate})
        run = headstart(args_one, folder, work / "alone", weights, args.cpu_bfloat16)
        _fresh()
        alone.append({"learning_rate": rate, "val_loss": run["val_loss_frozen"], "val_acc": run["val_acc_frozen"],
                      "frozen_s": run["frozen_s"]})
        print(f"alone: learning rate {rate:g}: val_loss {run['val_loss_frozen']:.4f}, val acc "
              f"{run['val_acc_frozen']:.3f} ({run['frozen_s']:.1f}s)", flush=True)
    return summarize(args, parts, rates, rounds, alone)


def summarize(args: argparse.Namespace, parts: dict, rates: list[float], rounds: list[dict],
              alone: list[dict]) -> dict:
    candidates = rounds[-1]["candidates"]
    chosen = next(c for c in candidates if c["chosen"])
    finite = [a for a in alone if a["val_loss"] == a["val_loss"]]
    best = min(finite, key=lambda a: a["val_loss"])
    same_values = all(_close(c["value"], a["val_loss"]) for c, a in zip(candidates, alone) if c["value"] is not None)
    median = statistics.median(r["ratio"] for r in rounds)
    print(f"sweep of {len(rates)}: median {median:.2f}x one frozen stage over {len(rounds)} round(s) "
          f"(target <= {TARGET_RATIO}x: {'met' if median <= TARGET_RATIO else 'missed'}); chose learning rate "
          f"{chosen['learning_rate']:g} (val_loss {chosen['value']:.4f}); best alone {best['learning_rate']:g} "
          f"(val_loss {best['val_loss']:.4f}); every candidate equals its job alone: {same_values}", flush=True)
    return {
        "bench": "sweep", "application": args.application, "base": args.base, "size": args.size,
        "train_images": len(parts["train"]), "val_images": len(parts["validation"]), "batch": args.batch,
        "frozen_epochs": args.frozen_epochs, "optimizer": args.frozen_optimizer, "rates": rates,
        "one_s": [round(r["one_s"], 2) for r in rounds], "sweep_s": [round(r["sweep_s"], 2) for r in rounds],
        "ratios": [round(r["ratio"], 3) for r in rounds], "median_ratio": round(median, 3),
        "target_ratio": TARGET_RATIO, "chosen_learning_rate": chosen["learning_rate"],
        "best_alone_learning_rate": best["learning_rate"], "chosen_is_best_alone":
            chosen["learning_rate"] == best["learning_rate"] and _close(chosen["value"], best["val_loss"]),
        "candidates_equal_jobs_alone": same_values,
        "candidate_val_loss": [c["value"] for c in candidates],
        "alone_val_loss": [round(a["val_loss"], 6) for a in alone],
        "alone_frozen_s": [round(a["frozen_s"], 2) for a in alone],
    }


def _close(a: Any, b: Any, rel: float = 1e-4) -> bool:
    return a is not None and b is not None and abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)
