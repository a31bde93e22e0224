"""A generated corpus of mutated FineTuneJob manifests, for the API/trainer agreement tests.

Every example manifest is mutated one field at a time: each leaf of the spec's schema (walked from the
generated CRD, so a new field is mutated without editing this file) is set to boundary values (the
schema's minimum and maximum, just past them), invalid values (wrong types, among them the ones a lax reader
would coerce: true for a number, '0.5' for a number, 'yes' or 1 for a boolean; empty, too long, unknown
enum values) and, for enums, every allowed value. A field the example leaves out is added, with its
parents filled in minimally. tests/api/test_spec_mutants.py checks that every rejected mutant is
rejected with a path naming the mutated field and that every mutant of the wrong JSON type is rejected (as the
API server's schema does: tests/cluster/test_finetunejob_crd.py sends them there);
tests/trainer/test_preflight_mutants.py that every accepted one passes the trainer's pre-flight.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from headstart.api.crd import openapi_schema

REPO = Path(__file__).resolve().parent.parent

#: Parents a mutant adds when the example lacks them: their required fields, valid.
MINIMAL_PARENTS: dict[str, Any] = {
    "schedule": {"type": "cosine"},
    "earlyStopping": {"monitor": "loss"},  # valid without a validation split too
    "tfds": {"name": "mnist"},
    "imageFolder": {"uri": "/data/images"},
    "secretKeyRef": {"name": "storage", "key": "token"},
    "secretRef": {"name": "storage"},
    "layers": [{"units": 8}],
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
    "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
    "envFrom": [{"secretRef": {"name": "storage"}}],
    "sweep": {"dropouts": [0.0, 0.5]},  # two candidates
    "learningRateRange": {"min": 0.001, "max": 0.1, "count": 2},
}
#: Values for the untyped split fields (a TFDS string or an image-folder fraction).
SPLIT_VALUES: list[Any] = ["train", "train[:80%]", "train[80%:]", "test[10:20]+train[:5%]", "train[3shard]",
                           "train[", "train[:80%", "train[1.5:]", "train[:150%]", "all[:50%]", "train[5]",
                           "", " ", 0.0, 0.2, 0.5, 0.99, 1.0, -0.1, 2, True, [1]]


@dataclass(frozen=True)
class Mutant:
    example: str
    """The example's file name."""
    path: str
    """The mutated field, as validate names it: spec.stages[1].optimizer.momentum."""
    value: Any
    document: dict
    schema_type: str | None = None
    """The CRD's type of the mutated field (None where it has none: the splits)."""

    @property
    def label(self) -> str:
        return f"{self.example}:{self.path}={self.value!r:.40}"

    @property
    def mistyped(self) -> bool:
        """Whether the value is not of the JSON type the CRD gives the field (the API server refuses it)."""
        return self.value is not None and self.schema_type is not None and \
            not json_type_matches(self.value, self.schema_type)


def json_type_matches(value: Any, schema_type: str) -> bool:
    """Whether a (YAML-parsed) value is of an OpenAPI type, as the API server sees JSON."""
    if isinstance(value, bool):
        return schema_type == "boolean"
    if isinstance(value, int):
        return schema_type in ("integer", "number")
    if isinstance(value, float):
        return schema_type == "number"
    return {"string": str, "array": list, "object": dict}.get(schema_type, type(None)) is type(value)


def examples() -> list[tuple[str, dict]]:
    """The cluster's examples: the offline quickstart's own (examples/quickstart/*.yaml) write to local paths,
    which only `headstart run` takes, so they are no seeds for what validate and the server both refuse."""
    out = []
    local = set((REPO / "examples" / "quickstart").glob("*.yaml"))
    for path in sorted(set((REPO / "examples").rglob("*.yaml")) - local):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "FineTuneJob":
                out.append((str(path.relative_to(REPO / "examples")), doc))
    return out


def _leaves(schema: dict, path: list[str | int]) -> list[tuple[list[str | int], dict]]:
    """(path, schema) of every mutable leaf under ``schema``; arrays of objects through item 0."""
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return [leaf for name, sub in schema["properties"].items() for leaf in _leaves(sub, [*path, name])]
    if kind == "array" and schema.get("items", {}).get("type") == "object":
        return [(path, schema), *_leaves(schema["items"], [*path, 0])]
    if kind == "object":
        return []  # maps such as nodeSelector: free-form
    return [(path, schema)]


