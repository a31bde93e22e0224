"""Every mutant of the examples that `validate` accepts passes the trainer's pre-flight (Keras and TFDS get
the spec's names and values as training would give them), so no spec the API admits fails in a pod for a
reason the spec alone decides. The mutants are generated in tests/spec_mutants.py."""

from __future__ import annotations

import json

from spec_mutants import examples, generate

from headstart.api import check_document

#: What the pre-flight reads; mutants that differ elsewhere (resources, env...) are checked once.
PREFLIGHT_FIELDS = {"stages", "head", "augmentation", "seed", "dataset"}


def test_every_accepted_mutant_passes_the_trainer_preflight():
    from headstart.trainer import SpecError, preflight

    checked, refused = 0, []
    seen: set[str] = set()
    for mutant in generate():
        job, problems = check_document(mutant.document)
        if job is None or any(p.severity == "error" for p in problems):
            continue
        key = json.dumps(job.spec.model_dump(mode="json", include=PREFLIGHT_FIELDS), sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        checked += 1
        try:
            preflight.check(job.spec)
        except SpecError as exc:
            refused.append(f"{mutant.label}: {exc}")
    assert checked >= 100, checked
    assert not refused, f"{len(refused)} accepted mutants fail the pre-flight:\n" + "\n".join(refused[:30])


def test_preflight_refuses_what_keras_refuses():
    """The pre-flight is no rubber stamp: a spec built past the models' checks (model_construct skips them)
    with a momentum Keras' Adam does not take is refused, naming the field."""
    import pytest

    from headstart.api import OptimizerSpec
    from headstart.trainer import SpecError, preflight

    job, _ = check_document(examples()[0][1])
    bad = OptimizerSpec.model_construct(type="Adam", learning_rate=0.01, momentum=0.9, weight_decay=None,
                                        schedule=None)
    job.spec.stages[0].__dict__["optimizer"] = bad
    with pytest.raises(SpecError, match=r"stages\[0\]\.optimizer: Keras refuses it"):
        preflight.check(job.spec)
