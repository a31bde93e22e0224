"""`headstart run FILE [--output-uri DIR]`: train a FineTuneJob locally, no cluster.

The trainer (and TensorFlow) is imported only when the command runs, so `headstart --help` stays fast
and works without the trainer extra. Its exit codes are the CLI's table (headstart.sdk.exit_codes): a
failure is the trainer's one line and exit 1 whatever the trainer's own code (which the operator reads in a
pod: trainer/README.md), 130 when interrupted.
"""

from __future__ import annotations

from pathlib import Path

import typer

from headstart.sdk import exit_codes

LOCAL_RUNS = Path("headstart-runs")


def run(
    file: Path = typer.Argument(..., metavar="FILE", help="FineTuneJob manifest (YAML or JSON), or - for stdin."),
    output_uri: str | None = typer.Option(
        None, "--output-uri", metavar="URI",
        help="Where the model goes (a path or URI). Default: ./headstart-runs/<job name>/."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v",
        help="Show TensorFlow's native start-up lines (CUDA probing and the like), hidden by default."),
) -> None:
    """Train a job here, no cluster.

    Rich progress per stage and epoch, then a summary. Exit 0 on success; on failure one line saying why
    and exit 1 (130 when interrupted). baseModel.fromJob resolves to ./headstart-runs/<that job>/."""
    from headstart.trainer.cli import INSTALL_HINT, tensorflow_missing

    if tensorflow_missing():
        typer.echo(f"headstart run: {INSTALL_HINT}", err=True)
        raise typer.Exit(exit_codes.FAILED)
    from headstart.api import ManifestError, load_job_file

    try:
        job = load_job_file(str(file))
    except ManifestError as exc:
        for line in exc.lines:
            typer.echo(f"headstart run: {line}", err=True)
        raise typer.Exit(exit_codes.FAILED) from None
    destination = output_uri or str(LOCAL_RUNS / job.name)

    def resolve(name: str) -> str:
        return str((LOCAL_RUNS / name).resolve())

    from headstart.trainer.cli import run_loaded
    from headstart.trainer.console import RichReporter
    from headstart.trainer.startup import start_tensorflow

    try:
        start_tensorflow(quiet=not verbose)
    except ImportError as exc:
        typer.echo(f"headstart run: TensorFlow does not start: {exc} (--verbose shows its start-up lines)",
                   err=True)
        raise typer.Exit(exit_codes.FAILED) from None
    raise typer.Exit(exit_codes.from_trainer(run_loaded(job, destination, RichReporter(), resolve)))
