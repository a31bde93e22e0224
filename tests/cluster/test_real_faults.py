"""Faults, for real, on the real node: a training pod killed mid-stage is replaced and the job finishes with
exactly its epochs (resumed from the checkpoint on the volume); a pod that cannot reach the operator still
trains to Succeeded (its model from the termination message), and holds no credential the API server takes;
bad input fails at once without a retry; a deadline and a memory limit that is too small are reported as such.

The kill is decided on what the trainer says (its log line for epoch 2 of the long stage, read as `headstart
logs -f` reads it), not on a status that arrives every few seconds, and the stage is long enough by
construction (12 epochs) that the pod is gone before it can end."""

from __future__ import annotations

import hashlib
import json
import re
import threading

import pytest
from controlplane.waiting import wait_for
from kubernetes import client
from story_support import STAGES, TUNE_EPOCHS, job

from headstart.sdk import Client, JobFailed

pytestmark = pytest.mark.timeout(1200)

IN_POD_CHECK = """
import json, os, ssl, urllib.error, urllib.request
token = open(os.environ["HEADSTART_PROGRESS_TOKEN"]).read()
url = "https://%s:%s/api/v1/namespaces/%s/pods" % (os.environ["KUBERNETES_SERVICE_HOST"],
                                                  os.environ["KUBERNETES_SERVICE_PORT"], os.environ["NS"])
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
try:
    code = urllib.request.urlopen(request, context=ssl._create_unverified_context(), timeout=10).status
except urllib.error.HTTPError as exc:
    code = exc.code
print(json.dumps({"serviceaccount": os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount"),
                  "api_with_progress_token": code}))
"""


def follow_in_background(sdk: Client, name: str) -> tuple[list[str], list[BaseException], threading.Thread]:
    """`headstart logs -f` from the start: it waits for the pod and follows across restarts to the end."""
    followed: list[str] = []
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            for line in sdk.logs(name, follow=True, timeout=900):
                followed.append(line)
        except BaseException as exc:  # reported by the test's assertions
            errors.append(exc)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    return followed, errors, follower


def test_a_pod_killed_mid_stage_is_replaced_and_the_job_resumes(reachable_operator, workspace, api_client,
                                                                kubeconfig, namespace):
    folder, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    sdk.submit(job("killed", image))
    core = client.CoreV1Api(api_client)
    followed, follow_errors, follower = follow_in_background(sdk, "killed")
    wait_for(lambda: any(line.startswith("stage 2 tune epoch 2/") for line in followed) or follow_errors,
             "the trainer's log line for epoch 2 of stage tune", 600)
    assert not follow_errors, f"following the logs failed: {follow_errors[0]!r}"
    first = sdk.backend.pods("killed")[-1].metadata.name
    core.delete_namespaced_pod(first, namespace, grace_period_seconds=0)  # as a node failure or preemption would
    done = sdk.wait("killed", timeout=900)
    pods = [p.metadata.name for p in sdk.backend.pods("killed")]
    assert first not in pods and len(pods) == 1  # replaced by the Job controller
    history = json.loads((folder / "models" / "killed" / "metrics.json").read_text())["stages"]
    assert [s["epochs_completed"] for s in history] == [1, TUNE_EPOCHS]
    assert [e["epoch"] for e in history[1]["epochs_history"]] == list(range(1, TUNE_EPOCHS + 1))  # each once
    assert [s.epochs_completed for s in done.status.stages] == [1, TUNE_EPOCHS]  # from the pods' snapshots
    log = "\n".join(sdk.logs("killed"))
    resumed = re.search(r"resuming stage 2 after epoch (\d+)", log)
    assert resumed and 2 <= int(resumed.group(1)) < TUNE_EPOCHS, log[-2000:]  # killed mid-stage, by construction
    follower.join(timeout=120)
    assert not follower.is_alive(), "following the logs did not end with the job"
    assert not follow_errors, f"following the logs failed: {follow_errors[0]!r}"
    restart = followed.index(f"--- pod {pods[0]} ---")
    assert any(line.startswith("stage 2 tune epoch 2/") for line in followed[:restart])
    assert any(line.startswith("resuming stage 2 after epoch") for line in followed[restart:])
    assert any(line.startswith("done:") for line in followed[restart:])


