"""One writer per output (pure): the FineTuneJob, of any namespace the operator watches, that writes the output
another job wants, or will write it first.

Two jobs on one output would adopt, overwrite or delete each other's checkpoints and model, so a job whose
output an active job writes waits (Pending, OutputInUse) and starts when that one ends. "Active" is a job
with a training Job that has not finished; of two jobs that have none yet, the one created first goes first
(then the lower uid), so two jobs created at once never both start. A pvc:// output is a claim of the job's
own namespace, so the same URI in two namespaces is two outputs; a bucket URI is one output wherever it is
named from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from headstart.api.reasons import TERMINAL_PHASES
from headstart.api.uris import scheme_of


def output_key(namespace: str, uri: str | None) -> str | None:
    """What identifies the output ``uri`` names, seen from ``namespace``."""
    if not uri:
        return None
    path = uri.rstrip("/")
    if scheme_of(path) == "pvc":
        return f"{namespace}|{path}"
    scheme, sep, rest = path.partition("://")
    return f"{scheme.lower()}{sep}{rest}" if sep else path


def _key_of(body: dict[str, Any]) -> str | None:
    meta = body.get("metadata") or {}
    uri = ((body.get("spec") or {}).get("output") or {}).get("uri")
    return output_key(meta.get("namespace") or "", uri)


def _order(body: dict[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (meta.get("creationTimestamp") or "", meta.get("uid") or "")


def writer_of(body: dict[str, Any], others: Iterable[dict[str, Any]], has_job: Any) -> dict[str, Any] | None:
    """The other job that writes (or writes first) the output of ``body``, or None when it is free.

    ``others``: every FineTuneJob the operator knows; ``has_job(job)``: whether that job's training Job exists
    and has not finished."""
    mine = _key_of(body)
    uid = (body.get("metadata") or {}).get("uid")
    if mine is None:
        return None
    first = None
    for other in others:
        meta = other.get("metadata") or {}
        if meta.get("uid") == uid or meta.get("deletionTimestamp") or _key_of(other) != mine:
            continue
        if ((other.get("status") or {}).get("phase")) in TERMINAL_PHASES:
            continue
        if has_job(other):
            return other  # it writes now
        if _order(other) < _order(body) and (first is None or _order(other) < _order(first)):
            first = other  # it has not started, but comes first
    return first
