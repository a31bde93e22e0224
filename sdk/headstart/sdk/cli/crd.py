"""`headstart crd`: print the CustomResourceDefinition generated from the API models."""

from __future__ import annotations

import json

import typer


def crd(
    output: str = typer.Option("yaml", "--output", "-o", help="Output format: yaml or json."),
) -> None:
    """Print the FineTuneJob CRD (pipe it to `kubectl apply -f -`)."""
    from headstart.api.crd import crd as build
    from headstart.api.crd import crd_yaml

    if output == "yaml":
        typer.echo(crd_yaml(), nl=False)
    elif output == "json":
        typer.echo(json.dumps(build(), indent=2))
    else:
        typer.echo(f"headstart crd: --output: must be yaml or json (got {output!r})", err=True)
        raise typer.Exit(2)
