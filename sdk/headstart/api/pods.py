"""What every pod Headstart makes carries (the training pod, the fetch helper): security contexts that Pod
Security "restricted" admits. Import-light: plain dicts, as the API server takes them."""

from __future__ import annotations

from typing import Any


def restricted_pod(uid: int, gid: int, **extra: Any) -> dict[str, Any]:
    """The pod's securityContext: non-root ``uid``/``gid``, RuntimeDefault seccomp, plus ``extra``."""
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid, "seccompProfile": {"type": "RuntimeDefault"},
            **extra}


def restricted_container(**extra: Any) -> dict[str, Any]:
    """A container's securityContext: no privilege escalation, every capability dropped, non-root."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True, **extra}
