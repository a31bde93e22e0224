"""batch/v1 Jobs: the Job controller makes pods, the scheduler binds them to GPU
nodes, and pod status written as a kubelet would drives the Job to its end."""

from __future__ import annotations

from controlplane.kubelet import GPU_RESOURCE, retire_namespace
from controlplane.waiting import wait_for
from kubernetes import client


def _job(name: str, gpus: int = 1, ttl: int | None = None, backoff: int = 0) -> client.V1Job:
    container = client.V1Container(
        name="train",
        image="example.invalid/trainer:latest",
        resources=client.V1ResourceRequirements(limits={GPU_RESOURCE: str(gpus)}),
    )
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            backoff_limit=backoff,
            ttl_seconds_after_finished=ttl,
            template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
                restart_policy="Never",
                containers=[container],
                node_selector={"nvidia.com/gpu.present": "true"},
            )),
        ),
    )


def _job_pod(core: client.CoreV1Api, namespace: str, job: str) -> client.V1Pod:
    def one_pod():
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        return pods[0] if len(pods) == 1 else None

    return wait_for(one_pod, f"the Job controller to create a pod for {namespace}/{job}", 30)


def _condition(batch: client.BatchV1Api, namespace: str, job: str, kind: str) -> bool:
    conds = batch.read_namespaced_job_status(job, namespace).status.conditions or []
    return any(c.type == kind and c.status == "True" for c in conds)


def test_job_pod_is_scheduled_onto_a_gpu_node_and_completes(api_client, kubelet, namespace):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    batch.create_namespaced_job(namespace, _job("complete", gpus=2))
    pod = _job_pod(core, namespace, "complete")
    assert pod.metadata.owner_references[0].kind == "Job"

    node = kubelet.wait_scheduled(namespace, pod.metadata.name)
    assert node in kubelet.node_names

    kubelet.set_phase(namespace, pod.metadata.name, "Running")
    wait_for(lambda: batch.read_namespaced_job_status("complete", namespace).status.active == 1,
             "Job to count one active pod", 30)
    kubelet.set_phase(namespace, pod.metadata.name, "Succeeded")
    wait_for(lambda: _condition(batch, namespace, "complete", "Complete"),
             "Job condition Complete=True", 60)
    job = batch.read_namespaced_job_status("complete", namespace)
    assert job.status.succeeded == 1
    assert job.status.completion_time is not None


def test_failed_pod_fails_the_job(api_client, kubelet, namespace):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    batch.create_namespaced_job(namespace, _job("fails", backoff=0))
    pod = _job_pod(core, namespace, "fails")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Failed", exit_code=3)
    wait_for(lambda: _condition(batch, namespace, "fails", "Failed"),
             "Job condition Failed=True", 60)


def test_pod_asking_for_more_gpus_than_any_node_stays_pending(api_client, control_plane,
                                                               namespace):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    too_many = control_plane.gpus_per_node + 1
    batch.create_namespaced_job(namespace, _job("greedy", gpus=too_many))
    pod = _job_pod(core, namespace, "greedy")

    def unschedulable() -> bool:
        conds = core.read_namespaced_pod(pod.metadata.name, namespace).status.conditions or []
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conds)

    wait_for(unschedulable, "scheduler to report the pod Unschedulable", 30)
    assert core.read_namespaced_pod(pod.metadata.name, namespace).spec.node_name is None


def test_finished_job_with_ttl_is_deleted_with_its_pods(api_client, kubelet, namespace):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    batch.create_namespaced_job(namespace, _job("ephemeral", ttl=0))
    pod = _job_pod(core, namespace, "ephemeral")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Succeeded")

    def job_gone() -> bool:
        return not batch.list_namespaced_job(namespace).items

    wait_for(job_gone, "ttl-after-finished controller to delete the Job", 60)
    # The TTL controller deletes in the foreground: the garbage collector
    # removes the pods that the Job owned.
    wait_for(lambda: not core.list_namespaced_pod(namespace).items,
             "garbage collector to delete the Job's pods", 60)


def _gpu_pod(name: str, gpus: int) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="c", image="example.invalid/x",
            resources=client.V1ResourceRequirements(limits={GPU_RESOURCE: str(gpus)}),
        )]),
    )


def test_gpus_held_by_a_retired_namespace_are_released(api_client, control_plane, kubelet,
                                                       new_namespace):
    """What a test leaves behind must not starve the next one of GPUs: a bare pod, and a Job's pod, whose
    tracking finalizer a Job with a podFailurePolicy (as Headstart's) keeps until the pod is terminal."""
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    greedy, next_test = new_namespace(), new_namespace()
    per_node = control_plane.gpus_per_node
    hogs = []
    for i, _node in enumerate(control_plane.node_names):  # a bare pod on the first node, a Job's on the others
        if i == 0:
            core.create_namespaced_pod(greedy, _gpu_pod("hog-0", per_node))
            hogs.append("hog-0")
        else:
            job = _job(f"hog-{i}", gpus=per_node)
            job.spec.pod_failure_policy = client.V1PodFailurePolicy(rules=[client.V1PodFailurePolicyRule(
                action="Ignore", on_pod_conditions=[client.V1PodFailurePolicyOnPodConditionsPattern(
                    type="DisruptionTarget", status="True")])])
            batch.create_namespaced_job(greedy, job)
            pod = _job_pod(core, greedy, f"hog-{i}")
            assert "batch.kubernetes.io/job-tracking" in (pod.metadata.finalizers or [])
            hogs.append(pod.metadata.name)
        kubelet.wait_scheduled(greedy, hogs[-1])
        kubelet.set_phase(greedy, hogs[-1], "Running")
    waiting = [f"waits-{i}" for i in range(len(hogs))]  # one per node: all of them must come free
    for name in waiting:
        core.create_namespaced_pod(next_test, _gpu_pod(name, per_node))

    def unschedulable() -> bool:
        conds = core.read_namespaced_pod(waiting[0], next_test).status.conditions or []
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conds)

    wait_for(unschedulable, "every GPU to be taken", 30)
    retire_namespace(api_client, greedy)
    nodes = {kubelet.wait_scheduled(next_test, name, timeout=60) for name in waiting}
    assert nodes == set(control_plane.node_names)
