"""The SDK as a notebook reads it: one Backend protocol both backends satisfy, typed results (an explicit
InvalidStoredJob, never a half-typed model), useful reprs, Keras-style docstrings, only its own names."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest
import yaml

import headstart.sdk
from headstart.api import FineTuneJob
from headstart.sdk import Backend, Client, InvalidStoredJob
from headstart.sdk.cluster import ClusterBackend
from headstart.sdk.local import LocalBackend
from headstart.sdk.results import job_from

REPO = Path(__file__).resolve().parents[2]
SEED = yaml.safe_load((REPO / "examples" / "flowers-xception.yaml").read_text())


def stored(spec: dict | None = None, status: dict | None = None) -> dict:
    """A FineTuneJob as the API server returns it (strings for timestamps, server-set metadata)."""
    return {"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob",
            "metadata": {"name": "flowers", "namespace": "team-a", "uid": "u-1", "resourceVersion": "42",
                         "generation": 1, "creationTimestamp": "2026-11-28T10:00:00Z"},
            "spec": spec if spec is not None else SEED["spec"],
            **({"status": status} if status is not None else {})}


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "dev", "cluster": {"server": server}}],
        "users": [{"name": "dev", "user": {"token": "s3cr3t"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "dev", "namespace": "team-a"}}]}))
    return path


def test_both_backends_satisfy_the_backend_protocol(tmp_path):
    protocol = {name: inspect.signature(member) for name, member in vars(Backend).items()
                if callable(member) and not name.startswith("_")}
    assert set(protocol) >= {"submit", "get", "list", "wait", "logs", "events", "fetch", "delete", "set_suspend"}
    for backend in (LocalBackend, ClusterBackend):
        for name, wanted in protocol.items():
            have = inspect.signature(getattr(backend, name))
            assert list(have.parameters)[:len(wanted.parameters)] == list(wanted.parameters), (backend, name)
            extra = list(have.parameters.values())[len(wanted.parameters):]
            assert all(p.default is not inspect.Parameter.empty for p in extra), (backend, name, extra)
    assert isinstance(LocalBackend(tmp_path), Backend)
    assert typing.get_type_hints(Client)["backend"] is Backend


def test_an_invalid_stored_spec_is_an_explicit_result_with_its_problems():
    spec = {**SEED["spec"], "stages": [{"name": "head", "epochs": 0, "optimizer": {"type": "SGD",
                                                                                  "learningRate": 0.1}}]}
    job = job_from(stored(spec, {"phase": "Failed", "reason": "InvalidSpec", "startTime": "2026-11-28T10:00:01Z"}))
    assert isinstance(job, InvalidStoredJob) and job.valid is False
    assert job.problems == ("spec.stages[0].epochs: must be greater than 0",)
    assert job.name == "flowers" and job.metadata.resource_version == "42"
    assert job.status.phase.value == "Failed" and job.status.start_time.year == 2026  # typed
    assert job.spec["stages"][0]["epochs"] == 0  # as stored: a dict, not a model posing as one
    assert repr(job) == ("InvalidStoredJob(name='flowers', namespace='team-a', phase='Failed', "
                         "problems=['spec.stages[0].epochs: must be greater than 0'])")
    unreadable = job_from(stored(spec, {"phase": "Finished"}))
    assert unreadable.status is None and "status: unreadable (not a FineTuneJob status)" in unreadable.problems


def test_a_valid_stored_job_is_a_fine_tune_job_read_leniently_as_the_server_stored_it():
    job = job_from(stored(status={"phase": "Running", "stage": "head", "epoch": 3, "epochs": 5,
                                  "conditions": [{"type": "Ready", "status": "False",
                                                  "lastTransitionTime": "2026-11-28T10:00:02Z"}]}))
    assert isinstance(job, FineTuneJob) and job.metadata.creation_timestamp.year == 2026
    assert repr(job) == ("FineTuneJob(name='flowers', namespace='team-a', phase='Running', stage='head epoch 3/5', "
                         "stages=['head', 'finetune'])")
    assert str(job) == repr(job)


def test_client_repr_says_where_it_points_never_credentials(tmp_path):
    local = Client(backend="local", local_root=tmp_path / "runs")
    assert repr(local) == f"Client(backend='local', local_root='{tmp_path / 'runs'}')"
    cluster = Client(kubeconfig=kubeconfig(tmp_path / "kc", "https://admin:hunter2@10.0.0.1:6443/k8s"))
    assert repr(cluster) == "Client(backend='cluster', context='dev', namespace='team-a', server='https://10.0.0.1:6443')"
    assert "hunter2" not in repr(cluster) and "s3cr3t" not in repr(cluster)


def test_every_public_client_method_has_a_keras_style_docstring():
    members = {"__init__": Client} | {name: member for name, member in vars(Client).items()
                                      if not name.startswith("_") and callable(member)}
    assert set(members) >= {"__init__", "submit", "get", "list", "wait", "logs", "events", "fetch", "delete",
                            "suspend", "resume"}
    for name, member in members.items():
        doc = inspect.getdoc(member) or ""
        takes_args = len(inspect.signature(Client.__init__ if name == "__init__" else member).parameters) > 1
        assert not takes_args or "\nArgs:\n" in doc or doc.startswith("Args:"), name
        if name not in ("__init__", "delete", "suspend", "resume"):
            assert "\nReturns:\n" in doc, name
        assert "\nRaises:\n" in doc, name
    assert inspect.getdoc(Client.namespace.fget)


def test_headstart_sdk_exports_only_its_names():
    public = [name for name in dir(headstart.sdk) if not name.startswith("_")]
    assert public == sorted(headstart.sdk.__all__)
    for name in headstart.sdk.__all__:
        assert getattr(headstart.sdk, name) is not None
    with pytest.raises(AttributeError):
        headstart.sdk.nothing_here  # noqa: B018
