"""Reading FineTuneJob manifests from YAML or JSON files (several documents per file allowed)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .checks import check_document
from .errors import Problem
from .job import FineTuneJob

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Document:
    """One document of a manifest file, checked."""

    source: str
    index: int
    job: FineTuneJob | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.job is not None and not any(p.severity == "error" for p in self.problems)

    def lines(self) -> list[str]:
        return [f"{self.source}[{self.index}]: {p.render()}" for p in self.problems]


class ManifestError(Exception):
    """A manifest that cannot be read or is invalid; ``lines`` holds one precise line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def _yaml_problem(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{source}: {where}malformed YAML: {problem}"


def parse_text(text: str, source: str) -> list[Document]:
    """Parse and check every non-empty document of a YAML/JSON text."""
    try:
        raw: list[Any] = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ManifestError([_yaml_problem(source, exc)]) from exc
    docs = []
    for index, item in enumerate(raw):
        if item is None:
            continue
        job, problems = check_document(item)
        docs.append(Document(source, index, job, problems))
    if not docs:
        raise ManifestError([f"{source}: no manifest in the file"])
    return docs


def read_source(path: str) -> str:
    """The text of a file, or of standard input for '-'."""
    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if p.is_dir():
        raise ManifestError([f"{path}: is a directory"])
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ManifestError([f"{path}: no such file"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{path}: cannot read: {exc}"]) from exc


def expand_paths(paths: list[str]) -> list[str]:
    """Files as given; a directory stands for its manifest files (sorted, not recursive)."""
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if path != "-" and p.is_dir():
            out.extend(str(f) for f in sorted(p.iterdir()) if f.suffix in MANIFEST_SUFFIXES and f.is_file())
        else:
            out.append(path)
    return out


def load_job(path: str) -> FineTuneJob:
    """Exactly one valid FineTuneJob from a file, or ManifestError naming every problem."""
    source = "<stdin>" if path == "-" else path
    docs = parse_text(read_source(path), source)
    errors = [line for d in docs if not d.ok for line in d.lines()]
    if errors:
        raise ManifestError(errors)
    if len(docs) != 1:
        raise ManifestError([f"{source}: holds {len(docs)} FineTuneJobs; give a file with one"])
    assert docs[0].job is not None
    return docs[0].job
