"""`headstart fetch NAME --to DIR`: bring a job's model here, every file verified."""

from __future__ import annotations

from pathlib import Path

import typer

from .options import Target, cluster_command
from .reporting import reported


@cluster_command
def fetch(
    name: str = typer.Argument(..., metavar="NAME", help="The FineTuneJob's name."),
    to: Path = typer.Option(..., "--to", metavar="DIR", help="The folder to put the model in (created; must be "
                                                             "empty)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what is in the folder (only once the "
                                                               "download is verified)."),
    *, target: Target,
) -> None:
    """Download a job's model, verified.

    Every artifact is checked against its manifest's sha256: from s3://, gs:// and file:// directly, from
    pvc:// through a short-lived helper pod. Nothing is left in the folder unless all of it checks out."""
    with reported("fetch"):
        typer.echo(str(target.client().fetch(name, to, overwrite)))
