"""Turning pydantic's validation errors into one precise line per problem: ``field.path: message``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from .cluster import QUANTITY_PATTERN
from .model import NAME_PATTERN
from .stages import TRAIN_BASE_PATTERN

_PATH_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]*(?:\[[0-9]+\])*(?:\.[A-Za-z][A-Za-z0-9]*(?:\[[0-9]+\])*)*): (.+)$",
                          re.S)
_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "datetime_type": "a timestamp",
    "datetime_parsing": "a timestamp",
}
_PATTERN_WORDS = {
    NAME_PATTERN: "must be a DNS-1123 name: lower-case letters, digits and '-'",
    TRAIN_BASE_PATTERN: "must be none, all, top:N or from:LAYER",
    QUANTITY_PATTERN: "must be a Kubernetes quantity such as '4', '500m' or '16Gi'",
}
_UNION_BRANCHES = {"str", "float", "int", "bool", "list", "dict", "function-after", "function-before"}


@dataclass(frozen=True)
class Problem:
    """One problem with a manifest: where (a field path, '' for the whole document) and what."""

    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def render(self) -> str:
        """The problem in one line: ``warning: `` for a warning, then ``path: `` when it has a path, then the message.

        Returns:
            The line.
        """
        where = f"{self.path}: " if self.path else ""
        mark = "warning: " if self.severity == "warning" else ""
        return f"{mark}{where}{self.message}"


def format_path(parts: tuple[Any, ...] | list[Any]) -> str:
    """A field path as it is written in messages: ``spec.stages[0].epochs``.

    Args:
        parts: A location, as in pydantic's errors: names, and ints for list indexes (empty names skipped).

    Returns:
        The dotted path, with each index in brackets.
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out += f".{part}" if out else str(part)
    return out


def _join(base: str, rel: str) -> str:
    if not rel:
        return base
    return f"{base}.{rel}" if base else rel


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


FieldsAt = Callable[[tuple[Any, ...]], list[str]]


def _message(err: dict[str, Any], fields_at: FieldsAt | None) -> tuple[str, str]:
    """(extra path suffix, message) for one pydantic error."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "value_error":
        text = str(ctx.get("error", err["msg"]))
        match = _PATH_PREFIX.match(text)
        return (match.group(1), match.group(2)) if match else ("", text)
    if kind == "missing":
        return "", "required field is missing"
    if kind == "extra_forbidden":
        field = str(err["loc"][-1]) if err["loc"] else ""
        known = fields_at(tuple(err["loc"][:-1])) if fields_at else []
        close = difflib.get_close_matches(field, known, n=1, cutoff=0.75)
        return "", "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind in _TYPE_WORDS:
        return "", f"must be {_TYPE_WORDS[kind]} (got {_got(value)})"
    if kind == "literal_error":
        return "", f"must be one of {ctx.get('expected')} (got {_got(value)})"
    if kind == "enum":
        return "", f"must be one of {ctx.get('expected')} (got {_got(value)})"
    if kind == "greater_than":
        return "", f"must be greater than {_num(ctx['gt'])}"
    if kind == "greater_than_equal":
        return "", f"must be at least {_num(ctx['ge'])}"
    if kind == "less_than":
        return "", f"must be less than {_num(ctx['lt'])}"
    if kind == "less_than_equal":
        return "", f"must be at most {_num(ctx['le'])}"
    if kind == "string_pattern_mismatch":
        return "", _PATTERN_WORDS.get(ctx.get("pattern"), f"must match {ctx.get('pattern')}") + \
            f" (got {_got(value)})"
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length")
        if least == 1:
            return "", "must not be empty"
        unit = "characters" if kind.startswith("string") else "items"
        return "", f"must have at least {least} {unit}"
    if kind in ("too_long", "string_too_long"):
        unit = "characters" if kind.startswith("string") else "items"
        return "", f"must have at most {ctx.get('max_length')} {unit}"
    text = err["msg"]
    return "", text[:1].lower() + text[1:]


def problems_from(exc: ValidationError, fields_at: FieldsAt | None = None) -> list[Problem]:
    """One Problem per distinct (path, message); union branches folded into one line."""
    by_path: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_BRANCHES)]
        suffix, message = _message(err, fields_at)
        path = _join(format_path(loc), suffix)
        messages = by_path.setdefault(path, [])
        if message not in messages:
            messages.append(message)
    problems = []
    for path, messages in by_path.items():
        if len(messages) > 1 and all(m.startswith("must be ") and "(got" in m for m in messages):
            got = messages[0][messages[0].index("(got"):]
            kinds = " or ".join(m[len("must be "):m.index(" (got")] for m in messages)
            problems.append(Problem(path, f"must be {kinds} {got}"))
        else:
            problems.extend(Problem(path, m) for m in messages)
    return problems
