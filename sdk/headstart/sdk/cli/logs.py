"""`headstart logs NAME [-f] [--tail N]`: the trainer's log."""

from __future__ import annotations

import typer

from .options import Target, cluster_command
from .reporting import reported


@cluster_command
def logs(
    name: str = typer.Argument(..., metavar="NAME", help="The FineTuneJob's name."),
    follow: bool = typer.Option(False, "--follow", "-f",
                                help="Stream new lines, across pod restarts, until the job ends."),
    tail: int | None = typer.Option(None, "--tail", metavar="N", min=0,
                                    help="Only the last N lines (then, with -f, what follows)."),
    *, target: Target,
) -> None:
    """Print the trainer's log.

    Of the newest training pod; with -f, of every pod in turn until the job ends."""
    with reported("logs"):
        for line in target.client().logs(name, follow=follow, tail=tail):
            typer.echo(line)