def test_a_pod_that_cannot_reach_the_operator_trains_to_the_end_without_any_api_credential(
        reachable_operator, workspace, api_client, kubectl, kubeconfig, namespace):
    folder, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    reachable_operator.cut()  # from the node, the operator's endpoint refuses every connection from now on
    try:
        sdk.submit(job("alone", image))
        followed, _, _ = follow_in_background(sdk, "alone")
        wait_for(lambda: any(line.startswith("stage 1 head") for line in followed), "the trainer training", 600)
        pod = sdk.backend.pods("alone")[-1].metadata.name
        inside = kubectl("exec", "-n", namespace, pod, "-c", "trainer", "--", "env", f"NS={namespace}",
                         "python", "-c", IN_POD_CHECK).stdout
        assert json.loads(inside.strip().splitlines()[-1]) == {"serviceaccount": False, "api_with_progress_token": 401}
        done = sdk.wait("alone", timeout=900)
    finally:
        reachable_operator.restore()
    assert done.status.model.uri == "pvc://work/models/alone"  # from the termination message
    assert done.status.model.sha256 == hashlib.sha256((folder / "models" / "alone" / "manifest.json").read_bytes()
                                                      ).hexdigest()
    # no snapshot reached the operator: the stages too come from the termination message
    assert [s.epochs_completed for s in done.status.stages] == [1, TUNE_EPOCHS]
    log = "\n".join(sdk.logs("alone"))
    assert "cannot report progress to the operator" in log and "training goes on" in log


def test_bad_input_fails_at_once_without_retries_and_reads_as_it_does_locally(reachable_operator, workspace,
                                                                              kubeconfig, namespace, tmp_path):
    folder, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    doc = job("nodata", image, runPolicy={"backoffLimit": 3})
    doc["spec"]["dataset"]["imageFolder"]["uri"] = "pvc://work/data/missing"
    sdk.submit(doc)
    with pytest.raises(JobFailed) as failed:
        sdk.wait("nodata", timeout=600)
    assert failed.value.reason == "BadDataset" and "no folder at" in failed.value.detail
    assert len(sdk.backend.pods("nodata")) == 1  # podFailurePolicy: no retry of a permanent failure

    # The same job and the same failure through the local backend: the same words, the same conditions.
    local = Client(backend="local", local_root=tmp_path / "runs")
    here = json.loads(json.dumps(doc))
    here["spec"]["baseModel"]["uri"] = str(folder / "base.keras")
    here["spec"]["dataset"]["imageFolder"]["uri"] = str(tmp_path / "missing")
    local.submit(here)
    with pytest.raises(JobFailed) as failed_here:
        local.wait("nodata", timeout=600)
    there, mine = sdk.get("nodata").status, local.get("nodata").status
    assert (mine.phase, mine.reason) == (there.phase, there.reason) == ("Failed", "BadDataset")
    assert [(c.type, c.status, c.reason) for c in mine.conditions] == \
        [(c.type, c.status, c.reason) for c in there.conditions]
    assert mine.message.split(":")[0] == there.message.split(":")[0] == \
        "the dataset cannot be read (exit code 11, not retried)"
    assert failed_here.value.reason == failed.value.reason
    assert [e.reason for e in local.events("nodata") if e.type == "Warning"] == ["BadDataset"]
    assert "BadDataset" in [e.reason for e in sdk.events("nodata") if e.type == "Warning"]


def test_a_deadline_is_reported_as_exceeded(reachable_operator, workspace, kubeconfig, namespace):
    _, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    long = [{**STAGES[0]}, {**STAGES[1], "epochs": 10000}]  # cannot end before its 10 s, however fast the machine
    sdk.submit(job("late", image, stages=long, runPolicy={"activeDeadlineSeconds": 10}))
    with pytest.raises(JobFailed) as failed:
        sdk.wait("late", timeout=300)
    assert failed.value.reason == "DeadlineExceeded"


