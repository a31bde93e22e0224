"""The offline quickstart's jobs: run, compare and summarise (its data is in data.py).

Offline quickstart: real transfer learning on the handwritten digits bundled with scikit-learn.

``python -m headstart.quickstart [--workdir DIR]`` needs no download. It writes two image folders
from sklearn's 8x8 digits (upscaled to 24x24, placed on a 32x32 canvas, as PNGs), split by *writer
sample* so no source image reaches the target:

* source: half of the samples (writers), randomly shifted, lightly cluttered (one stroke of another
  digit, faint noise), rendered several times: plenty of labelled images;
* target: the other half, in heavier clutter (two strokes of other digits, more noise), with only a few
  labelled images per class for training and the rest for testing.

It then runs the three FineTuneJobs of ``examples/quickstart/`` through the trainer (``run_job``): a small
CNN base (a ``.keras`` architecture written here, random init) trained on the source, the same base
transferred to the target (``fromJob`` + ``cutAt``, head frozen then fine-tuned), and the same
architecture trained from scratch on the same few target labels. The summary compares their test
accuracy. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import CANVAS, QuickstartError, Sizes, prepare_data

DEFAULT_WORKDIR = "headstart-quickstart"
MANIFEST_WORKDIR = "./headstart-quickstart"
"""The data and base paths in the example manifests start with this; replaced by the real workdir."""
SOURCE, TRANSFER, SCRATCH = "digits-source", "digits-transfer", "digits-scratch"
JOBS = (SOURCE, TRANSFER, SCRATCH)
BASE_FILE = "digits-cnn.keras"


def write_base(path: Path, seed: int = 0) -> None:
    """The base architecture as a user would bring it: a small CNN, random init, raw 0-255 RGB in."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((CANVAS, CANVAS, 3), name="pixels")
    x = layers.Rescaling(1 / 255, name="rescale")(inputs)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="features")(x)
    path.parent.mkdir(parents=True, exist_ok=True)
    keras.Model(inputs, x, name="digits_cnn").save(path)


# ---- jobs --------------------------------------------------------------------------------------


def find_manifests(given: str | None = None) -> Path:
    """The folder of the quickstart's manifests: ``given``, else examples/quickstart of this checkout
    or of the current directory."""
    candidates = [Path(given)] if given else [
        Path(__file__).resolve().parents[3] / "examples" / "quickstart", Path("examples") / "quickstart"]
    for folder in candidates:
        if all((folder / f"{name}.yaml").is_file() for name in JOBS):
            return folder
    where = " or ".join(str(c) for c in candidates)
    raise QuickstartError(f"no quickstart manifests ({', '.join(f'{n}.yaml' for n in JOBS)}) in {where}; "
                          "give the folder with --manifests")


def _rebase(value: Any, workdir: str) -> Any:
    if isinstance(value, dict):
        return {k: _rebase(v, workdir) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, workdir) for v in value]
    if isinstance(value, str) and (value == MANIFEST_WORKDIR or value.startswith(MANIFEST_WORKDIR + "/")):
        return workdir + value[len(MANIFEST_WORKDIR):]
    return value


def load_jobs(manifests: Path, workdir: Path, sizes: Sizes) -> dict[str, Any]:
    """The three jobs, their paths moved into ``workdir`` and their epochs scaled."""
    import yaml

    from headstart.api import check_document

    jobs = {}
    for name in JOBS:
        path = manifests / f"{name}.yaml"
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise QuickstartError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from exc
        if not isinstance(raw, dict):
            raise QuickstartError(f"{path}: not a FineTuneJob manifest")
        raw = _rebase(raw, str(workdir.resolve()))
        spec = raw.get("spec")
        if isinstance(spec, dict):
            for stage in spec.get("stages") or []:
                if isinstance(stage, dict) and isinstance(stage.get("epochs"), int):
                    stage["epochs"] = max(1, round(stage["epochs"] * sizes.epoch_scale))
            dataset = spec.get("dataset")
            if name != SOURCE and isinstance(dataset, dict) and isinstance(dataset.get("splits", {}), dict):
                dataset.setdefault("splits", {})["test"] = 1 - sizes.train_per_class / sizes.target_per_class
        job, problems = check_document(raw, target="local")  # `headstart run`'s jobs
        errors = [p.render() for p in problems if p.severity == "error"]
        if job is None or errors:
            raise QuickstartError(f"{path}: {errors[0] if errors else 'invalid manifest'}")
        if job.name != name:
            raise QuickstartError(f"{path}: metadata.name is {job.name!r}; expected {name!r}")
        jobs[name] = job
    return jobs


