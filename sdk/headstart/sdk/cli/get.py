"""`headstart get NAME` and `headstart list`: FineTuneJobs as a table (or -o wide|json|yaml|name)."""

from __future__ import annotations

import typer

from .options import Target, check_output, cluster_command, output_option
from .reporting import reported
from .tables import FORMATS, picture_lines, print_jobs, sweep_lines


@cluster_command
def get(
    name: str = typer.Argument(..., metavar="NAME", help="The FineTuneJob's name."),
    output: str = output_option("table", FORMATS),
    *, target: Target,
) -> None:
    """Show one FineTuneJob.

    A table row (then what each sweep chose and where the model card's pictures are), or the whole object
    with -o json|yaml."""
    check_output(output, "get", FORMATS)
    with reported("get"):
        job = target.client().get(name)
        print_jobs([job], output, single=True)
        if output in ("table", "wide") and (notes := sweep_lines(job) + picture_lines(job)):
            typer.echo("\n" + "\n".join(notes))


@cluster_command
def list_jobs(
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Jobs of every namespace."),
    selector: str | None = typer.Option(None, "--selector", "-l", metavar="SELECTOR",
                                        help="Label selector, e.g. team=vision."),
    output: str = output_option("table", FORMATS),
    *, target: Target,
) -> None:
    """List FineTuneJobs.

    Of the namespace, or of all with -A; -o wide adds the training Job, the model and the message."""
    check_output(output, "list", FORMATS)
    with reported("list"):
        jobs = target.client().list(selector, all_namespaces)
        if not jobs and output in ("table", "wide"):
            typer.echo("no FineTuneJobs found", err=True)
            return
        print_jobs(jobs, output, all_namespaces)
