"""`headstart crd`: print the CustomResourceDefinition generated from the API models."""

from __future__ import annotations

import json

import typer

from .options import check_output, output_option


def crd(output: str = output_option("yaml", ("yaml", "json"))) -> None:
    """Print the FineTuneJob CRD (pipe it to `kubectl apply -f -`)."""
    from headstart.api.crd import crd as build
    from headstart.api.crd import crd_yaml

    check_output(output, "crd", ("yaml", "json"))
    if output == "yaml":
        typer.echo(crd_yaml(), nl=False)
    else:
        typer.echo(json.dumps(build(), indent=2))
