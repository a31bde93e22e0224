"""`headstart validate FILE...`: check manifests as the API server and the operator would, one precise line
per problem. Documents of other kinds (a PVC, a Kustomization beside the jobs) are skipped with a note."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from headstart.sdk import exit_codes

from .options import check_output, output_option

if TYPE_CHECKING:
    from headstart.api.manifests import Document


def _check_file(path: str, target: str) -> tuple[list[Document], list[str]]:
    from headstart.api.manifests import ManifestError, parse_text, read_source

    source = "<stdin>" if path == "-" else path
    try:
        return parse_text(read_source(path), source, other_kinds="skip", target=target), []
    except ManifestError as exc:
        return [], exc.lines


def _record(doc: Document, bad: bool) -> dict[str, Any]:
    if doc.skipped is not None:
        return {"file": doc.source, "index": doc.index, "skipped": doc.skipped, "valid": True, "problems": []}
    return {"file": doc.source, "index": doc.index, "valid": not bad,
            "name": doc.job.metadata.name if doc.job else None,
            "problems": [{"path": p.path, "severity": p.severity, "message": p.message} for p in doc.problems]}


def validate(
    files: list[str] = typer.Argument(..., metavar="FILE",
                                      help="Manifests (YAML or JSON, several documents allowed), "
                                           "directories of them, or - for standard input."),
    recursive: bool = typer.Option(False, "--recursive", "-R", help="Walk the directories' subfolders too."),
    output: str = output_option("text", ("text", "json")),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print problems only: no notes, no summary."),
    local: bool = typer.Option(False, "--local", help="Check for `headstart run` and --local: a local output "
                                                      "path is fine (a cluster refuses it)."),
) -> None:
    """Check FineTuneJob manifests.

    Exit 0 when all are valid, 1 when any is not, 2 on usage errors (no manifest, no FineTuneJob)."""
    check_output(output, "validate", ("text", "json"))
    from headstart.api.manifests import expand_paths

    paths = expand_paths(files, recursive)
    if not paths:
        typer.echo("headstart validate: no manifest files found in " + ", ".join(files), err=True)
        raise typer.Exit(exit_codes.USAGE)
    failed = warned = checked = skipped = 0
    records: list[dict] = []
    for path in paths:
        docs, file_errors = _check_file(path, "local" if local else "cluster")
        if file_errors:  # the file as a whole: unreadable, not UTF-8, malformed YAML, a duplicate key, empty
            failed += 1
            source = "<stdin>" if path == "-" else path
            records.append({"file": path, "valid": False, "problems": [
                {"path": "", "severity": "error", "message": line.removeprefix(f"{source}: ")}
                for line in file_errors]})
            if output == "text":
                for line in file_errors:
                    typer.echo(line)
        for doc in docs:
            bad = doc.skipped is None and (not doc.ok or bool(strict and doc.problems))
            records.append(_record(doc, bad))
            if doc.skipped is not None:
                skipped += 1
                if output == "text" and not quiet:
                    typer.echo(f"{doc.source}[{doc.index}]: skipped: {doc.skipped} is not a FineTuneJob", err=True)
                continue
            checked += 1
            failed += bad
            warned += any(p.severity == "warning" for p in doc.problems)
            if output == "text":
                for line in doc.lines():
                    typer.echo(line)
    if output == "json":
        typer.echo(json.dumps(records, indent=2))
    elif not quiet:
        verdict = "all valid" if not failed else f"{failed} invalid"
        typer.echo(f"{len(paths)} file(s), {checked} FineTuneJob(s): {verdict}"
                   + (f", {warned} with warnings" if warned else "") + (f", {skipped} skipped" if skipped else ""),
                   err=True)
    if not checked and not failed:
        typer.echo("headstart validate: no FineTuneJob in " + ", ".join(files), err=True)
        raise typer.Exit(exit_codes.USAGE)
    raise typer.Exit(exit_codes.FAILED if failed else exit_codes.OK)
