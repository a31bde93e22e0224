"""Benchmark: how fast the operator turns FineTuneJobs into training Jobs, how fast its progress endpoint
answers the pods, and what it costs in memory.

``python -m bench.operator [--jobs 200] [--gpus 1] [--progress-seconds 60] [--interval 5]``

Starts the test control plane (tests/controlplane) and the operator as the tests run it (its own
ServiceAccount token, deploy/ RBAC), creates N FineTuneJobs at once from 16 client threads, and measures
from each create call's start to the ADDED event of its training Job on a watch opened before, and until
every FineTuneJob's status names its Job (reconciled). Then every job's pod (on fake nodes: no kubelet) posts
a progress snapshot every ``--interval`` seconds for ``--progress-seconds``, as a trainer does, with a token
the TokenRequest API binds to that pod (the audience of its job): the request latency (p50/p99), the answers,
the status writes. Prints the figures, the operator's peak RSS (VmHWM) and CPU, the machine's load, then one
JSON line. Not a test: it times the machine at hand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=200, help="FineTuneJobs created at once (default 200)")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per job (default 1: most stay Pending, explained)")
    p.add_argument("--threads", type=int, default=16, help="client threads creating them (default 16)")
    p.add_argument("--operator-verbose", action="store_true", help="the operator logs at debug level")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all (default 300)")
    p.add_argument("--progress-seconds", type=float, default=60.0,
                   help="how long every pod posts progress (default 60; 0: skip that part)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between a pod's snapshots (default 5)")
    args = p.parse_args(argv)
    if args.jobs < 1 or args.threads < 1 or args.gpus < 0 or args.progress_seconds < 0 or args.interval <= 0:
        p.error("--jobs and --threads must be at least 1, --gpus and --progress-seconds at least 0, "
                "--interval above 0")
    return args


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def api_write_rate(kubeconfig: Path, count: int) -> float:
    """Creates per second the API server takes from the operator's client (its pool of 32 connections, its
    token): ``count`` small objects at once (Events: the operator may create them). The operator makes one
    create per job, so jobs / rate is the floor under the last job's create-to-Job time on this machine at
    this moment."""
    import asyncio

    from headstart.operator.kube import Credentials, Kube, path

    def event(i: int) -> dict:
        return {"metadata": {"name": f"floor-{i}"},
                "involvedObject": {"kind": "Namespace", "name": NAMESPACE, "namespace": NAMESPACE},
                "reason": "Bench", "message": "the API server's write rate", "type": "Normal"}

    async def run() -> float:
        os.environ["KUBECONFIG"] = str(kubeconfig)
        async with Kube(Credentials.load()) as kube:
            await kube.post(path("Event", NAMESPACE), event(-1))  # connect first
            began = time.monotonic()
            await asyncio.gather(*(kube.post(path("Event", NAMESPACE), event(i)) for i in range(count)))
            return count / (time.monotonic() - began)

    saved = os.environ.get("KUBECONFIG")
    try:
        return asyncio.run(run())
    finally:
        if saved is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = saved


class Watcher(threading.Thread):
    """First time each name is seen by a watch: Jobs (ADDED) or FineTuneJobs (status.trainingJob set)."""

    def __init__(self, list_fn, key, *args):
        super().__init__(daemon=True)
        self.list_fn, self.key, self.args = list_fn, key, args
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        from kubernetes import watch

        def version_of(obj) -> str:
            return obj.metadata.resource_version if hasattr(obj, "metadata") else obj["metadata"]["resourceVersion"]

        w = watch.Watch()
        version = version_of(self.list_fn(*self.args))
        self.ready.set()
        while not self.stop.is_set():
            for event in w.stream(self.list_fn, *self.args, resource_version=version, timeout_seconds=5):
                if event["type"] == "ERROR":
                    raise RuntimeError(f"watch failed: {event['object']}")
                obj = event["object"]
                name = self.key(obj)
                if name and name not in self.seen:
                    self.seen[name] = time.monotonic()
                version = version_of(obj)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "cluster")]
    from controlplane.cluster import ControlPlane
    from controlplane.waiting import wait_for
    from kubernetes import client
    from operator_support import OperatorProcess, job_manifest, service_account_token, token_kubeconfig

    from headstart.api import names

    workdir = Path(tempfile.mkdtemp(prefix="headstart-bench-operator-"))
    print(f"starting the control plane and the operator ({args.jobs} jobs, {args.gpus} GPU each) ...", flush=True)
    with ControlPlane() as plane:
        import subprocess

        def kubectl(*argv: str, input: str | None = None):
            done = subprocess.run([str(plane.bins["kubectl"]), f"--kubeconfig={plane.kubeconfig}", *argv],
                                  capture_output=True, text=True, input=input, timeout=120)
            if done.returncode:
                raise SystemExit(f"error: kubectl {' '.join(argv)}: {done.stderr.strip()}")
            return done

        kubectl("apply", "-f", str(REPO / "deploy" / "crds"), "-f", str(REPO / "deploy" / "namespace.yaml"),
                "-f", str(REPO / "deploy" / "rbac.yaml"))
        kubectl("wait", "--for=condition=Established", "crd/finetunejobs.headstart.dev", "--timeout=60s")
        kubectl("create", "namespace", NAMESPACE)
        token = service_account_token(kubectl, "headstart-system", "headstart-operator")
        operator = OperatorProcess(token_kubeconfig(plane.kubeconfig, token, workdir / "op.kubeconfig"), workdir,
                                   ("-v",) if args.operator_verbose else ())
        api = plane.api_client()
        core = client.CoreV1Api(api)
        wait_for(lambda: core.read_namespaced_service_account("default", NAMESPACE), "default SA", 30)
        wait_for(lambda: core.read_namespaced_config_map("kube-root-ca.crt", NAMESPACE), "kube-root-ca.crt", 30)
        rate = api_write_rate(operator.kubeconfig, args.jobs)
        operator.start()
        try:
            batch, custom = client.BatchV1Api(api), client.CustomObjectsApi(api)
            jobs_seen = Watcher(batch.list_namespaced_job, lambda o: (o.metadata.labels or {}).get(
                names.LABEL_FINETUNEJOB), NAMESPACE)
            ftjs_seen = Watcher(custom.list_namespaced_custom_object, lambda o: o["metadata"]["name"] if (
                o.get("status") or {}).get("trainingJob") else None, "headstart.dev", "v1alpha1", NAMESPACE,
                "finetunejobs")
            for w in (jobs_seen, ftjs_seen):
                w.start()
                w.ready.wait(30)
            created: dict[str, float] = {}

            def create(name: str) -> None:
                created[name] = time.monotonic()  # from the request's start: its own latency counts
                custom.create_namespaced_custom_object("headstart.dev", "v1alpha1", NAMESPACE, "finetunejobs",
                                                       job_manifest(name, resources={"gpus": args.gpus}))

            all_names = [f"bench-{i:04d}" for i in range(args.jobs)]
            cpu_before = cpu_seconds(operator.proc.pid)
            began = time.monotonic()
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(create, all_names))
            create_done = time.monotonic() - began
            wait_for(lambda: len(jobs_seen.seen) >= args.jobs and len(ftjs_seen.seen) >= args.jobs,
                     f"{args.jobs} Jobs and reconciled FineTuneJobs", args.timeout)
            for w in (jobs_seen, ftjs_seen):
                w.stop.set()
            latencies = [jobs_seen.seen[n] - created[n] for n in all_names]
            reconciled = max(ftjs_seen.seen.values()) - began
            cpu = cpu_seconds(operator.proc.pid) - cpu_before
            progress = {}
            if args.progress_seconds:
                from bench.progress_load import run_load

                print(f"{args.jobs} pods post progress every {args.interval:g} s for {args.progress_seconds:g} s ...",
                      flush=True)
                progress = run_load(api, operator, NAMESPACE, all_names, args.progress_seconds, args.interval)
            rss = peak_rss_mb(operator.proc.pid)
            errors = operator.metric("headstart_operator_errors_total")
        finally:
            operator.stop()
            api.close()
    result = {"jobs": args.jobs, "gpus": args.gpus, "p50_create_to_job_s": round(percentile(latencies, 50), 3),
              "p99_create_to_job_s": round(percentile(latencies, 99), 3),
              "max_create_to_job_s": round(max(latencies), 3), "create_calls_s": round(create_done, 2),
              "all_reconciled_s": round(reconciled, 2), "rss_mb": round(rss, 1), "operator_cpu_s": round(cpu, 2),
              "api_creates_per_s": round(rate, 1), "floor_last_job_s": round(args.jobs / rate, 2),
              "operator_errors": errors, "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
              **progress}
    print(f"the API server alone: {rate:.0f} creates/s from the operator's client, so {args.jobs} creates "
          f"(1 per job) take {args.jobs / rate:.2f} s at best")
    print(f"{args.jobs} FineTuneJobs created in {create_done:.2f} s by {args.threads} threads")
    print(f"create -> training Job: p50 {result['p50_create_to_job_s']:.3f} s, p99 {result['p99_create_to_job_s']:.3f}"
          f" s, max {result['max_create_to_job_s']:.3f} s")
    print(f"all reconciled (status.trainingJob set) {reconciled:.2f} s after the first create")
    print(f"operator CPU {cpu:.1f} s for the creates")
    if progress:
        print(f"progress: {progress['progress_requests']} requests, latency p50 {progress['progress_p50_ms']:.1f} ms, "
              f"p99 {progress['progress_p99_ms']:.1f} ms ({progress['progress_p99_ms_cached_token']:.1f} ms once a "
              f"pod's token is reviewed), max {progress['progress_max_ms']:.1f} ms; answers "
              f"{progress['progress_answers']}; {progress['progress_token_reviews']} TokenReviews; "
              f"{progress['progress_status_writes']} status writes; operator CPU {progress['progress_cpu_s']:.1f} s")
    print(f"operator peak RSS {rss:.1f} MB; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"operator log: {operator.log_path}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