def _values(schema: dict, current: Any) -> list[Any]:
    """Boundary, invalid and (for enums) every allowed value for a leaf of this schema."""
    kind = schema.get("type")
    if kind is None:
        return SPLIT_VALUES
    if "enum" in schema:
        return [*schema["enum"], "Bogus", "", 3]
    if kind == "boolean":
        return [True, False, "yes", "true", 1]
    if kind in ("integer", "number"):
        values: list[Any] = [0, -1, "x", "1", True, None]
        step = 1 if kind == "integer" else 1e-6
        if "minimum" in schema:
            low = schema["minimum"]
            values += [low, low - step, low + step]
        if "maximum" in schema:
            high = schema["maximum"]
            values += [high, high + step, high - step]
        values += [1.5] if kind == "integer" else [1, 0.5, "0.5", 1e9]
        return values
    if kind == "string":
        longest = schema.get("maxLength", 300)
        values = ["", " ", "x" * (longest + 1), "Not_A-Name", "ok-name", 7, True, None]
        if isinstance(current, str):
            values += [current.upper(), current + " "]
        return values
    if kind == "array":
        item_kind = schema.get("items", {}).get("type")
        values = [[], "x"]
        if item_kind == "object":
            return [[], "x", [{}]]
        if item_kind == "integer":
            values += [[31, 31], [32, 32], [70, 70], [71, 71], [75, 75], [224, 224], [2048, 2049], [224]]
        if item_kind == "string":
            enum = schema["items"].get("enum", [])
            values += [[e] for e in enum] + [enum[:1] * 2 if enum else ["a", "a"], ["bogus"]]
        return values
    return []


def _get(doc: Any, path: list[str | int]) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(doc, list) or len(doc) <= part:
                return None
        elif not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def _set(doc: dict, path: list[str | int], value: Any) -> None:
    """Set ``path`` in ``doc``, adding missing parents (minimally valid)."""
    node: Any = doc
    for index, part in enumerate(path[:-1]):
        nxt = path[index + 1]
        if isinstance(part, int):
            node = node[part]
            continue
        if part not in node or node[part] is None or (isinstance(nxt, int) and not node[part]):
            node[part] = copy.deepcopy(MINIMAL_PARENTS.get(part, [] if isinstance(nxt, int) else {}))
        node = node[part]
    last = path[-1]
    if value is None and isinstance(last, str):
        node.pop(last, None)  # null: the field is left out (the API's default applies)
    else:
        node[last] = value


def format_path(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def generate() -> list[Mutant]:
    spec_schema = openapi_schema()["properties"]["spec"]
    leaves = _leaves(spec_schema, ["spec"])
    out: list[Mutant] = []
    seen: set[str] = set()
    for name, doc in examples():
        for path, schema in leaves:
            path = list(path)
            if path[:2] == ["spec", "stages"] and len(path) > 2:
                path[2] = len(doc["spec"]["stages"]) - 1  # the last stage: fine-tuning, mostly
                if "sweep" in path:  # only a frozen stage on cached features, with a validation split, sweeps
                    frozen = _sweeping_stage(doc)
                    if frozen is None:
                        continue
                    path[2] = frozen
            current = _get(doc, path)
            for value in _values(schema, current):
                if value is None and current is None:
                    continue
                mutant = copy.deepcopy(doc)
                _set(mutant, path, value)
                key = repr((name, format_path(path), value))
                if key not in seen:
                    seen.add(key)
                    out.append(Mutant(name, format_path(path), value, mutant, schema.get("type")))
    return out


def _sweeping_stage(doc: dict) -> int | None:
    """The first stage of ``doc`` that may sweep (frozen, its features cached, a validation split to pick the
    best); None when it has none."""
    spec = doc["spec"]
    if (spec["dataset"].get("splits") or {}).get("validation") is None or any(
            v not in (None, 0, 0.0, "none") for v in (spec.get("augmentation") or {}).values()):
        return None
    return next((i for i, stage in enumerate(spec["stages"]) if stage.get("trainBase", "none") == "none"), None)


def _parts(path: str) -> list[str]:
    return [p for p in re.split(r"[.\[\]]", path) if p]


def names_field(problem_path: str, message: str, mutated: str) -> bool:
    """Whether a problem names the mutated field: at its path (or inside it), or elsewhere with a message that
    names a field on the way from their common parent down to it (an object-level or cross-field rule,
    e.g. 'give exactly one of application, uri or fromJob', 'optimizer type Adam takes no momentum')."""
    if problem_path == mutated or problem_path.startswith((mutated + "[", mutated + ".")):
        return True
    problem, target = _parts(problem_path), _parts(mutated)
    common = 0
    while common < min(len(problem), len(target)) and problem[common] == target[common]:
        common += 1
    below = [part for part in target[common:] if not part.isdigit()]
    return any(re.search(rf"\b{re.escape(part)}\b", message) for part in below)