@dataclass
class Outcome:
    name: str
    test_accuracy: float
    val_accuracy: float
    seconds: float
    train_images: int
    test_images: int
    stages: list[str]


@dataclass
class Summary:
    outcomes: dict[str, Outcome]
    prepare_seconds: float
    total_seconds: float
    sizes: Sizes

    @property
    def gain(self) -> float:
        return self.outcomes[TRANSFER].test_accuracy - self.outcomes[SCRATCH].test_accuracy


class _StageLines:
    """A quiet reporter: one line per stage and per job (the full progress is in each job's output)."""

    def __init__(self, console: Any):
        from headstart.trainer.reporting import Reporter

        self.console = console
        self.counts: dict[str, int | None] = {}
        parent = self

        class _R(Reporter):
            def started(self, plan: Any) -> None:
                parent.counts = dict(plan.examples)
                counts = ", ".join(f"{k} {v}" for k, v in plan.examples.items() if v is not None)
                console.print(f"[bold]{plan.job_name}[/]: {len(plan.class_names)} classes ({counts})")

            def stage_ended(self, result: Any) -> None:
                how = " on cached features" if result.feature_cache else ""
                last = {k: v[-1] for k, v in result.history.items() if v}
                acc = f", accuracy {last['accuracy']:.3f}" if "accuracy" in last else ""
                console.print(f"  stage {result.name}: {result.epochs_completed} epochs{how}{acc}, "
                              f"{result.duration_seconds:.1f}s")

        self.reporter = _R()


def run_quickstart(workdir: Path, sizes: Sizes | None = None, manifests: Path | None = None,
                   console: Any | None = None, seed: int = 0) -> Summary:
    """Prepare the data and the base, run the three jobs, and return what they scored."""
    from rich.console import Console

    from headstart.trainer.errors import TrainerError
    from headstart.trainer.runner import run_job

    started = time.monotonic()
    sizes = sizes or Sizes()
    console = console or Console()
    jobs = load_jobs(manifests or find_manifests(), workdir, sizes)
    counts = prepare_data(workdir, sizes, seed)
    write_base(workdir / BASE_FILE, seed)
    runs = workdir / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    prepared = time.monotonic() - started
    console.print(f"data: {counts['source']} source images, {counts['target']} target images "
                  f"({sizes.train_per_class} labelled per class) in {workdir / 'data'} ({prepared:.1f}s)")
    lines = _StageLines(console)
    outcomes = {}
    for name in JOBS:
        try:
            result = run_job(jobs[name], str(runs / name), lines.reporter,
                             resolve_from_job=lambda job: str(runs / job))
        except TrainerError as exc:
            raise QuickstartError(f"job {name}: {exc}") from exc
        nan = float("nan")
        outcomes[name] = Outcome(name, result.metrics.get("test_accuracy", nan),
                                 result.metrics.get("val_accuracy", nan), result.duration_seconds,
                                 int(lines.counts.get("train") or 0), int(lines.counts.get("test") or 0),
                                 [s.name for s in result.stages])
    return Summary(outcomes, prepared, time.monotonic() - started, sizes)


def prepare(workdir: Path, sizes: Sizes | None = None, seed: int = 0) -> dict[str, int]:
    """Only the data and the base, for running the three manifests with `headstart run` afterwards."""
    counts = prepare_data(workdir, sizes or Sizes(), seed)
    write_base(workdir / BASE_FILE, seed)
    return counts


def _give(root: Path, uid: int) -> None:
    """chown -R uid:uid root (the trainer in a pod runs as uid 1000 and writes its outputs beside the data)."""
    import os

    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, uid)


