"""kopf is configured explicitly at start-up: own finalizer and annotation prefix, no status.kopf, timeouts,
selectors, standalone; the leaner diff-base gives kopf's own essence."""

from __future__ import annotations

import copy
import json
import logging

import kopf
import pytest

from headstart.api import names
from headstart.operator.__main__ import main, settings_for
from headstart.operator.config import OperatorConfig
from headstart.operator.handlers import CHILD_SELECTOR, JOBS, PODS, LeanDiffBaseStorage


def test_settings_are_explicit():
    s = settings_for(OperatorConfig(all_namespaces=True))
    assert s.peering.standalone is True
    assert s.persistence.finalizer == names.FINALIZER
    assert isinstance(s.persistence.progress_storage, kopf.AnnotationsProgressStorage)  # not status.kopf
    assert s.persistence.progress_storage.prefix == names.KOPF_PREFIX
    assert isinstance(s.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert s.persistence.diffbase_storage.prefix == names.KOPF_PREFIX
    assert (s.watching.server_timeout, s.watching.client_timeout, s.watching.connect_timeout) == (270, 300, 10)
    assert s.networking.request_timeout == 30
    # a request (a watch's) retries through an API server's restart: minutes, not the 31 s that stopped it
    assert sum(s.networking.error_backoffs) >= 300 and max(s.networking.error_backoffs) <= 30
    assert s.posting.enabled and not s.posting.loggers and s.posting.level == logging.INFO
    assert s.watching.label_selectors[JOBS] == CHILD_SELECTOR == s.watching.label_selectors[PODS]
    assert s.scanning.disabled is True


BODY = {"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob",
        "metadata": {"name": "x", "uid": "u", "resourceVersion": "7", "generation": 2, "labels": {"team": "a"},
                     "annotations": {"note": "kept", f"{names.KOPF_PREFIX}/last-handled-configuration": "{}",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                     "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
        "spec": {"stages": [{"name": "head", "epochs": 2}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}
WITH_ENV = {**BODY, "spec": {**BODY["spec"], "env": [{"name": "TOKEN", "value": "pasted-s3cr3t"},
                                                     {"name": "KEY", "secretKeyRef": {"name": "s", "key": "k"}}]}}


def test_lean_diff_base_is_kopfs_essence():
    args = {"prefix": names.KOPF_PREFIX, "key": "last-handled-configuration"}
    theirs = kopf.AnnotationsDiffBaseStorage(**args).build(body=kopf.Body(copy.deepcopy(BODY)))
    ours = LeanDiffBaseStorage(**args).build(body=kopf.Body(copy.deepcopy(BODY)))
    assert ours == theirs
    assert "status" not in ours and ours["spec"] == BODY["spec"]
    for extra in ([("spec",)], [("status", "phase")]):  # spec: the operator's update handler
        theirs = kopf.AnnotationsDiffBaseStorage(**args).build(body=kopf.Body(copy.deepcopy(BODY)), extra_fields=extra)
        ours = LeanDiffBaseStorage(**args).build(body=kopf.Body(copy.deepcopy(BODY)), extra_fields=extra)
        assert ours == theirs, extra


def test_the_diff_base_keeps_no_env_value_but_sees_it_change():
    storage = LeanDiffBaseStorage(prefix=names.KOPF_PREFIX, key="last-handled-configuration")
    for extra in (None, [("spec",)], [("status", "phase")]):
        essence = storage.build(body=kopf.Body(copy.deepcopy(WITH_ENV)), extra_fields=extra)
        assert "pasted-s3cr3t" not in json.dumps(essence), extra
        changed = copy.deepcopy(WITH_ENV)
        changed["spec"]["env"][0]["value"] = "another"
        assert storage.build(body=kopf.Body(changed), extra_fields=extra) != essence
        assert essence["spec"]["env"][1] == WITH_ENV["spec"]["env"][1]  # a Secret reference is not a value


def test_the_diff_base_keeps_no_uri_credentials_but_sees_them_change():
    storage = LeanDiffBaseStorage(prefix=names.KOPF_PREFIX, key="last-handled-configuration")
    body = copy.deepcopy(BODY)
    body["spec"]["dataset"] = {"imageFolder": {"uri": "s3://AKIA:pasted-s3cr3t@bucket/photos"}}
    body["spec"]["baseModel"] = {"uri": "https://host/base.keras?X-Amz-Signature=pasted-signature"}
    for extra in (None, [("spec",)], [("status", "phase")]):
        essence = storage.build(body=kopf.Body(copy.deepcopy(body)), extra_fields=extra)
        text = json.dumps(essence)
        assert "pasted-s3cr3t" not in text and "pasted-signature" not in text, extra
        assert "@bucket/photos" in text and "https://host/base.keras?sha256:" in text
        changed = copy.deepcopy(body)
        changed["spec"]["dataset"]["imageFolder"]["uri"] = "s3://AKIA:another@bucket/photos"
        assert storage.build(body=kopf.Body(changed), extra_fields=extra) != essence


@pytest.mark.parametrize("argv, env, words", [
    ([], {}, "--namespace NS"),
    (["-A", "--image-pull-policy", "Sometimes"], {}, "--image-pull-policy"),
    (["-A", "--metrics-port", "70000"], {}, "--metrics-port"),
    (["-A"], {"HEADSTART_METRICS_PORT": "nine"}, "--metrics-port: 'nine' is not a port"),  # was a traceback
    (["-A", "--progress-port", "x"], {}, "--progress-port"),
    (["-A", "--tls-cert-file", "/nowhere/tls.crt"], {}, "--tls-cert-file: cannot read /nowhere/tls.crt"),
    (["-A", "--progress-url", "http://op:8443"], {}, "--progress-url"),
    (["-A"], {"HEADSTART_RESYNC_SECONDS": "soon"}, "--resync-seconds: 'soon' is not a number of seconds"),
])
def test_bad_flags_are_one_line_and_exit_2(argv, env, words, capsys, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err


def test_a_key_that_is_not_the_certificates_is_said_at_start(tmp_path, capsys):
    from headstart.operator import certs

    certs.write_files(certs.make_bundle(["127.0.0.1"]), tmp_path / "a")
    certs.write_files(certs.make_bundle(["127.0.0.1"]), tmp_path / "b")
    argv = ["-A", f"--tls-cert-file={tmp_path / 'a' / 'tls.crt'}", f"--tls-key-file={tmp_path / 'b' / 'tls.key'}",
            f"--tls-ca-file={tmp_path / 'a' / 'ca.crt'}"]
    assert main(argv) == 2
    assert "--tls-key-file" in capsys.readouterr().err
