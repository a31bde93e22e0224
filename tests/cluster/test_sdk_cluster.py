"""The SDK and the CLI against the real control plane, with the operator running under its own RBAC.

Pods are moved through their phases by the `kubelet` fixture (this control plane's nodes are fake; the whole
story on a real node is in test_story.py)."""

from __future__ import annotations

import json

import pytest
import yaml
from controlplane.waiting import wait_for
from operator_support import finish_pod, job_manifest, service_account_token, token_kubeconfig
from typer.testing import CliRunner

from headstart.api.exitcodes import ExitCode
from headstart.sdk import Client, InvalidStoredJob, JobFailed, NotFound, Timeout
from headstart.sdk.cli import app


@pytest.fixture
def cli(kubeconfig, namespace):
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, [*args, "--kubeconfig", str(kubeconfig), "-n", namespace], input=input)

    return run


def write(tmp_path, doc: dict):
    path = tmp_path / f"{doc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_submit_get_list_and_delete_through_the_cli(operator, cli, tmp_path, namespace, kubeconfig):
    manifest = job_manifest("pets")
    result = cli("submit", "-f", str(write(tmp_path, manifest)))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "pets"
    got = wait_for(lambda: (r := cli("get", "pets", "-o", "json")).exit_code == 0 and
                   json.loads(r.stdout).get("status", {}).get("phase") and json.loads(r.stdout),
                   "the operator's first status", 60)
    assert got["kind"] == "FineTuneJob" and got["spec"]["output"] == manifest["spec"]["output"]
    assert got["status"]["phase"] == "Pending" and got["status"]["trainingJob"] == "pets"
    table = cli("list").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "PHASE", "REASON"] and table[-1].split()[:2] == ["pets", "Pending"]
    before = CliRunner().invoke(app, ["-n", namespace, "--kubeconfig", str(kubeconfig), "get", "pets", "-o", "name"])
    assert before.stdout == "finetunejob.headstart.dev/pets\n", before.output  # the options before the command
    everywhere = CliRunner().invoke(app, ["list", "-A", "--kubeconfig", str(kubeconfig), "-o", "yaml"])
    assert everywhere.exit_code == 0
    assert any(item["metadata"]["namespace"] == namespace for item in yaml.safe_load(everywhere.stdout)["items"])
    again = cli("submit", "-f", str(tmp_path / "pets.yaml"))
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert cli("delete", "pets").exit_code == 0
    gone = cli("get", "pets")
    assert gone.exit_code == 1 and f"FineTuneJob {namespace}/pets not found" in gone.stderr


def test_wait_follows_the_job_to_success_and_reads_the_model(operator, api_client, kubelet, kubeconfig, namespace):
    client = Client(namespace=namespace, kubeconfig=kubeconfig)
    name = client.submit(job_manifest("done"))
    pod = wait_for(lambda: client.backend.pods(name), "a training pod", 60)[0]
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Running")
    client.wait(name, phases={"Running"}, timeout=60)
    model = {"uri": "s3://models/done", "sha256": "a" * 64, "formats": ["keras"], "classNames": ["a", "b"]}
    finish_pod(api_client, namespace, pod.metadata.name, 0, message=json.dumps({"model": model}))
    phases: list[str] = []
    job = client.wait(name, timeout=60, callback=lambda j: phases.append(j.status.phase.value if j.status and
                                                                         j.status.phase else "-"))
    assert job.status.phase.value == "Succeeded" and phases[-1] == "Succeeded"
    assert job.status.model.uri == "s3://models/done" and job.status.model.class_names == ["a", "b"]


def test_a_failed_job_raises_with_its_reason_and_why_explains_it(operator, api_client, kubelet, kubeconfig, cli,
                                                                  namespace):
    client = Client(namespace=namespace, kubeconfig=kubeconfig)
    name = client.submit(job_manifest("broken"))
    pod = wait_for(lambda: client.backend.pods(name), "a training pod", 60)[0]
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    finish_pod(api_client, namespace, pod.metadata.name, int(ExitCode.DATASET),
               message=json.dumps({"error": "dataset.imageFolder: no folder at s3://data/photos"}))
    with pytest.raises(JobFailed) as failed:
        client.wait(name, timeout=60)
    assert failed.value.reason == "BadDataset" and "no folder at" in str(failed.value)
    why = cli("why", name)
    assert why.exit_code == 0, why.output
    assert why.stdout.startswith("broken is Failed (failed): BadDataset")
    assert "next: the dataset cannot be read: check spec.dataset" in why.stdout
    watch = cli("watch", name, "--timeout", "30")
    assert watch.exit_code == 1 and "BadDataset" in watch.stderr


