"""The progress endpoint: training pods POST their snapshots here, over HTTPS, inside the kopf process.

``POST /v1/namespaces/{namespace}/finetunejobs/{name}/progress`` with ``Authorization: Bearer <token>`` and
a :class:`~headstart.api.progress.ProgressSnapshot` as JSON. The token must be valid for the audience of
that one job (a TokenReview, cached: :mod:`.tokens`) and bound to a pod of that job's training Job (the
reconciler checks it against its indexes). Answers:

- 200 ``{"accepted": true}``: the snapshot is the newest and will be written to status;
  ``{"accepted": false}``: an older snapshot than one already taken (idempotent: ignored, changes nothing);
- 400 a body that is not a snapshot; 401 no token or one the API server refuses for this audience; 403 a
  valid token of something that is not this job's training pod; 404 no such FineTuneJob; 413 too large;
- 503 the operator cannot tell now (the API server is unreachable, or the pod is not in its view yet).

The status write itself happens after the answer (the reconciler's writer coalesces a burst of snapshots
of one job into its latest), so a slow API server never slows the pods down.
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from headstart.api.progress import MAX_SNAPSHOT_BYTES, ProgressSnapshot, audience

from .intake import Intake
from .kube import ApiError
from .metrics import Metrics
from .tokens import TokenVerifier

log = logging.getLogger("headstart.operator.progress")
ROUTE = "/v1/namespaces/{namespace}/finetunejobs/{name}/progress"


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The endpoint's TLS context (TLS 1.2 or newer)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def _answer(status: int, **body: Any) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response(body, status=status, headers=headers)


class ProgressEndpoint:
    """The aiohttp application and its one handler; ``intake`` takes the snapshots."""

    def __init__(self, intake: Intake, verifier: TokenVerifier, metrics: Metrics):
        self.intake, self.verifier, self.metrics = intake, verifier, metrics
        self.runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_SNAPSHOT_BYTES)
        app.router.add_post(ROUTE, self.handle)
        return app

    async def start(self, address: str, port: int, context: ssl.SSLContext) -> None:
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, address, port, ssl_context=context).start()
        log.info("progress endpoint on https://%s:%d", address, port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def handle(self, request: web.Request) -> web.Response:
        began = time.monotonic()
        response = await self._handle(request)
        self.metrics.progress_requests.labels(code=str(response.status)).inc()
        self.metrics.progress_seconds.observe(time.monotonic() - began)
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _answer(401, error="a bearer token is needed (the pod's projected progress token)")
        try:
            review = await self.verifier.review(token.strip(), audience(namespace, name))
        except (ApiError, OSError, aiohttp.ClientError, TimeoutError) as exc:
            self.metrics.error("progress_token_review")
            log.warning("TokenReview for %s/%s failed: %s", namespace, name, exc)
            return _answer(503, error="the token cannot be checked now; try again")
        if review.identity is None:
            return _answer(401, error=f"token refused: {review.error}")
        try:
            snapshot = ProgressSnapshot.model_validate_json(await request.read())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return _answer(400, error=f"not a progress snapshot: {where}: {first.get('msg')}")
        except web.HTTPRequestEntityTooLarge:
            return _answer(413, error=f"a snapshot is at most {MAX_SNAPSHOT_BYTES} bytes")
        taken = self.intake.accept(namespace, name, review.identity, snapshot)
        return _answer(taken.status, **taken.body)
