"""The `headstart` command line. Importing this module must stay cheap: no TensorFlow, no kubernetes."""

from __future__ import annotations

import sys

import typer

from . import crd as crd_cmd
from . import follow as follow_cmd
from . import init as init_cmd
from . import jobs as jobs_cmd
from . import run as run_cmd
from . import validate as validate_cmd

app = typer.Typer(
    name="headstart",
    help="Fine-tune pretrained models on Kubernetes: submit FineTuneJobs, watch them train, fetch the models; "
         "validate manifests, run them locally, print the CRD.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rendering it with rich imports ~0.1 s of modules (bench/cli_startup.py)
    context_settings={"help_option_names": ["-h", "--help"]},
)
CLUSTER = "In a cluster (or --local)"
LOCAL = "Without a cluster"
app.command("submit", rich_help_panel=CLUSTER)(jobs_cmd.submit)
app.command("get", rich_help_panel=CLUSTER)(jobs_cmd.get)
app.command("list", rich_help_panel=CLUSTER)(jobs_cmd.list_jobs)
app.command("watch", rich_help_panel=CLUSTER)(follow_cmd.watch)
app.command("logs", rich_help_panel=CLUSTER)(follow_cmd.logs)
app.command("fetch", rich_help_panel=CLUSTER)(follow_cmd.fetch)
app.command("why", rich_help_panel=CLUSTER)(jobs_cmd.why)
app.command("suspend", rich_help_panel=CLUSTER)(jobs_cmd.suspend)
app.command("resume", rich_help_panel=CLUSTER)(jobs_cmd.resume)
app.command("delete", rich_help_panel=CLUSTER)(jobs_cmd.delete)
app.command("init", rich_help_panel=LOCAL)(init_cmd.init)
app.command("validate", rich_help_panel=LOCAL)(validate_cmd.validate)
app.command("run", rich_help_panel=LOCAL)(run_cmd.run)
app.command("crd", rich_help_panel=LOCAL)(crd_cmd.crd)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"headstart {version('headstart')}")
        except PackageNotFoundError:
            typer.echo("headstart (not installed)")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Headstart: transfer learning as a Kubernetes-native service."""


def main() -> None:
    """Console entry point: no traceback ever reaches the user."""
    try:
        app(prog_name="headstart")
    except KeyboardInterrupt:
        typer.echo("headstart: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, non-zero exit
        typer.echo(f"headstart: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(3)