def test_a_memory_limit_too_small_is_reported_as_oom(reachable_operator, workspace, kubeconfig, namespace):
    _, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    sdk.submit(job("tight", image, resources={"gpus": 0, "memory": "200Mi"}, runPolicy={"backoffLimit": 0}))
    with pytest.raises(JobFailed) as failed:
        sdk.wait("tight", timeout=300)
    assert failed.value.reason == "OOMKilled" and "spec.resources.memory" in failed.value.detail


def test_a_lost_node_is_said_and_the_job_resumes_when_its_pod_is_freed(reachable_operator, node, workspace,
                                                                       api_client, kubeconfig, namespace):
    """The node stops answering mid-stage (its kubelet gone, its pods' processes killed): within 60 s of the
    node going NotReady the status says NodeLost and `why` says what the platform must do; once the pod is
    freed (deleted) and a node is Ready again, the job resumes from its checkpoint and ends with exactly its
    epochs."""
    import time

    from headstart.sdk.explain import explain, render

    folder, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    sdk.submit(job("stranded", image))
    followed, _, _ = follow_in_background(sdk, "stranded")
    wait_for(lambda: any(line.startswith("stage 2 tune epoch 2/") for line in followed),
             "the trainer's log line for epoch 2 of stage tune", 600)
    first = sdk.backend.pods("stranded")[-1].metadata.name
    core = client.CoreV1Api(api_client)
    node.lose()
    revived = False
    try:
        def not_ready() -> float | None:
            conds = core.read_node(node.name).status.conditions or []
            return time.monotonic() if any(c.type == "Ready" and c.status != "True" for c in conds) else None

        went = wait_for(not_ready, "the node NotReady", 180)
        status = wait_for(lambda: (s := sdk.get("stranded").status) and s.reason == "NodeLost" and s, "NodeLost", 90)
        assert time.monotonic() - went < 60
        assert status.phase.value == "Running" and f"node {node.name} stopped answering" in status.message
        advice = "\n".join(render(explain(sdk.get("stranded"), sdk.events("stranded"))))
        assert "kubectl delete pod" in advice and "out-of-service" in advice, advice
        core.delete_namespaced_pod(first, namespace, grace_period_seconds=0)  # the platform frees the pod
        node.revive()
        revived = True
        done = sdk.wait("stranded", timeout=900)
    finally:
        if not revived:
            node.revive()
    history = json.loads((folder / "models" / "stranded" / "metrics.json").read_text())["stages"]
    assert [s["epochs_completed"] for s in history] == [1, TUNE_EPOCHS]
    assert [e["epoch"] for e in history[1]["epochs_history"]] == list(range(1, TUNE_EPOCHS + 1))
    assert [s.epochs_completed for s in done.status.stages] == [1, TUNE_EPOCHS]
    assert "resuming stage 2 after epoch" in "\n".join(sdk.logs("stranded"))


