"""`headstart delete | suspend | resume NAME...`: act on jobs by name, as kubectl does on several at once
(each said in one line; the exit code is 1 when any of them failed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from headstart.sdk import exit_codes

from .options import Target, cluster_command
from .reporting import reported

NAMES = typer.Argument(..., metavar="NAME", help="FineTuneJob names.")


def _each(command: str, names: list[str], target: Target, act: Callable[[Any, str], None], done: str) -> None:
    from headstart.sdk.errors import Forbidden, NotFound

    with reported(command):
        sdk = target.client()
        failed = False
        for name in names:
            try:
                act(sdk, name)
            except (NotFound, Forbidden) as exc:  # about this name: the others are still done, as kubectl does
                typer.echo(f"headstart {command}: {exc}", err=True)
                failed = True
            else:
                typer.echo(f"finetunejob/{name} {done}")
        if failed:
            raise typer.Exit(exit_codes.FAILED)


@cluster_command
def delete(names: list[str] = NAMES, *, target: Target,
           wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until each job is gone, as kubectl does "
                                                                   "(its name may then be used again)."),
           timeout: float = typer.Option(60.0, "--timeout", min=1, help="Seconds to wait for each job.")) -> None:
    """Delete FineTuneJobs.

    Their Jobs, pods and the rest go with them; their models stay in storage."""
    _each("delete", names, target, lambda sdk, name: sdk.delete(name, timeout if wait else 0), "deleted")


@cluster_command
def suspend(names: list[str] = NAMES, *, target: Target) -> None:
    """Suspend jobs: their pods stop.

    Sets spec.runPolicy.suspend; `headstart resume` continues from the last checkpoint."""
    _each("suspend", names, target, lambda sdk, name: sdk.suspend(name), "suspended")


@cluster_command
def resume(names: list[str] = NAMES, *, target: Target) -> None:
    """Resume suspended jobs.

    The trainer continues from its last checkpoint."""
    _each("resume", names, target, lambda sdk, name: sdk.resume(name), "resumed")
