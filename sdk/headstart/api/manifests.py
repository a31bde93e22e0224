"""Reading FineTuneJob manifests from YAML or JSON files (several documents per file allowed).

Read as the API server would see them: UTF-8 text, a key given twice refused, and every value of the JSON
type the CRD gives it (no coercion: ``epochs: true`` and ``learningRate: '0.2'`` are errors).
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .checks import Target, check_document
from .errors import Problem
from .job import GROUP, KIND, FineTuneJob
from .yaml_reading import decode_utf8, load_all, yaml_problem

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Document:
    """One document of a manifest file, checked."""

    source: str
    index: int
    job: FineTuneJob | None = None
    problems: list[Problem] = field(default_factory=list)
    skipped: str | None = None
    """A document of another kind, left alone: its 'apiVersion kind' (e.g. 'v1 PersistentVolumeClaim')."""

    @property
    def ok(self) -> bool:
        """Whether the document is a FineTuneJob with no error (warnings allowed)."""
        return self.job is not None and not any(p.severity == "error" for p in self.problems)

    def lines(self) -> list[str]:
        """One line per problem of the document (errors and warnings alike).

        Returns:
            The lines, each ``source[index]: `` then the problem rendered.
        """
        return [f"{self.source}[{self.index}]: {p.render()}" for p in self.problems]


class ManifestError(Exception):
    """A manifest that cannot be read or is invalid; ``lines`` holds one precise line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def other_kind(doc: Any) -> str | None:
    """'apiVersion kind' of a document that is plainly some other Kubernetes object (a PVC, a Kustomization),
    None for a FineTuneJob or anything that may be meant as one (no kind, Headstart's group, a kind close to
    FineTuneJob): those are checked, so a typo is an error, not a skip."""
    if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str) or not doc["kind"]:
        return None
    kind, api_version = doc["kind"], str(doc.get("apiVersion") or "")
    if api_version.split("/")[0] == GROUP or difflib.SequenceMatcher(None, kind.lower(), KIND.lower()).ratio() > 0.8:
        return None
    return f"{api_version} {kind}".strip()


def parse_text(text: str, source: str, other_kinds: Literal["check", "skip"] = "check",
               target: Target = "cluster") -> list[Document]:
    """Parse and check every non-empty document of a YAML/JSON text, for ``target`` (check_document).
    ``other_kinds="skip"`` leaves documents of other kinds unchecked (``Document.skipped``).

    Args:
        text: The file's text.
        source: What to call the file in the problems' lines.
        other_kinds: "check" every document as a FineTuneJob, or "skip" those plainly of another kind.
        target: "cluster" or "local", as for check_document.

    Returns:
        One Document per non-empty document, in order.

    Raises:
        ManifestError: The text is malformed YAML, or holds no document.
    """
    try:
        raw: list[Any] = load_all(text)
    except yaml.YAMLError as exc:
        raise ManifestError([yaml_problem(source, exc)]) from exc
    docs = []
    for index, item in enumerate(raw):
        if item is None:
            continue
        skipped = other_kind(item) if other_kinds == "skip" else None
        if skipped is not None:
            docs.append(Document(source, index, skipped=skipped))
            continue
        job, problems = check_document(item, target)
        docs.append(Document(source, index, job, problems))
    if not docs:
        raise ManifestError([f"{source}: no manifest in the file"])
    return docs


def read_source(path: str) -> str:
    """The text of a file, or of standard input for '-'; ManifestError when it cannot be read or is not
    UTF-8.

    Args:
        path: The file's path, or '-' for standard input.

    Returns:
        The text.

    Raises:
        ManifestError: The path is a directory or missing, cannot be read, or is not UTF-8.
    """
    source = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
        else:
            p = Path(path)
            if p.is_dir():
                raise ManifestError([f"{path}: is a directory"])
            data = p.read_bytes()
        return decode_utf8(data, source)
    except FileNotFoundError as exc:
        raise ManifestError([f"{path}: no such file"]) from exc
    except OSError as exc:
        raise ManifestError([f"{source}: cannot read: {exc.strerror or exc}"]) from exc
    except ValueError as exc:
        raise ManifestError([str(exc)]) from exc


def expand_paths(paths: list[str], recursive: bool = False) -> list[str]:
    """Files as given; a directory stands for its manifest files (sorted; with ``recursive``, those of its
    subfolders too, hidden ones left out)."""
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if path != "-" and p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            out.extend(str(f) for f in sorted(found) if f.suffix in MANIFEST_SUFFIXES and f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        else:
            out.append(path)
    return out


def load_job(path: str, target: Target = "local") -> FineTuneJob:
    """Exactly one valid FineTuneJob from a file, or ManifestError naming every problem. The trainer's
    reader: ``target`` "local" (`headstart run` may write to a local path; in a pod the spec came through
    the API server, which checked it as a cluster's).

    Args:
        path: The manifest's path, or '-' for standard input.
        target: "local" or "cluster", as for check_document.

    Returns:
        The job.

    Raises:
        ManifestError: The file cannot be read or parsed, a document has an error, or it does not hold
            exactly one document.
    """
    source = "<stdin>" if path == "-" else path
    docs = parse_text(read_source(path), source, target=target)
    errors = [line for d in docs if not d.ok for line in d.lines()]
    if errors:
        raise ManifestError(errors)
    if len(docs) != 1:
        raise ManifestError([f"{source}: holds {len(docs)} FineTuneJobs; give a file with one"])
    assert docs[0].job is not None
    return docs[0].job
