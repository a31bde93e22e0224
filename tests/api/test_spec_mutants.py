"""Hundreds of mutated examples: each one `validate` rejects is rejected with a path naming the mutated field.

(The other half, that each mutant it accepts passes the trainer's pre-flight, is in
tests/trainer/test_preflight_mutants.py: it needs TensorFlow.)
"""

from __future__ import annotations

from collections import Counter

from spec_mutants import generate, names_field

from headstart.api import check_document


def test_the_corpus_is_large_and_mixed():
    mutants = generate()
    verdicts = Counter(check_document(m.document)[0] is not None for m in mutants)
    assert len(mutants) >= 200
    assert verdicts[True] >= 100 and verdicts[False] >= 100, verdicts  # both halves are exercised
    assert len({m.path for m in mutants}) >= 60  # every leaf of the schema, not a few


def test_every_rejected_mutant_names_the_mutated_field():
    unnamed = []
    for mutant in generate():
        job, problems = check_document(mutant.document)
        errors = [p for p in problems if p.severity == "error"]
        if job is not None and not errors:
            continue
        if not any(names_field(p.path, p.message, mutant.path) for p in errors):
            unnamed.append(f"{mutant.label}: {[p.render() for p in errors]}")
    assert not unnamed, f"{len(unnamed)} mutants rejected without naming the field:\n" + "\n".join(unnamed[:30])


def test_every_mistyped_mutant_is_rejected_naming_the_field():
    """No coercion where the CRD has a type: `epochs: true`, `learningRate: '0.5'`, `xla: 'yes'`, `image: 7`
    are refused by the API server's schema, so validate refuses them too."""
    mistyped = [m for m in generate() if m.mistyped]
    assert len(mistyped) >= 300 and {type(m.value) for m in mistyped} >= {bool, int, float, str}
    accepted, unnamed = [], []
    for mutant in mistyped:
        job, problems = check_document(mutant.document)
        errors = [p for p in problems if p.severity == "error"]
        if job is not None and not errors:
            accepted.append(mutant.label)
        elif not any(p.path == mutant.path and p.message.startswith("must be ") for p in errors):
            unnamed.append(f"{mutant.label}: {[p.render() for p in errors]}")
    assert not accepted, f"{len(accepted)} mistyped mutants accepted:\n" + "\n".join(accepted[:30])
    assert not unnamed, f"{len(unnamed)} mistyped mutants not said as a type error:\n" + "\n".join(unnamed[:30])
