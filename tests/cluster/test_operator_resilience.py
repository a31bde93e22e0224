"""The operator killed and restarted mid-work, deletion cascading, finished jobs never retrained, metrics."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import yaml
from controlplane.kubelet import reap_pods
from controlplane.waiting import wait_for
from kubernetes import client
from operator_support import Jobs, OperatorProcess, finish_pod, job_manifest

from headstart.api import names


def test_sigkill_while_creating_20_jobs_leaves_no_duplicates(operator, jobs, api_client, namespace):
    names_ = [f"batch-{i:02d}" for i in range(20)]
    batch = client.BatchV1Api(api_client)
    with ThreadPoolExecutor(4) as pool:
        creating = pool.map(lambda n: jobs.create(job_manifest(n)), names_)
        wait_for(lambda: batch.list_namespaced_job(namespace).items, "the first training Job", 30)
        operator.kill()  # in the middle: some jobs have children, some part of them, some none
        list(creating)
    left = len(batch.list_namespaced_job(namespace).items)
    operator.start()
    for name in names_:
        jobs.wait_status(name, "created and reported", lambda s: s.get("trainingJob") and s.get("phase") == "Pending",
                         timeout=90)
    core = client.CoreV1Api(api_client)
    selector = f"{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"
    found = sorted(o.metadata.name for o in batch.list_namespaced_job(namespace, label_selector=selector).items)
    assert found == names_
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    per_job = sorted(p.metadata.labels[names.LABEL_FINETUNEJOB] for p in pods)
    assert per_job == names_  # one pod each: no Job was created twice
    print(f"{left} of 20 training Jobs existed when the operator was killed")


def test_delete_removes_every_child(jobs, api_client, kubelet, namespace):
    jobs.create(job_manifest("gone"))
    pod = jobs.live_pod("gone")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    jobs.wait_phase("gone", "Pending", "ContainerCreating")
    jobs.delete("gone")
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    selector = names.selector_for("gone")

    def children() -> list[str]:
        reap_pods(api_client, namespace)  # what the kubelet does for a deleted pod
        lists = (batch.list_namespaced_job, core.list_namespaced_pod)
        return [o.metadata.name for listing in lists for o in listing(namespace, label_selector=selector).items]

    wait_for(lambda: not children(), "every child garbage-collected", 60)
    ftjs = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        "headstart.dev", "v1alpha1", namespace, "finetunejobs")["items"]
    assert not ftjs  # no finalizer held it


def test_a_finished_job_is_never_trained_again(operator, jobs, api_client, kubelet, namespace):
    manifest = job_manifest("once", runPolicy={"ttlSecondsAfterFinished": 0})
    jobs.create(manifest)
    pod = jobs.live_pod("once")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    finish_pod(api_client, namespace, pod.metadata.name, 0, json.dumps({"model": {"uri": "pvc://models/once"}}))
    jobs.wait_phase("once", "Succeeded", timeout=60)
    batch = client.BatchV1Api(api_client)
    wait_for(lambda: not batch.list_namespaced_job(namespace).items, "the finished Job to expire (ttl 0)", 60)
    # Restarting the operator (which resumes every FineTuneJob in the cluster) must not retrain it.
    operator.stop()
    operator.start()
    custom = client.CustomObjectsApi(api_client)

    def resumed() -> bool:  # every job not being deleted (those of a retiring namespace get no resume)
        live = [o for o in custom.list_cluster_custom_object("headstart.dev", "v1alpha1", "finetunejobs")["items"]
                if not o["metadata"].get("deletionTimestamp")]
        return operator.reconciles() >= len(live)

    wait_for(resumed, "the operator to resume every FineTuneJob that is not being deleted", 90)
    status = jobs.status("once")
    assert status["phase"] == "Succeeded" and status["model"]["uri"] == "pvc://models/once"
    assert not batch.list_namespaced_job(namespace).items


def test_healthz_and_metrics(operator, jobs):
    jobs.create(job_manifest("counted", resources={"gpus": 16}))
    jobs.wait_phase("counted", "Pending", "InsufficientGPU", timeout=60)
    assert operator.metric("headstart_finetunejobs", 'phase="Pending"') >= 1
    assert operator.reconciles() >= 1
    assert operator.metric("headstart_children_created_total", 'kind="Job"') >= 1
    text = operator.metrics()
    assert "headstart_reconcile_seconds_bucket" in text and "headstart_operator_errors_total" in text


def test_recreated_at_once_under_the_same_name_gets_its_own_children(jobs, api_client, namespace):
    first = jobs.create(job_manifest("again"))
    jobs.wait_status("again", "reported", lambda s: s.get("trainingJob"))
    jobs.delete("again")
    jobs.wait_gone("again")  # the operator's finalizer: the name is free once it let the first go
    second = jobs.create(job_manifest("again", stages=[{"name": "head", "epochs": 3, "optimizer": {
        "type": "Adam", "learningRate": 0.001}}]))  # before the garbage collector removed the first's children
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    batch = client.BatchV1Api(api_client)

    def owned_by_second() -> client.V1Job | None:
        job = batch.read_namespaced_job("again", namespace)
        return job if job.metadata.owner_references[0].uid == second["metadata"]["uid"] else None

    job = wait_for(owned_by_second, "the second FineTuneJob's own Job", 90)
    status = jobs.wait_status("again", "reported", lambda s: s.get("trainingJob"), 60)
    assert status["observedGeneration"] == second["metadata"]["generation"]
    rendered = yaml.safe_load(job.spec.template.metadata.annotations[names.ANNOTATION_SPEC])
    assert rendered["spec"]["stages"][0]["epochs"] == 3  # the second spec, not the first's leftover


def test_a_namespaced_operator_serves_only_its_namespaces(operator, api_client, new_namespace, tmp_path):
    mine, other = new_namespace(), new_namespace()
    operator.stop()  # one operator at a time
    scoped = OperatorProcess(operator.kubeconfig, tmp_path, scope=("--namespace", mine), endpoint=operator.endpoint)
    try:
        scoped.start()
        served, ignored = Jobs(api_client, mine), Jobs(api_client, other)
        served.create(job_manifest("here"))
        ignored.create(job_manifest("there"))
        served.wait_status("here", "reported", lambda s: s.get("trainingJob"))
        served.create(job_manifest("here-too"))  # processed after "there" was created: "there" had its chance
        served.wait_status("here-too", "reported", lambda s: s.get("trainingJob"))
        assert ignored.status("there") == {}
        assert not client.BatchV1Api(api_client).list_namespaced_job(other).items
    finally:
        scoped.stop()
        operator.start()


def test_the_periodic_resync_puts_right_a_status_write_that_was_lost(operator, api_client, kubelet, namespace,
                                                                      tmp_path):
    """The operator's status write after the pod's last event is refused (its right to patch status taken away
    for a moment, as an API server outage would refuse it); no event comes after: only the resync (every 3 s
    here, 60 s by default) brings the job to Succeeded."""
    import json as json_

    jobs = Jobs(api_client, namespace)
    operator.stop()  # one operator at a time: this one resyncs every 3 s
    quick = OperatorProcess(operator.kubeconfig, tmp_path, extra_args=("--resync-seconds", "3"),
                            endpoint=operator.endpoint)
    rbac = client.RbacAuthorizationV1Api(api_client)
    role = rbac.read_cluster_role("headstart-operator")
    rules = api_client.sanitize_for_serialization(role.rules)
    without_status = [r for r in rules if r["resources"] != ["finetunejobs/status"]]
    try:
        quick.start()
        jobs.create(job_manifest("lost"))
        pod = jobs.live_pod("lost")
        kubelet.wait_scheduled(namespace, pod.metadata.name)
        kubelet.set_phase(namespace, pod.metadata.name, "Running")
        jobs.wait_phase("lost", "Running")
        rbac.patch_cluster_role("headstart-operator", {"rules": without_status})
        model = {"uri": "s3://models/lost", "sha256": "b" * 64, "formats": ["keras"], "classNames": ["a", "b"]}
        finish_pod(api_client, namespace, pod.metadata.name, 0, json_.dumps({"model": model}))
        wait_for(lambda: jobs.batch.read_namespaced_job("lost", namespace).status.succeeded, "the Job complete", 60)
        wait_for(lambda: "status of" in quick.log_tail(200) and "not updated" in quick.log_tail(200),
                 "the operator's refused status write in its log", 60)
        assert jobs.status("lost")["phase"] == "Running"  # the transition was lost ...
        rbac.patch_cluster_role("headstart-operator", {"rules": rules})
        done = jobs.wait_phase("lost", "Succeeded", timeout=60)  # ... and the resync, with no event, finds it
        assert done["model"] == model
    finally:
        rbac.patch_cluster_role("headstart-operator", {"rules": rules})
        quick.stop()
        operator.start()
