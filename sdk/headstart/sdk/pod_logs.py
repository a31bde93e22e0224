"""A job's logs: its training pod's, and with ``follow`` every pod in turn (the Job controller replaces a
failed pod; the trainer resumes from its checkpoint) until the job ends.

Waiting for a pod to appear or its container to start is a pod watch in bounded chunks, never a sleep.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from headstart.api import names

from .errors import HeadstartError, NotFound, Timeout
from .kube import REQUEST_TIMEOUT, translate

TERMINAL = ("Succeeded", "Failed")
WATCH_CHUNK_SECONDS = 30
#: A followed log may stay quiet for a long epoch; the client refuses "no read timeout", so: a day.
FOLLOW_READ_TIMEOUT = 24 * 3600


def read_logs(backend: Any, name: str, tail: int | None = None) -> Iterator[str]:
    """The newest training pod's log as it is now (``tail``: its last lines only)."""
    pods = backend.pods(name)
    if not pods:
        raise NotFound(f"FineTuneJob {backend.namespace}/{name} has no training pod (yet)")
    pod = pods[-1]
    text = _pod_log(backend, pod.metadata.name, follow=False, tail=tail) if tail != 0 else ""
    return iter(text.splitlines())


def follow_logs(backend: Any, name: str, timeout: float | None, tail: int | None = None) -> Iterator[str]:
    """Every training pod's log as it is written, one pod after another, until the job ends. A line
    ``--- pod NAME ---`` announces each pod after the first. With ``tail``: from the last ``tail`` lines of
    the newest pod that has started (the older ones skipped), then on as before."""
    deadline = None if timeout is None else time.monotonic() + timeout
    started = [p.metadata.name for p in backend.pods(name) if _started(p)] if tail is not None else []
    done: set[str] = set(started[:-1])
    announced = False
    while True:
        pod = _next_pod(backend, name, done, deadline)
        if pod is None:
            return  # the job ended and no pod is left to read
        if announced:
            yield f"--- pod {pod} ---"
        announced = True
        done.add(pod)
        first_tail = tail if started and pod == started[-1] else None
        stream = _pod_log(backend, pod, follow=True, tail=first_tail)
        try:
            for chunk in stream.stream(amt=65536, decode_content=True):
                yield from _lines(chunk, stream)
            tail = getattr(stream, "_headstart_partial", b"")
            if tail:
                yield tail.decode("utf-8", "replace")
        finally:
            stream.release_conn()


def _lines(chunk: bytes, stream: Any) -> Iterator[str]:
    """Whole lines of a byte stream (a partial line waits for the next chunk)."""
    buffered = getattr(stream, "_headstart_partial", b"") + chunk
    *whole, partial = buffered.split(b"\n")
    stream._headstart_partial = partial
    for line in whole:
        yield line.decode("utf-8", "replace")


def _pod_log(backend: Any, pod: str, follow: bool, tail: int | None = None) -> Any:
    what = f"logs of pod {backend.namespace}/{pod}"
    lines = {"tail_lines": tail} if tail is not None else {}
    try:
        if follow:
            return backend.core.read_namespaced_pod_log(pod, backend.namespace, container=names.CONTAINER_NAME,
                                                        follow=True, _preload_content=False,
                                                        _request_timeout=(5, FOLLOW_READ_TIMEOUT), **lines)
        return backend.core.read_namespaced_pod_log(pod, backend.namespace, container=names.CONTAINER_NAME,
                                                    _request_timeout=REQUEST_TIMEOUT, **lines)
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, what) from exc


def _started(pod: Any) -> bool:
    for status in (pod.status.container_statuses or []) if pod.status else []:
        if status.state and (status.state.running or status.state.terminated):
            return True
    return bool(pod.status and pod.status.phase in TERMINAL)


def _next_pod(backend: Any, name: str, done: set[str], deadline: float | None) -> str | None:
    """The oldest training pod not read yet, once its container has started; None once the job has ended
    with no such pod. Watches pods (and the job) in bounded chunks until one of the two happens."""
    from kubernetes import watch

    selector = names.selector_for(name)
    while True:
        pods = [p for p in backend.pods(name) if p.metadata.name not in done]
        ready = [p for p in pods if _started(p)]
        if ready:
            return ready[0].metadata.name
        job = backend.get(name)
        phase = job.status.phase.value if job.status and job.status.phase else None
        if phase in TERMINAL:
            return None  # ended: a pod that never started has nothing to read
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise Timeout(f"no training pod of FineTuneJob {backend.namespace}/{name} started in time")
        seconds = WATCH_CHUNK_SECONDS if remaining is None else max(1, int(min(remaining, WATCH_CHUNK_SECONDS)))
        listed = backend._call(f"pods of FineTuneJob {name}", backend.core.list_namespaced_pod, backend.namespace,
                               label_selector=selector)
        watcher = watch.Watch()
        try:
            for _event in watcher.stream(backend.core.list_namespaced_pod, backend.namespace,
                                         label_selector=selector, resource_version=listed.metadata.resource_version,
                                         timeout_seconds=seconds, _request_timeout=(5, seconds + 5)):
                watcher.stop()  # something changed: look again
        except HeadstartError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, f"pods of FineTuneJob {backend.namespace}/{name}") from exc
