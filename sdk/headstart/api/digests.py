"""The two digests of a spec, side by side because they answer different questions.

``spec_hash`` (the operator's): has the stored spec changed since the training Job was made from it? Over the
spec as written (camelCase, no defaults), all of it but ``runPolicy.suspend``, which may change while a job
runs. ``spec_sha256`` (the trainer's): may an output or a checkpoint be taken as this training's? Over what
decides the training only (not where it runs nor where it writes), with defaults applied, so two specs that
train alike share it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: The spec's parts that decide the training (``spec_sha256``).
TRAINING_FIELDS = {"base_model", "head", "dataset", "augmentation", "stages", "seed"}


def spec_hash(spec: dict[str, Any]) -> str:
    """Digest of a stored spec (as written), all of it but runPolicy.suspend: 16 hex digits."""
    trimmed = json.loads(json.dumps(spec))
    policy = trimmed.get("runPolicy")
    if isinstance(policy, dict):
        policy.pop("suspend", None)
        if not policy:
            trimmed.pop("runPolicy")
    return hashlib.sha256(json.dumps(trimmed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def spec_sha256(job: Any, upstream_sha256: str | None = None) -> str:
    """Digest of what decides the training of ``job`` (a FineTuneJob). For a fromJob base, ``upstream_sha256``
    (that job's manifest digest) stands for the model the name points to, so a re-trained upstream model is
    not taken for the one this job's output or checkpoints were built on."""
    spec: dict = job.spec.model_dump(mode="json", include=TRAINING_FIELDS)
    if upstream_sha256 is not None:
        spec["from_job_manifest_sha256"] = upstream_sha256
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
