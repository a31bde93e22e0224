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


def wait_for(
    condition: Callable[[], T],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.1,
) -> T:
    """Poll `condition` until it returns something truthy, or fail after `timeout` s.

    Returns that value.  The failure names `what` and the last value or exception
    seen, so a test that times out says what it was waiting for.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = condition()
        except Exception as exc:  # noqa: BLE001 - reported below if it persists
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
