"""The `headstart` command line: a module per command (or small group), as kubectl and kr8s lay theirs out.

Importing this module must stay cheap (`headstart --help`): no TensorFlow, no kubernetes client, no API
models, not even the command modules: a command's module is imported when that command runs (or shows its
own help); the list in `headstart --help` comes from COMMANDS.
"""

from __future__ import annotations

import os
import sys

import typer

from headstart.sdk import exit_codes

from .lazy import Commands, LazyGroup
from .options import Target, cluster_command

#: name -> (module of headstart.sdk.cli, function, the one line `headstart --help` shows for it). The line is
#: the first of the function's docstring (tests/sdk/test_cli_contract.py holds the two together).
COMMANDS: Commands = {
    "submit": ("submit", "submit", "Create a FineTuneJob from a manifest."),
    "get": ("get", "get", "Show one FineTuneJob."),
    "list": ("get", "list_jobs", "List FineTuneJobs."),
    "watch": ("watch", "watch", "Follow a job live until it ends."),
    "logs": ("logs", "logs", "Print the trainer's log."),
    "fetch": ("fetch", "fetch", "Download a job's model, verified."),
    "why": ("why", "why", "Explain a job's state in plain words."),
    "suspend": ("lifecycle", "suspend", "Suspend jobs: their pods stop."),
    "resume": ("lifecycle", "resume", "Resume suspended jobs."),
    "delete": ("lifecycle", "delete", "Delete FineTuneJobs."),
    "init": ("init", "init", "Write a FineTuneJob manifest from flags."),
    "validate": ("validate", "validate", "Check FineTuneJob manifests."),
    "run": ("run", "run", "Train a job here, no cluster."),
    "crd": ("crd", "crd", "Print the FineTuneJob CRD (pipe it to `kubectl apply -f -`)."),
}
LazyGroup.commands_table = COMMANDS

app = typer.Typer(
    name="headstart",
    cls=LazyGroup,
    help="Fine-tune pretrained models on Kubernetes: submit FineTuneJobs, watch them train, fetch the models; "
         "validate manifests, run them locally, print the CRD.",
    epilog=exit_codes.epilog(),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rendering it with rich imports ~0.1 s of modules (bench/cli_startup.py)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"headstart {version('headstart')}")
        except PackageNotFoundError:
            typer.echo("headstart (not installed)")
        raise typer.Exit(exit_codes.OK)


@app.callback()
@cluster_command
def _main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    *, target: Target,
) -> None:
    """Headstart: transfer learning as a Kubernetes-native service.

    The connection options (--kubeconfig, --context, -n, --local) may come before the command or after it."""
    ctx.obj = target


def main() -> None:
    """Console entry point: no traceback ever reaches the user (HEADSTART_DEBUG=1 shows a bug's)."""
    try:
        app(prog_name="headstart")
    except KeyboardInterrupt:
        typer.echo("headstart: interrupted", err=True)
        sys.exit(exit_codes.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, the table's code
        if os.environ.get("HEADSTART_DEBUG"):
            import traceback

            traceback.print_exc()
        lines = str(exc).strip().splitlines()
        typer.echo(f"headstart: internal error: {type(exc).__name__}: {lines[0] if lines else ''} "
                   "(HEADSTART_DEBUG=1 shows the traceback)", err=True)
        sys.exit(exit_codes.INTERNAL)
