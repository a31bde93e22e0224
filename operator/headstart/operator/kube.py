"""A small asynchronous Kubernetes REST client (aiohttp, which kopf brings), for the operator's own calls.

Credentials come from the same place kopf's login takes them (the kubernetes client's loaders: in-cluster
ServiceAccount, else KUBECONFIG): client certificates or a bearer token, re-read from its file when the
kubelet rotates it. Every request has a bounded timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from headstart.api.names import API_VERSION, PLURAL

MERGE_PATCH = "application/merge-patch+json"
log = logging.getLogger("headstart.operator.kube")
TOKEN_REREAD_SECONDS = 60.0
#: Also the field manager the API server records for the operator's writes (status: its one writer).
USER_AGENT = "headstart-operator"


class ApiError(Exception):
    """A non-2xx answer of the API server."""

    def __init__(self, status: int, reason: str, message: str):
        self.status, self.reason, self.message = status, reason, message
        super().__init__(f"{status} {reason}: {message}")


@dataclass
class Credentials:
    server: str
    ssl_context: ssl.SSLContext | bool
    token: str | None = None
    token_file: str | None = None

    @classmethod
    def load(cls) -> Credentials:
        """In-cluster when running in a pod, else the current context of KUBECONFIG (~/.kube/config)."""
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            loader = config.incluster_config.InClusterConfigLoader(
                token_filename=config.incluster_config.SERVICE_TOKEN_FILENAME,
                cert_filename=config.incluster_config.SERVICE_CERT_FILENAME)
            loader.load_and_set(configuration)
            token_file = config.incluster_config.SERVICE_TOKEN_FILENAME
        except config.ConfigException:
            # KUBECONFIG as it is now (the client reads its default once, when first imported)
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None,
                                    client_configuration=configuration)
            token_file = None
        ctx: ssl.SSLContext | bool
        if configuration.verify_ssl:
            ctx = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        else:
            ctx = False
        if configuration.cert_file and configuration.key_file and isinstance(ctx, ssl.SSLContext):
            ctx.load_cert_chain(configuration.cert_file, configuration.key_file)
        auth = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get(
            "BearerToken")
        token = auth.split(" ", 1)[1] if auth and auth.lower().startswith("bearer ") else auth
        return cls(server=configuration.host.rstrip("/"), ssl_context=ctx, token=token, token_file=token_file)


class Kube:
    """``await kube.get(path)``, ``post``, ``patch`` (JSON merge patch), ``delete``; paths from :func:`path`."""

    def __init__(self, credentials: Credentials, timeout: float = 30.0, connections: int = 32, background: int = 4):
        self.credentials = credentials
        # Creating children comes first: other calls (status writes) hold at most `background` of the
        # connections, so a burst of new jobs is not queued behind the status of the ones before.
        self._background = asyncio.Semaphore(background)
        # Bounds on the connection and on each read, not on the whole call: a request waiting for one of the
        # pool's connections (a burst of jobs) is queued, not failed.
        self.timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=5.0, sock_read=timeout)
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._token_read = 0.0

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.credentials.ssl_context, limit=self.connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        return self._session

    def _token(self) -> str | None:
        creds = self.credentials
        if creds.token_file and time.monotonic() - self._token_read > TOKEN_REREAD_SECONDS:
            with open(creds.token_file, encoding="utf-8") as fh:
                creds.token = fh.read().strip()
            self._token_read = time.monotonic()
        return creds.token

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, url_path: str, body: Any = None, *, content_type: str = "application/json",
                      params: dict[str, str] | None = None, urgent: bool = True) -> Any:
        if urgent:
            return await self._request(method, url_path, body, content_type, params)
        async with self._background:
            return await self._request(method, url_path, body, content_type, params)

    async def _request(self, method: str, url_path: str, body: Any, content_type: str,
                       params: dict[str, str] | None) -> Any:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        url = self.credentials.server + url_path + (f"?{urlencode(params)}" if params else "")
        began = time.monotonic()
        async with self._session_now().request(method, url, data=data, headers=headers) as resp:
            text = await resp.text()
            log.debug("%s %s: %s in %.3f s", method, url_path, resp.status, time.monotonic() - began)
            if resp.status >= 400:
                try:
                    status = json.loads(text)
                    raise ApiError(resp.status, status.get("reason") or "", status.get("message") or text)
                except ValueError:
                    raise ApiError(resp.status, resp.reason or "", text[:500]) from None
            return json.loads(text) if text else None

    async def get(self, url_path: str, params: dict[str, str] | None = None) -> Any:
        return await self.request("GET", url_path, params=params)

    async def post(self, url_path: str, body: Any) -> Any:
        return await self.request("POST", url_path, body)

    async def patch(self, url_path: str, body: Any, urgent: bool = True) -> Any:
        return await self.request("PATCH", url_path, body, content_type=MERGE_PATCH, urgent=urgent)

    async def delete(self, url_path: str) -> Any:
        return await self.request("DELETE", url_path)


# API group/version and plural of each kind the operator touches.
RESOURCES = {
    "Pod": ("v1", "pods"),
    "Event": ("v1", "events"),
    "Job": ("batch/v1", "jobs"),
    "FineTuneJob": (API_VERSION, PLURAL),
}


def path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    """REST path of a namespaced object (or of its collection when name is None)."""
    group_version, plural = RESOURCES[kind]
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    out = f"{base}/namespaces/{quote(namespace)}/{plural}"
    if name is not None:
        out += f"/{quote(name)}"
    if subresource:
        out += f"/{subresource}"
    return out
