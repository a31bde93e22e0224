"""Reading manifest text as kubectl does: UTF-8 only, YAML 1.1 scalars except timestamps (kubectl keeps
them as strings), and a mapping key given twice refused with both of its lines."""

from __future__ import annotations

from typing import Any

import yaml

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping holds the same key twice (YAML parsers differ on which one wins: refuse both)."""


class ManifestLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with kubectl's two differences: timestamps stay strings, duplicate keys fail."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        """Construct a mapping as SafeLoader does, after refusing a key given twice (merge keys are not checked).

        Args:
            node: The YAML node.
            deep: Construct the values' objects at once (as SafeLoader's argument).

        Returns:
            The mapping.

        Raises:
            DuplicateKeyError: A key appears twice; the message names the line of the first.
        """
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _value in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    line = first_line.setdefault(key, key_node.start_mark.line)
                except TypeError:  # an unhashable key: construct_mapping says so below
                    continue
                if line != key_node.start_mark.line:
                    raise DuplicateKeyError(
                        problem=f"duplicate key {key!r} (first at line {line + 1})",
                        problem_mark=key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_all(text: str) -> list[Any]:
    """Every document of a YAML (or JSON) text; yaml.YAMLError when it is malformed."""
    return list(yaml.load_all(text, Loader=ManifestLoader))  # noqa: S506 - a SafeLoader subclass


def yaml_problem(source: str, exc: yaml.YAMLError) -> str:
    """One line for a YAML error: where, and what (never the offending line's text, which may hold a
    secret)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, DuplicateKeyError):
        return f"{source}: {where}{problem}"
    return f"{source}: {where}malformed YAML: {problem}"


def decode_utf8(data: bytes, source: str) -> str:
    """The text of ``data``; ValueError with one line (where the first bad byte is) when it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ValueError(f"{source}: not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column "
                         f"{column} (save the file as UTF-8)") from exc
