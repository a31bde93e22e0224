"""The CustomResourceDefinition, generated from the pydantic models (never written by hand).

Pydantic's JSON schema is turned into a Kubernetes structural schema: references inlined, optional
unions flattened, defaults dropped (they live in the models and are applied when reading, so a GitOps
tool sees no drift), exclusive bounds in OpenAPI v3.0 form, and CEL rules (x-kubernetes-validations)
carried from the models so `kubectl apply` rejects cross-field mistakes server-side too.
"""

from __future__ import annotations

from typing import Any

import yaml

from .job import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION, FineTuneJobSpec
from .status import FineTuneJobStatus

_DROP = {"title", "default", "examples", "$defs", "additionalProperties", "const", "discriminator"}
_SCALARS = {"string", "number", "integer", "boolean"}

#: Rules that need metadata, so they sit at the root of the schema.
ROOT_RULES = [
    {
        "rule": "!has(self.spec.baseModel.fromJob) || self.spec.baseModel.fromJob != self.metadata.name",
        "message": "spec.baseModel.fromJob: a job cannot start from its own output",
        "fieldPath": ".spec.baseModel.fromJob",
    },
]

PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Stage", "type": "string", "jsonPath": ".status.stage"},
    {"name": "Epoch", "type": "integer", "jsonPath": ".status.epoch"},
    {"name": "Val-Acc", "type": "number", "jsonPath": ".status.metrics.val_accuracy"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = dict(defs[ref.rsplit("/", 1)[-1]])
    target.update({k: v for k, v in node.items() if k != "$ref"})
    return target


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node, defs)
    if "anyOf" in node:
        branches = [_resolve(b, defs) for b in node["anyOf"] if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(branches) == 1:
            return _structural({**branches[0], **rest}, defs)
        if all(b.get("type") in _SCALARS for b in branches):
            # A scalar of several types (e.g. a split string or a fraction): structural schemas only
            # know int-or-string, so accept any scalar here; the models check it on reading.
            out = {"x-kubernetes-preserve-unknown-fields": True}
            if "description" in rest:
                out["description"] = rest["description"]
            return out
        raise ValueError(f"cannot express a union of {branches} in a structural schema")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    if "const" in node:
        out["enum"] = [node["const"]]
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(node["additionalProperties"], defs)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def schema_of(model: type) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def openapi_schema() -> dict[str, Any]:
    """The CRD's openAPIV3Schema: the spec's and status's structural schemas, with the rules that need metadata.

    Returns:
        The schema of a whole FineTuneJob object.
    """
    spec = schema_of(FineTuneJobSpec)
    status = schema_of(FineTuneJobStatus)
    return {
        "type": "object",
        "description": "A fine-tuning job: a pretrained base model, a new head, a dataset and a schedule "
                       "of stages (train the head on a frozen base, then fine-tune).",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": ROOT_RULES,
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "headstart"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["headstart", "ml"],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": openapi_schema()},
            }],
        },
    }


def crd_yaml() -> str:
    """The CustomResourceDefinition as YAML, under a header saying it is generated (what `headstart crd` prints).

    Returns:
        The YAML text.
    """
    header = "# Generated from headstart.api by `headstart crd`; do not edit by hand.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100, allow_unicode=True)
