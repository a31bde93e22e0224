"""The options every cluster command shares, declared once: kubectl's ``--kubeconfig``, ``--context``,
``-n/--namespace`` and ``--local``, accepted before the command (``headstart -n team-a list``) or after it
(``headstart list -n team-a``; after wins). Cheap to import: the SDK's client loads when a command runs."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand


@dataclass(frozen=True)
class Target:
    """Where a command's jobs are: a cluster (kubeconfig, context, namespace) or this machine (local)."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    local: bool = False

    def over(self, base: Target) -> Target:
        """These options where given, ``base``'s (the ones before the command) elsewhere."""
        return replace(base, **{k: v for k, v in vars(self).items() if v not in (None, False)})

    def client(self) -> Any:
        """The SDK Client for this target (loads the kubeconfig; no request yet)."""
        from headstart.sdk.client import Client

        if self.local:
            return Client(backend="local")
        return Client(namespace=self.namespace, context=self.context, kubeconfig=self.kubeconfig)


def _options() -> list[inspect.Parameter]:
    def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

    return [
        option("kubeconfig", Path | None, typer.Option(
            None, "--kubeconfig", metavar="PATH", help="The kubeconfig (default: $KUBECONFIG, ~/.kube/config).")),
        option("context", str | None, typer.Option(
            None, "--context", metavar="NAME", help="The kubeconfig context to use (default: its current one).")),
        option("namespace", str | None, typer.Option(
            None, "--namespace", "-n", metavar="NAME", help="The namespace (default: the context's).")),
        option("local", bool, typer.Option(
            False, "--local", help="Jobs of this machine (./headstart-runs) instead of a cluster's.")),
    ]


CONNECTION = tuple(p.name for p in _options())


class Command(TyperCommand):
    """A command whose usage line is kubectl's: ``headstart delete [OPTIONS] NAME...`` (typer writes
    ``{NAME}...``)."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = (param.metavar or param.name or "").upper() + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def given_before(ctx: typer.Context | None) -> Target:
    """The connection options given before the command (``headstart -n team-a list``)."""
    root = ctx.find_root().obj if ctx is not None else None
    return root if isinstance(root, Target) else Target()


def cluster_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command that works on a cluster's jobs (or, with --local, this machine's): adds the connection
    options to its signature and passes them to it merged, as ``target``."""
    hints = typing.get_type_hints(fn)
    own = [p.replace(annotation=hints.get(p.name, p.annotation))
           for p in inspect.signature(fn).parameters.values() if p.name != "target"]
    wants_context = any(p.name == "ctx" for p in own)
    if not wants_context:
        own.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))
    parameters = own + _options()

    @functools.wraps(fn)
    def command(**kwargs: Any) -> Any:
        ctx = kwargs["ctx"] if wants_context else kwargs.pop("ctx")
        target = Target(**{name: kwargs.pop(name) for name in CONNECTION}).over(given_before(ctx))
        return fn(target=target, **kwargs)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command


def output_option(default: str, choices: tuple[str, ...]) -> Any:
    """kubectl's ``-o/--output``: the output format."""
    return typer.Option(default, "--output", "-o", metavar="FORMAT", help=f"Output format: {', '.join(choices)}.")


def check_output(value: str, command: str, allowed: tuple[str, ...]) -> str:
    """The output format, or a usage error (exit 2) naming the flag."""
    from headstart.sdk.exit_codes import USAGE

    if value not in allowed:
        typer.echo(f"headstart {command}: --output must be one of {', '.join(allowed)} (got {value!r})", err=True)
        raise typer.Exit(USAGE)
    return value
