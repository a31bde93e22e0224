"""SIGTERM, graceful: the pod is stopped (deleted, evicted by a drain, preempted) and has its grace period
(runPolicy.terminationGracePeriodSeconds) before SIGKILL.

The handler only sets a flag (nothing else is safe in a signal handler). Training checks it after every
batch (callbacks.EpochPosition): the step that ran finishes, a checkpoint of the position inside the epoch
is written, and the run stops with TerminatedError (exit 143, transient); the next run resumes at the next
batch of the same epoch. A stage on cached features runs an epoch in one call: it stops at the epoch's end.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_flag = {"requested": False}


def requested() -> bool:
    """Whether SIGTERM arrived inside the ``graceful()`` block running now."""
    return _flag["requested"]


def _on_sigterm(signum: int, frame: object) -> None:
    _flag["requested"] = True  # a plain assignment: signal-safe


@contextmanager
def graceful() -> Iterator[None]:
    """SIGTERM sets the flag while the block runs, cleared when it ends (in the main thread only: elsewhere
    nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _flag["requested"] = False
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _flag["requested"] = False
