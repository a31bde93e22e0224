"""Bounded polling: the only way tests and the launcher wait for the cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
DEFAULT_TIMEOUT = 60.0
_tick = threading.Event()  # never set: Event.wait(t) is an interruptible pause


class WaitTimeout(AssertionError):
    pass


def not_yet() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the cluster is not there yet", retried until the timeout: the API server
    answering an error (404 until an object exists, 403 until RBAC catches up, 409, 5xx), a connection
    refused or reset while something starts (OSError, urllib3's errors). Anything else is a bug or a
    verdict (an AssertionError a condition raises to stop the wait) and surfaces at once."""
    found: list[type[BaseException]] = [OSError]
    try:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError
    except ImportError:  # the launcher without the kubernetes client: only OSErrors are transient
        return tuple(found)
    return (*found, ApiException, HTTPError)


def wait_for(
    condition: Callable[[], T],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy, or fail after `timeout` s.

    Returns that value. An exception of ``retry_on`` (default: ``not_yet()``) counts as "not yet"; any other
    propagates at once, so a bug in a condition fails the test where it is instead of after the timeout. The
    failure names `what` and the last value or exception seen, so a test that times out says what it was
    waiting for.
    """
    transient = not_yet() if retry_on is None else retry_on
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = condition()
        except transient as exc:
            value, last = None, exc
        else:
            if value:
                return value
            last = value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        _tick.wait(min(interval, remaining))
        interval = min(interval * 1.5, 1.0)
