"""Who is posting: a bearer token checked by the API server (TokenReview) against one job's audience.

A training pod's token is a projected ServiceAccount token whose audience names its job
(``headstart.api.progress.audience``); the API server refuses it for anything else. A TokenReview tells
whether it is valid for that audience and which pod it was issued to (the ``authentication.kubernetes.io/
pod-name`` and ``pod-uid`` extras). Verdicts are cached for the token's lifetime (at most ten minutes), so
a pod posting every few seconds costs one review per token, not one per request; refusals are cached
briefly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .kube import Kube

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"
MAX_CACHE_SECONDS = 600.0
REFUSAL_CACHE_SECONDS = 10.0
MAX_CACHED = 10000


@dataclass(frozen=True)
class Identity:
    """What the API server says a token is."""

    username: str
    namespace: str | None
    """The ServiceAccount's namespace (None for a token that is not a ServiceAccount's)."""
    pod_name: str | None
    pod_uid: str | None
    """The pod the token is bound to (None for a token bound to no pod)."""


@dataclass(frozen=True)
class Review:
    """A TokenReview's answer: an identity, or why the token is refused."""

    identity: Identity | None
    error: str = ""


def _expiry(token: str) -> float | None:
    """The token's ``exp`` claim (epoch seconds), read without checking the signature (the TokenReview
    checked it), or None when it has none."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def identity_of(status: dict[str, Any], audience: str) -> Review:
    """The identity in a TokenReview's status, or why it is refused."""
    if not status.get("authenticated"):
        return Review(None, status.get("error") or "the token is not valid")
    if audience not in (status.get("audiences") or []):
        return Review(None, f"the token is not for audience {audience}")
    user = status.get("user") or {}
    username = user.get("username") or ""
    extra = user.get("extra") or {}
    parts = username.split(":")
    namespace = parts[2] if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] else None
    pod_name, pod_uid = (extra.get(POD_NAME) or [None])[0], (extra.get(POD_UID) or [None])[0]
    return Review(Identity(username, namespace, pod_name, pod_uid))


class TokenVerifier:
    """``await verifier.review(token, audience)``: a cached TokenReview."""

    def __init__(self, kube: Kube, clock: Callable[[], float] = time.time, on_review: Callable[[], None] | None = None):
        self.kube, self.clock, self.on_review = kube, clock, on_review
        self.cache: dict[str, tuple[float, Review]] = {}

    async def review(self, token: str, audience: str) -> Review:
        key = hashlib.sha256(f"{audience}\n{token}".encode()).hexdigest()
        now = self.clock()
        cached = self.cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": token, "audiences": [audience]}}
        if self.on_review is not None:
            self.on_review()
        answer = await self.kube.post(TOKEN_REVIEWS, body)
        review = identity_of((answer or {}).get("status") or {}, audience)
        if review.identity is None:
            until = now + REFUSAL_CACHE_SECONDS
        else:
            until = min(_expiry(token) or now, now + MAX_CACHE_SECONDS)
        if len(self.cache) >= MAX_CACHED:
            self.cache = {k: v for k, v in self.cache.items() if v[0] > now}
        if until > now and len(self.cache) < MAX_CACHED:
            self.cache[key] = (until, review)
        return review