def test_why_explains_a_job_that_cannot_be_scheduled(operator, cli, tmp_path):
    doc = job_manifest("greedy", resources={"gpus": 16})  # no node has 16 GPUs
    assert cli("submit", "-f", str(write(tmp_path, doc))).exit_code == 0
    why = wait_for(lambda: (r := cli("why", "greedy")).exit_code == 0 and "InsufficientGPU" in r.stdout and r,
                   "why: InsufficientGPU", 90)
    assert "Insufficient nvidia.com/gpu" in why.stdout  # from the scheduler's event
    assert "next: no node has the GPUs free" in why.stdout


def test_suspend_and_resume_through_the_cli(operator, cli, tmp_path, kubeconfig, namespace):
    assert cli("submit", "-f", str(write(tmp_path, job_manifest("pause")))).exit_code == 0
    client = Client(namespace=namespace, kubeconfig=kubeconfig)
    client.wait("pause", phases={"Pending", "Running"}, timeout=60)
    assert cli("suspend", "pause").exit_code == 0
    assert client.get("pause").spec.run_policy.suspend is True
    assert client.wait("pause", phases={"Suspended"}, timeout=60).status.reason
    assert cli("resume", "pause").exit_code == 0
    assert client.wait("pause", phases={"Pending", "Running"}, timeout=60).spec.run_policy.suspend is False


def test_waits_time_out_and_validate_their_arguments(operator, cli, kubeconfig, namespace, tmp_path):
    client = Client(namespace=namespace, kubeconfig=kubeconfig)
    name = client.submit(job_manifest("stuck", resources={"gpus": 16}))
    with pytest.raises(Timeout, match="still"):
        client.wait(name, timeout=2)
    watch = cli("watch", name, "--timeout", "2")
    assert watch.exit_code == 3 and "still" in watch.stderr
    with pytest.raises(ValueError):
        client.wait(name, phases={"Finished"})
    with pytest.raises(NotFound):
        client.wait("nobody", timeout=5)