def summary_from_runs(runs: Path, sizes: Sizes | None = None) -> Summary:
    """The summary of three jobs already run (e.g. by `headstart run`), from their metrics.json."""
    import json

    outcomes = {}
    for name in JOBS:
        path = runs / name / "metrics.json"
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise QuickstartError(f"{path}: no complete run of {name} ({exc})") from exc
        final, examples, nan = report.get("final", {}), report.get("examples", {}), float("nan")
        outcomes[name] = Outcome(name, final.get("test_accuracy", nan), final.get("val_accuracy", nan),
                                 sum(s.get("duration_seconds") or 0.0 for s in report.get("stages", [])),
                                 int(examples.get("train") or 0), int(examples.get("test") or 0),
                                 [s["name"] for s in report.get("stages", [])])
    return Summary(outcomes, 0.0, sum(o.seconds for o in outcomes.values()), sizes or Sizes())


def print_summary(summary: Summary, console: Any) -> None:
    from rich.table import Table

    out = summary.outcomes
    table = Table(title=f"Transfer learning with {summary.sizes.train_per_class} labels per class",
                  caption=f"{SOURCE}: a CNN trained on digits of other writers (light clutter); "
                          f"{TRANSFER}: its base, new head, then fine-tuned; {SCRATCH}: the same CNN from "
                          "random init. Target: new writers' digits in heavier clutter.")
    for column in ("job", "train images", "test accuracy", "time"):
        table.add_column(column, justify="left" if column == "job" else "right")
    for name in JOBS:
        o = out[name]
        acc = f"(val {o.val_accuracy:.1%})" if name == SOURCE else f"{o.test_accuracy:.1%}"
        table.add_row(name, str(o.train_images), acc, f"{o.seconds:.1f}s")
    table.add_section()
    style = "bold green" if summary.gain > 0 else "bold red"
    table.add_row("gain (transfer - scratch)", "", f"[{style}]{summary.gain:+.1%}[/]",
                  f"{summary.total_seconds:.1f}s total")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m headstart.quickstart", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--workdir", default=DEFAULT_WORKDIR, help="where data, base and runs go "
                        f"(default ./{DEFAULT_WORKDIR})")
    parser.add_argument("--manifests", default=None, help="folder of the quickstart's manifests "
                        "(default: examples/quickstart)")
    parser.add_argument("--min-gain", type=float, default=0.0,
                        help="exit 1 unless transfer beats scratch by this much (default 0)")
    parser.add_argument("--owner", type=int, default=None, metavar="UID",
                        help="with --prepare-only: give the workdir to this user (1000: the trainer image's user, for "
                             "a hostPath volume in a local cluster)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show TensorFlow's native start-up lines (hidden by default, as in headstart run)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--prepare-only", action="store_true",
                      help="write the data and the base only, then run the manifests with `headstart run`")
    mode.add_argument("--compare", metavar="RUNS", default=None,
                      help="only print the summary of the three jobs' outputs under RUNS (e.g. headstart-runs)")
    args = parser.parse_args(argv)
    from rich.console import Console

    console = Console()
    try:
        if not args.compare:
            from headstart.trainer.startup import start_tensorflow

            start_tensorflow(quiet=not args.verbose)
        if args.prepare_only:
            counts = prepare(Path(args.workdir))
            if args.owner is not None:
                _give(Path(args.workdir), args.owner)
            console.print(f"data: {counts['source']} source and {counts['target']} target images, and the base "
                          f"architecture, in {args.workdir}")
            return 0
        if args.compare:
            summary = summary_from_runs(Path(args.compare))
        else:
            summary = run_quickstart(Path(args.workdir), manifests=find_manifests(args.manifests),
                                     console=console)
    except QuickstartError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:  # e.g. a workdir that cannot be written
        print(f"error: {exc.strerror or exc}: {exc.filename or args.workdir}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    print_summary(summary, console)
    if not summary.gain > args.min_gain:
        print(f"error: transfer beat scratch by {summary.gain:+.1%}, less than --min-gain {args.min_gain:.1%}",
              file=sys.stderr, flush=True)
        return 1
    return 0
