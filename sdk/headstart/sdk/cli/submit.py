"""`headstart submit -f FILE`: create a FineTuneJob (checked first, as `headstart validate` does)."""

from __future__ import annotations

import typer

from .options import Target, cluster_command
from .reporting import reported
from .tables import progress_line


@cluster_command
def submit(
    file: str = typer.Option(..., "--filename", "-f", metavar="FILE",
                             help="The FineTuneJob manifest (YAML or JSON; - for standard input)."),
    wait: bool = typer.Option(False, "--wait", help="Wait until it succeeds (exit 1 if it fails, 3 on timeout)."),
    follow: bool = typer.Option(False, "--follow", help="Stream the training log while waiting (implies --wait)."),
    timeout: float = typer.Option(24 * 3600, "--timeout", metavar="SECONDS", help="How long --wait waits at most."),
    *, target: Target,
) -> None:
    """Create a FineTuneJob from a manifest.

    The manifest is checked first, as `headstart validate` does, and only then the kubeconfig. The job's
    name goes to standard output; with --local a background trainer on this machine runs it."""
    from headstart.sdk.client import load

    with reported("submit"):
        job = load(file, "local" if target.local else "cluster")
        sdk = target.client()
        name = sdk.submit(job)
        typer.echo(f"finetunejob/{name} created", err=True)
        if target.local and not (wait or follow):
            typer.echo(f"a background trainer runs it here (its record: {sdk.backend.root}/.jobs/{name}/); "
                       f"follow it with `headstart watch {name} --local` or `headstart logs {name} -f --local`, "
                       f"stop it with `headstart suspend {name} --local` or `headstart delete {name} --local`",
                       err=True)
        if follow:
            for line in sdk.logs(name, follow=True, timeout=timeout):
                typer.echo(line, err=True)
        if wait or follow:
            done = sdk.wait(name, timeout=timeout, callback=lambda j: typer.echo(progress_line(j), err=True))
            typer.echo(f"{name} {done.status.phase.value}: {done.status.model.uri if done.status.model else ''}")
        else:
            typer.echo(name)
