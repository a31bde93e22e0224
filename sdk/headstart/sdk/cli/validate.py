"""`headstart validate FILE...`: check manifests against the API, one precise line per problem."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from headstart.api.manifests import Document


def _check_file(path: str) -> tuple[list[Document], list[str]]:
    from headstart.api.manifests import ManifestError, parse_text, read_source

    source = "<stdin>" if path == "-" else path
    try:
        return parse_text(read_source(path), source), []
    except ManifestError as exc:
        return [], exc.lines


def validate(
    files: list[str] = typer.Argument(..., metavar="FILE...",
                                      help="Manifests (YAML or JSON, several documents allowed), "
                                           "directories of them, or - for standard input."),
    output: str = typer.Option("text", "--output", "-o", help="text, or json for one object per document."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print problems only, no summary."),
) -> None:
    """Check FineTuneJob manifests. Exit 0 when all are valid, 1 when any is not, 2 on usage errors."""
    if output not in ("text", "json"):
        typer.echo(f"headstart validate: --output: must be text or json (got {output!r})", err=True)
        raise typer.Exit(2)
    from headstart.api.manifests import expand_paths

    paths = expand_paths(files)
    if not paths:
        typer.echo("headstart validate: no manifest files found in " + ", ".join(files), err=True)
        raise typer.Exit(2)
    failed = warned = documents = 0
    records: list[dict] = []
    for path in paths:
        docs, file_errors = _check_file(path)
        if file_errors:  # the file as a whole: unreadable, malformed YAML, no document
            failed += 1
            source = "<stdin>" if path == "-" else path
            records.append({"file": path, "valid": False, "problems": [
                {"path": "", "severity": "error", "message": line.removeprefix(f"{source}: ")}
                for line in file_errors]})
            if output == "text":
                for line in file_errors:
                    typer.echo(line)
        for doc in docs:
            documents += 1
            bad = not doc.ok or (strict and doc.problems)
            failed += bool(bad)
            warned += any(p.severity == "warning" for p in doc.problems)
            if output == "text":
                for line in doc.lines():
                    typer.echo(line)
            records.append({
                "file": doc.source, "index": doc.index, "valid": not bad,
                "name": doc.job.metadata.name if doc.job else None,
                "problems": [{"path": p.path, "severity": p.severity, "message": p.message}
                             for p in doc.problems],
            })
    if output == "json":
        typer.echo(json.dumps(records, indent=2))
    elif not quiet:
        verdict = "all valid" if not failed else f"{failed} invalid"
        typer.echo(f"{len(paths)} file(s), {documents} document(s): {verdict}"
                   + (f", {warned} with warnings" if warned else ""), err=True)
    raise typer.Exit(1 if failed else 0)
