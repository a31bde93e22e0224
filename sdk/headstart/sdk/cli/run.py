"""`headstart run FILE [--output DIR]`: train a FineTuneJob locally, no cluster.

The trainer (and TensorFlow) is imported only when the command runs, so `headstart --help` stays fast
and works without the trainer extra.
"""

from __future__ import annotations

from pathlib import Path

import typer

LOCAL_RUNS = Path("headstart-runs")


def run(
    file: Path = typer.Argument(..., metavar="FILE", help="FineTuneJob manifest (YAML or JSON), or - for stdin."),
    output: str | None = typer.Option(
        None, "--output", "-o",
        help="Where the model goes (path or URI). Default: ./headstart-runs/<job name>/."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v",
        help="Show TensorFlow's native start-up lines (CUDA probing and the like), hidden by default."),
) -> None:
    """Train a job here, no cluster.

    Rich progress per stage and epoch, then a summary. Exit 0 on success; on failure one line saying why
    and a non-zero exit. baseModel.fromJob resolves to ./headstart-runs/<that job>/."""
    from headstart.trainer.cli import INSTALL_HINT, tensorflow_missing

    if tensorflow_missing():
        typer.echo(f"headstart run: {INSTALL_HINT}", err=True)
        raise typer.Exit(3)
    from headstart.api import ManifestError, load_job_file

    try:
        job = load_job_file(str(file))
    except ManifestError as exc:
        for line in exc.lines:
            typer.echo(f"headstart run: {line}", err=True)
        raise typer.Exit(2) from None
    destination = output or str(LOCAL_RUNS / job.name)

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
        raise typer.Exit(3) from None
    code = run_loaded(job, destination, RichReporter(), resolve)
    raise typer.Exit(code)
