"""The progress endpoint under load, for bench.operator: every job's pod posts a snapshot every few seconds.

Each pod gets a token from the TokenRequest API bound to it, with its job's audience (what the kubelet
projects into a training pod), and posts as the trainer does (HTTPS, the operator's CA, one connection per
pod kept open). The first post of each pod is spread over the first interval, as pods that started at
different times are. Latency is from the request's start to its answer.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from typing import Any

from bench.operator import cpu_seconds, percentile


def _pods(api: Any, namespace: str, names: list[str], timeout: float = 120.0) -> dict[str, Any]:
    """The (first) pod of each job, once the Job controller made them all."""
    from kubernetes import client

    from headstart.api import names as api_names

    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = {}
        for pod in core.list_namespaced_pod(namespace, label_selector=f"{api_names.LABEL_MANAGED_BY}="
                                                                        f"{api_names.MANAGED_BY}").items:
            found.setdefault(pod.metadata.labels[api_names.LABEL_FINETUNEJOB], pod)
        if all(name in found for name in names) or time.monotonic() > deadline:
            return found
        time.sleep(1)


async def _pod_loop(session: Any, url: str, token: str, seconds: float, interval: float,
                    latencies: list[float], answers: dict[str, int], later: list[float]) -> None:
    await asyncio.sleep(random.uniform(0, interval))
    began, seq = time.monotonic(), 0
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() - began < seconds:
        seq += 1
        body = {"seq": seq, "stage": "head", "stageIndex": 0, "epoch": seq, "epochs": 1000,
                "metrics": {"loss": 1.0 / seq, "accuracy": min(1.0, seq / 100)}}
        start = time.monotonic()
        try:
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                key = str(resp.status)
        except Exception as exc:  # noqa: BLE001 - counted, the load goes on
            key = type(exc).__name__
        latencies.append(time.monotonic() - start)
        if seq > 1:  # the pod's first request also waits for its token's TokenReview (then cached)
            later.append(latencies[-1])
        answers[key] = answers.get(key, 0) + 1
        await asyncio.sleep(max(0.0, began + seq * interval - time.monotonic()))


def run_load(api: Any, operator: Any, namespace: str, names: list[str], seconds: float,
             interval: float) -> dict[str, Any]:
    """Figures of the progress endpoint while every job of ``names`` posts for ``seconds``."""
    import aiohttp
    from operator_support import pod_token

    from headstart.api.progress import audience, endpoint_path

    pods = _pods(api, namespace, names)
    tokens = {name: pod_token(api, namespace, audience(namespace, name), pod) for name, pod in pods.items()}
    context = ssl.create_default_context(cadata=operator.endpoint.ca)
    base = f"https://127.0.0.1:{operator.endpoint.port}"
    latencies: list[float] = []
    later: list[float] = []
    answers: dict[str, int] = {}
    reviews_before = operator.metric("headstart_token_reviews_total")
    writes_before = operator.metric("headstart_status_writes_total", 'writer="progress"')
    cpu_before = cpu_seconds(operator.proc.pid)

    async def load() -> None:
        connector = aiohttp.TCPConnector(ssl=context, limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(*(_pod_loop(session, base + endpoint_path(namespace, name), token, seconds,
                                             interval, latencies, answers, later)
                                   for name, token in tokens.items()))

    asyncio.run(load())
    time.sleep(interval)  # the writer tasks finish the last snapshots
    return {"progress_pods": len(tokens), "progress_requests": len(latencies),
            "progress_p50_ms": round(1000 * percentile(latencies, 50), 2),
            "progress_p99_ms": round(1000 * percentile(latencies, 99), 2),
            "progress_max_ms": round(1000 * max(latencies), 2), "progress_answers": answers,
            "progress_p99_ms_cached_token": round(1000 * percentile(later, 99), 2),
            "progress_token_reviews": int(operator.metric("headstart_token_reviews_total") - reviews_before),
            "progress_status_writes": int(operator.metric("headstart_status_writes_total", 'writer="progress"')
                                          - writes_before),
            "progress_cpu_s": round(cpu_seconds(operator.proc.pid) - cpu_before, 2)}