def test_errors_a_user_meets(operator, kubectl, kubeconfig, namespace, new_namespace, tmp_path):
    runner = CliRunner()
    # no cluster: a kubeconfig whose server does not answer
    dead = yaml.safe_load(kubeconfig.read_text())
    dead["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    (tmp_path / "dead").write_text(yaml.safe_dump(dead))
    result = runner.invoke(app, ["list", "--kubeconfig", str(tmp_path / "dead")])
    assert result.exit_code == 1 and result.stderr == (
        "headstart list: the connection to the server 127.0.0.1:1 was refused - did you specify the right host or "
        "port?\n")
    # no kubeconfig at all
    result = runner.invoke(app, ["get", "x", "--kubeconfig", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "no kubeconfig at" in result.stderr
    # an unknown context
    result = runner.invoke(app, ["list", "--kubeconfig", str(kubeconfig), "--context", "prod"])
    assert result.exit_code == 1 and "no context 'prod'" in result.stderr
    # a namespace this user may not read
    other = new_namespace()
    kubectl("create", "serviceaccount", "intern", "-n", other)
    token = service_account_token(kubectl, other, "intern")
    limited = token_kubeconfig(kubeconfig, token, tmp_path / "intern.kubeconfig")
    result = runner.invoke(app, ["list", "--kubeconfig", str(limited), "-n", namespace])
    assert result.exit_code == 1 and "forbidden" in result.stderr
    # an invalid manifest: refused before the API server sees it
    bad = job_manifest("bad")
    bad["spec"]["stages"][0]["optimizer"]["momentum"] = 0.9
    result = runner.invoke(app, ["submit", "-f", str(write(tmp_path, bad)), "--kubeconfig", str(kubeconfig),
                                 "-n", namespace])
    assert result.exit_code == 1 and "Adam takes no momentum" in result.stderr
    # usage errors
    assert runner.invoke(app, ["get", "x", "-o", "xml", "--kubeconfig", str(kubeconfig)]).exit_code == 2
    assert runner.invoke(app, ["get"]).exit_code == 2


def test_the_crd_missing_is_said_plainly(control_plane_bins, tmp_path):
    """A control plane of its own, without the CRD (the session's has it)."""
    from controlplane.cluster import ControlPlane

    with ControlPlane(bins=control_plane_bins, gpu_nodes=0) as bare:
        result = CliRunner().invoke(app, ["list", "--kubeconfig", str(bare.kubeconfig)])
        assert result.exit_code == 1
        assert "serves no FineTuneJobs" in result.stderr and "headstart crd | kubectl apply -f -" in result.stderr


def test_fetch_from_object_storage_verifies_the_model(operator, api_client, kubelet, kubeconfig, namespace,
                                                      s3_server, tmp_path, cli):
    import fsspec

    from headstart.api.output_manifest import Owner
    from headstart.trainer import outputs

    fsspec.filesystem("s3").mkdir("fetched")
    (tmp_path / "model.keras").write_bytes(b"w" * 4096)
    info = outputs.publish("s3://fetched/pets", {"model.keras": str(tmp_path / "model.keras")}, owner=Owner("pets"),
                           spec_sha256="0" * 64, formats=["keras"], class_names=["cat", "dog"])
    client = Client(namespace=namespace, kubeconfig=kubeconfig)
    name = client.submit(job_manifest("pets", output={"uri": "s3://fetched/pets"}))
    pod = wait_for(lambda: client.backend.pods(name), "a training pod", 60)[0]
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    model = {"uri": info.uri, "sha256": info.sha256, "formats": ["keras"], "classNames": ["cat", "dog"]}
    finish_pod(api_client, namespace, pod.metadata.name, 0, message=json.dumps({"model": model}))
    client.wait(name, timeout=60)
    result = cli("fetch", name, "--to", str(tmp_path / "here"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "here" / "model.keras").read_bytes() == b"w" * 4096
    fsspec.filesystem("s3").pipe_file("fetched/pets/model.keras", b"tampered")
    result = cli("fetch", name, "--to", str(tmp_path / "again"))
    assert result.exit_code == 1 and "do not match the manifest" in result.stderr
    assert not (tmp_path / "again").exists() or not any((tmp_path / "again").iterdir())


def test_a_wait_from_a_version_the_server_no_longer_has_lists_again(operator, kubeconfig, namespace):
    """A watch resumed from a resourceVersion the API server no longer keeps gets 410 Gone; the wait then
    lists again and goes on (here: finds the phase it waits for)."""
    from kubernetes import watch
    from kubernetes.client.exceptions import ApiException

    client = Client(namespace=namespace, kubeconfig=kubeconfig)
    name = client.submit(job_manifest("old"))
    with pytest.raises(ApiException) as gone:  # version 1: older than anything the server still has
        client.backend._next_change(watch.Watch(), name, "1", 5)
    assert gone.value.status == 410
    calls = []
    real = client.backend.get_raw

    def first_too_old(job_name: str) -> dict:
        raw = real(job_name)
        calls.append(job_name)
        if len(calls) == 1:
            raw["metadata"]["resourceVersion"], raw["status"] = "1", {}
        return raw

    client.backend.get_raw = first_too_old
    job = client.wait(name, phases={"Pending"}, timeout=60)
    assert job.status.phase.value == "Pending" and len(calls) == 2  # listed again after the 410


def test_a_stored_spec_the_models_refuse_is_an_explicit_invalid_result(operator, kubectl, kubeconfig, namespace,
                                                                       cli):
    """The API server cannot type the splits (a string or a number), so it stores this job; the SDK says what
    is wrong with it instead of handing out a half-typed FineTuneJob, and every command still shows it."""
    doc = job_manifest("half")
    doc["spec"]["dataset"]["splits"] = {"validation": "train[80%:]"}  # an image folder takes fractions
    assert kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc), check=False).returncode == 0
    client = Client(namespace=namespace, kubeconfig=kubeconfig)
    job = client.get("half")
    assert isinstance(job, InvalidStoredJob)
    assert job.problems == ("spec.dataset.splits.validation: for an image folder, a fraction from 0 to below 1",)
    assert job.spec["dataset"]["splits"] == {"validation": "train[80%:]"} and job.metadata.uid
    with pytest.raises(JobFailed) as failed:  # the operator refuses it too
        client.wait("half", timeout=60)
    assert failed.value.reason == "InvalidSpec"
    listed = cli("list", "-o", "wide")
    assert listed.exit_code == 0 and listed.stdout.splitlines()[-1].split()[:3] == ["half", "Failed", "InvalidSpec"]
    shown = yaml.safe_load(cli("get", "half", "-o", "yaml").stdout)
    assert shown["spec"]["dataset"]["splits"] == {"validation": "train[80%:]"}
    why = cli("why", "half")
    assert "  invalid spec: spec.dataset.splits.validation: for an image folder" in why.stdout, why.output
    assert cli("delete", "half").exit_code == 0
