"""One writer per output: which other job writes (or writes first) the output a job wants (pure)."""

from __future__ import annotations

from headstart.operator.sharing import output_key, writer_of


def ftj(name, uri, namespace="team-a", created="2026-01-01T00:00:00Z", uid=None, phase=None):
    body = {"metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}",
                         "creationTimestamp": created}, "spec": {"output": {"uri": uri}}}
    if phase:
        body["status"] = {"phase": phase}
    return body


def test_a_bucket_is_one_output_everywhere_a_claim_one_per_namespace():
    assert output_key("a", "s3://models/x/") == output_key("b", "S3://models/x") == "s3://models/x"
    assert output_key("a", "pvc://models/x") != output_key("b", "pvc://models/x")
    assert output_key("a", "pvc://models/x/") == output_key("a", "pvc://models/x")


def test_the_writer_is_the_active_job_or_the_one_created_first():
    me = ftj("me", "s3://models/x", created="2026-01-01T00:01:00Z")
    running = ftj("running", "s3://models/x/", namespace="team-b", created="2026-01-01T00:05:00Z")
    active = {running["metadata"]["uid"]}
    has_job = lambda job: job["metadata"]["uid"] in active  # noqa: E731
    assert writer_of(me, [me, running], has_job) is running  # created later, but writing now
    done = ftj("done", "s3://models/x", phase="Succeeded")
    assert writer_of(me, [me, done], has_job) is None
    elsewhere = ftj("other", "pvc://models/x", namespace="team-b")
    mine = ftj("me", "pvc://models/x", created="2026-01-01T00:01:00Z")
    assert writer_of(mine, [mine, elsewhere], has_job) is None  # another namespace's claim
    earlier = ftj("earlier", "s3://models/x", created="2026-01-01T00:00:30Z")
    later = ftj("later", "s3://models/x", created="2026-01-01T00:02:00Z")
    assert writer_of(me, [me, earlier, later], lambda job: False) is earlier
    assert writer_of(earlier, [me, earlier, later], lambda job: False) is None  # it goes first
    assert writer_of(later, [me, earlier, later], lambda job: False) is earlier
