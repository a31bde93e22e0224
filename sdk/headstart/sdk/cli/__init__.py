"""The `headstart` command line. Importing this module must stay cheap: no TensorFlow, no kubernetes."""

from __future__ import annotations

import sys

import typer

from . import crd as crd_cmd
from . import run as run_cmd
from . import validate as validate_cmd

app = typer.Typer(
    name="headstart",
    help="Fine-tune pretrained models on Kubernetes: validate FineTuneJob manifests, run them locally, "
         "print the CRD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("validate")(validate_cmd.validate)
app.command("run")(run_cmd.run)
app.command("crd")(crd_cmd.crd)


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
        app()
    except KeyboardInterrupt:
        typer.echo("headstart: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, non-zero exit
        typer.echo(f"headstart: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(3)
