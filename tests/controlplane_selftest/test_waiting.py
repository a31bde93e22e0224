"""The test helper `wait_for`: a cluster that is not there yet is waited for; a bug is not (it surfaces at
once, with its own traceback, instead of as a timeout that names it only as the last thing seen)."""

from __future__ import annotations

import pytest
from controlplane.waiting import WaitTimeout, wait_for
from kubernetes.client.exceptions import ApiException


def flaky(*failures: BaseException, then: object = "ready"):
    calls: list[int] = []

    def condition() -> object:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return then

    return condition, calls


def test_the_cluster_not_being_there_yet_is_waited_for():
    condition, calls = flaky(ConnectionRefusedError(111, "refused"), ApiException(status=404), then="ready")
    assert wait_for(condition, "a flaky condition", timeout=30, interval=0.01) == "ready"
    assert len(calls) == 3


def test_a_bug_in_the_condition_surfaces_at_once():
    for bug in (AttributeError("'NoneType' object has no attribute 'phase'"), TypeError("bad"), KeyError("x")):
        condition, calls = flaky(bug, then="never reached")
        with pytest.raises(type(bug)):
            wait_for(condition, "a buggy condition", timeout=2, interval=0.01)
        assert len(calls) == 1, f"{bug!r} was retried {len(calls) - 1} times"


def test_a_verdict_raised_by_the_condition_ends_the_wait():
    condition, calls = flaky(AssertionError("the pod ended Failed"), then="never reached")
    with pytest.raises(AssertionError, match="ended Failed") as raised:
        wait_for(condition, "a pod to run", timeout=2, interval=0.01)
    assert not isinstance(raised.value, WaitTimeout) and len(calls) == 1


def test_what_a_test_declares_transient_is_retried_and_the_timeout_names_it():
    condition, _ = flaky(*[LookupError("not yet")] * 1000)
    with pytest.raises(WaitTimeout, match=r"waiting for a lookup; last: LookupError\('not yet'\)"):
        wait_for(condition, "a lookup", timeout=0.2, interval=0.01, retry_on=(LookupError,))
