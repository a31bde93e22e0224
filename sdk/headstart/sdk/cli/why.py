"""`headstart why NAME`: a job's state in plain words, and what to do next."""

from __future__ import annotations

import typer

from .options import Target, cluster_command
from .reporting import reported


@cluster_command
def why(name: str = typer.Argument(..., metavar="NAME", help="The FineTuneJob's name."), *, target: Target) -> None:
    """Explain a job's state in plain words.

    What it is doing, what it waits for or why it failed, recent events, and what to do next."""
    from headstart.sdk.explain import explain, render

    with reported("why"):
        sdk = target.client()
        job = sdk.get(name)
        for line in render(explain(job, sdk.events(name), local=target.local)):
            typer.echo(line)
