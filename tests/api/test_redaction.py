"""No URI's credentials in what anyone may read: redact() and the places that use it (the trainer's one-line
errors and log lines, every status message, events and operator log lines through the Verdict)."""

from __future__ import annotations

import io

from headstart.api.reasons import Phase, Reason
from headstart.api.uris import redact, redact_text
from headstart.api.verdict import Verdict, status_patch
from headstart.trainer.errors import DatasetError
from headstart.trainer.reporting import LineReporter


def test_credentials_and_query_strings_are_dropped_paths_kept():
    assert redact("s3://AKIA:s3cr3t@bucket/x/y?X-Amz-Signature=ab&X-Amz-Credential=cd") == "s3://***@bucket/x/y"
    assert redact("https://user:pw@host:8443/base.keras?token=t0k3n") == "https://***@host:8443/base.keras"
    assert redact("https://storage.example/models/x.keras?sig=abc") == "https://storage.example/models/x.keras"
    for kept in ("pvc://models/x", "gs://bucket/p/q", "/data/with?question", "./headstart-runs/x", "file:///a/b"):
        assert redact(kept) == kept
    assert redact_text("cannot read s3://k:v@b/x (and gs://u:p@c/y): denied") == \
        "cannot read s3://***@b/x (and gs://***@c/y): denied"


def test_the_trainers_errors_and_lines_never_carry_them():
    error = DatasetError("dataset.imageFolder: no folder at s3://AKIA:s3cr3t@bucket/photos?token=t0k3n")
    assert "s3cr3t" not in str(error) and "t0k3n" not in str(error)
    assert str(error) == "dataset.imageFolder: no folder at s3://***@bucket/photos"
    stream = io.StringIO()
    LineReporter(stream).message("writing keras to s3://AKIA:s3cr3t@bucket/model")
    assert stream.getvalue() == "writing keras to s3://***@bucket/model\n"


def test_a_status_message_is_redacted_whoever_writes_it():
    verdict = Verdict(Phase.FAILED, Reason.BAD_DATASET, "no folder at https://u:p4ss@h/x?sig=s1gn")
    assert verdict.message == "no folder at https://***@h/x"
    patch = status_patch({}, verdict, 1, "2026-01-01T00:00:00Z")
    assert "p4ss" not in str(patch) and "s1gn" not in str(patch)