def test_a_canary_secret_appears_nowhere_whatever_fails(reachable_operator, operator, workspace, api_client,
                                                        kubeconfig, namespace):
    """A Secret's value (env secretKeyRef and envFrom) and a URI's credentials, in jobs that fail every way the
    trainer can be made to (bad data, bad base, an unwritable output, credentials in a dataset URI), one whose
    pod is deleted mid-epoch (SIGTERM: it checkpoints inside the epoch and its replacement resumes), one that
    succeeds and is then recreated under its name (another uid: OutputConflict, its model not adopted): the
    canary is in no status, event, pod log or termination message, operator log line or output file."""
    import uuid

    folder, image = workspace
    canary = f"canary{uuid.uuid4().hex}"
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="creds"),
                                                             string_data={"token": canary, "EXTRA": canary}))
    readonly = folder / "readonly"
    readonly.mkdir(mode=0o555)  # root's, after chown_tree: the trainer (uid 1000) may not write here
    env = {"env": [{"name": "TEAM_TOKEN", "secretKeyRef": {"name": "creds", "key": "token"}}],
           "envFrom": [{"secretRef": {"name": "creds"}}], "runPolicy": {"backoffLimit": 0}}
    one_epoch = [{**STAGES[0]}, {**STAGES[1], "epochs": 1}]
    docs = {name: job(name, image, stages=one_epoch, **env)
            for name in ("good", "nodata", "nobase", "readonly", "creds")}
    docs["nodata"]["spec"]["dataset"]["imageFolder"]["uri"] = "pvc://work/data/missing"
    docs["nobase"]["spec"]["baseModel"]["uri"] = "pvc://work/missing.keras"
    docs["readonly"]["spec"]["output"]["uri"] = "pvc://work/readonly/model"
    docs["creds"]["spec"]["dataset"]["imageFolder"]["uri"] = f"s3://AKIAEXAMPLE:{canary}@bucket/photos"
    docs["killed"] = job("killed", image, **{**env, "runPolicy": {"backoffLimit": 2}})
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    for doc in docs.values():
        sdk.submit(doc)
    followed, follow_errors, _ = follow_in_background(sdk, "killed")
    wait_for(lambda: any(line.startswith("stage 2 tune epoch 2/") for line in followed) or follow_errors,
             "the trainer's log line for epoch 2 of stage tune", 600)
    core.delete_namespaced_pod(sdk.backend.pods("killed")[-1].metadata.name, namespace)  # SIGTERM, graceful
    expected = {"good": ("Succeeded", None), "nodata": ("Failed", "BadDataset"),
                "nobase": ("Failed", "BadBaseModel"), "readonly": ("Failed", "OutputUnwritable"),
                "creds": ("Failed", None), "killed": ("Succeeded", None)}
    for name, (phase, reason) in expected.items():
        status = sdk.wait(name, phases={"Succeeded", "Failed"}, timeout=600).status
        assert status.phase == phase and (reason is None or status.reason == reason), (name, status)
    history = json.loads((folder / "models" / "killed" / "metrics.json").read_text())["stages"]
    assert [s["epochs_completed"] for s in history] == [1, TUNE_EPOCHS]  # resumed, each epoch once
    log = "\n".join(sdk.logs("killed"))  # the replacement's: it resumed inside the epoch (or after it)
    assert re.search(r"resuming (epoch \d+ of stage 2 after batch|stage 2 after epoch)", log), log[-2000:]
    first_uid = sdk.get("good").metadata.uid
    sdk.delete("good")  # and the same name again: another job, which may not adopt the first one's model
    sdk.submit(docs["good"])
    again = sdk.wait("good", phases={"Succeeded", "Failed"}, timeout=600).status
    assert (again.phase, again.reason) == ("Failed", "OutputConflict") and f"uid {first_uid}" in again.message
    custom = client.CustomObjectsApi(api_client)
    listed = custom.list_namespaced_custom_object("headstart.dev", "v1alpha1", namespace, "finetunejobs")["items"]
    # the spec is the user's own writing (the URI as given); everything else of the object, status and kopf's
    # bookkeeping annotations (which copy the spec) included, may carry none of it
    seen = {"finetunejobs": json.dumps([{k: v for k, v in item.items() if k != "spec"} for item in listed]),
            "events": json.dumps(api_client.sanitize_for_serialization(core.list_namespaced_event(namespace)))}
    for pod in core.list_namespaced_pod(namespace).items:
        seen[f"pod {pod.metadata.name}"] = json.dumps(api_client.sanitize_for_serialization(pod.status))
        try:
            seen[f"log {pod.metadata.name}"] = core.read_namespaced_pod_log(pod.metadata.name, namespace)
        except client.ApiException:  # a container that never started has no log
            pass
    seen["operator log"] = operator.log_path.read_text(errors="replace")
    for path in folder.rglob("*"):
        if path.is_file():
            seen[f"output {path.relative_to(folder)}"] = path.read_bytes().decode("latin-1")
    assert any(key.startswith("output models/good/") for key in seen)  # the good job's outputs were read
    assert "s3://***@bucket/photos" in seen["finetunejobs"] + seen["events"]  # said, redacted
    leaked = [where for where, text in seen.items() if canary in text]
    assert not leaked, f"the canary is shown in: {leaked}"
