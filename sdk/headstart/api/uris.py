"""Storage URIs in a FineTuneJob: which schemes are accepted and how they map onto fsspec.

``pvc://claim/path`` names a path on a PersistentVolumeClaim. Inside a training pod the operator mounts
the claim under ``$HEADSTART_PVC_ROOT/<claim>`` (default ``/mnt/headstart/pvc``); the trainer only sees the
resulting local path, so it knows nothing of Kubernetes.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

PVC_ROOT_ENV = "HEADSTART_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/headstart/pvc"

#: Schemes accepted for models, datasets and outputs. ``memory`` is fsspec's in-process store (tests).
STORAGE_SCHEMES = ("file", "s3", "gs", "gcs", "az", "abfs", "abfss", "pvc", "memory")
#: Read-only inputs (weights files, base models) may also come over HTTP(S).
READ_SCHEMES = (*STORAGE_SCHEMES, "http", "https")


class UriError(ValueError):
    """A URI that is malformed or uses an unsupported scheme."""


def scheme_of(uri: str) -> str:
    """The URI's scheme; ``file`` for a plain local path."""
    if "://" not in uri:
        return "file"
    return uri.split("://", 1)[0].lower()


def check_uri(uri: str, *, writable: bool = False) -> str:
    """Return ``uri`` if it is usable, else raise UriError with a one-line reason.

    Args:
        uri: A spec URI or a local path.
        writable: Whether it is to be written (then http and https are refused).

    Returns:
        ``uri``, unchanged.

    Raises:
        UriError: It is empty, has white space around it, is neither a URI nor a path, has an unsupported
            scheme, or lacks what its scheme needs (a bucket or host, a claim and a path inside it, an
            absolute file path).
    """
    if not uri or not uri.strip():
        raise UriError("must not be empty")
    if uri != uri.strip():
        raise UriError("must not start or end with white space")
    if "://" not in uri:
        if ":" in uri.split("/", 1)[0] and not uri.startswith((".", "/")):
            raise UriError(f"{uri!r} is not a URI (expected scheme://...) nor a path")
        return uri
    scheme = scheme_of(uri)
    allowed = STORAGE_SCHEMES if writable else READ_SCHEMES
    if scheme not in allowed:
        raise UriError(f"unsupported scheme {scheme!r} (use one of: {', '.join(allowed)})")
    parts = urlsplit(uri)
    if scheme == "file":
        if not parts.path or parts.netloc not in ("", "localhost"):
            raise UriError("a file URI needs an absolute path: file:///path")
    elif scheme == "memory":
        if not (parts.netloc + parts.path).strip("/"):
            raise UriError("a memory URI needs a path: memory://name/path")
    elif scheme == "pvc":
        if not parts.netloc:
            raise UriError("a pvc URI names the claim: pvc://CLAIM/path")
        if not parts.path.strip("/"):
            raise UriError("a pvc URI needs a path inside the claim: pvc://CLAIM/path")
        if ".." in parts.path.split("/"):
            raise UriError("a pvc URI must not climb out of its claim with '..'")
    elif not parts.netloc:
        raise UriError(f"a {scheme} URI needs a bucket or host: {scheme}://BUCKET/path")
    return uri


def uri_cel(field: str, *, writable: bool = False, unless: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """CEL rules (rule, message) for the URI in ``self.<field>``: check_uri's rules, so the API server refuses
    what the models refuse. ``unless``: values that are not URIs (a weights field's 'imagenet')."""
    schemes = "|".join(STORAGE_SCHEMES if writable else READ_SCHEMES)
    value = f"self.{field}"
    guard = f"!has(self.{field})" + "".join(f" || {value} == '{word}'" for word in unless)
    pvc = f"{value}.startsWith('pvc://')"
    rules = [
        (f"{value}.matches('^[^:/]*(/|$)') || {value}.matches('^[.]') || {value}.matches('(?i)^({schemes})://')",
         f"{field}: unsupported scheme (use one of: {', '.join(STORAGE_SCHEMES if writable else READ_SCHEMES)})"),
        (f"!{pvc} || {value}.matches('^pvc://[^/]+/+[^/]')", f"{field}: a pvc URI needs a path inside the claim: "
         "pvc://CLAIM/path"),
        (f"!{pvc} || !{value}.matches('/[.][.](/|$)')",
         f"{field}: a pvc URI must not climb out of its claim with '..'"),
        (f"!{value}.startsWith('file://') || {value}.matches('^file://(localhost)?/.')",
         f"{field}: a file URI needs an absolute path: file:///path"),
        (f"!{value}.contains('://') || {value}.matches('^(?i)(file|memory)://') || {value}.matches('^[^:]+://[^/]')",
         f"{field}: a URI needs a bucket or host: SCHEME://BUCKET/path"),
    ]
    return [(f"{guard} || ({rule})", message) for rule, message in rules]


def check_uri_field(field: str, uri: str, *, writable: bool = False, hint: str = "") -> None:
    """check_uri for a model validator: the ValueError names the field, as ``field: reason``."""
    try:
        check_uri(uri, writable=writable)
    except UriError as exc:
        raise ValueError(f"{field}: {hint}{exc}") from exc


def pvc_claim(uri: str) -> tuple[str, str] | None:
    """(claim, path inside the claim) for a pvc:// URI, else None."""
    if scheme_of(uri) != "pvc":
        return None
    parts = urlsplit(uri)
    return parts.netloc, parts.path.strip("/")


def to_fsspec_url(uri: str) -> str:
    """Map a spec URI onto a URL fsspec opens. Plain paths stay plain paths."""
    claim = pvc_claim(uri)
    if claim is not None:
        root = os.environ.get(PVC_ROOT_ENV, DEFAULT_PVC_ROOT)
        return os.path.join(root, claim[0], claim[1])
    if scheme_of(uri) == "file" and uri.startswith("file://"):
        return urlsplit(uri).path
    return uri


_CREDENTIALS = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@'\"]*@)")
_QUERY = re.compile(r"(?P<url>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?'\"]*)\?[^\s'\"]*")


def redact(uri: str) -> str:
    """``uri`` as it may be shown: the credentials of ``scheme://user:secret@host`` become ``***`` and a query
    string (a presigned URL's signature) is dropped; a plain path is left as it is.

    Example: ``redact("s3://AKIA:s3cr3t@bucket/x?X-Amz-Signature=ab")`` is ``"s3://***@bucket/x"``."""
    return redact_text(uri)


def digest_credentials(text: str) -> str:
    """``text`` with each URI's credentials and query string replaced by their digest (``sha256:...``): for
    bookkeeping that must see a change of them but may show nothing of them."""
    import hashlib

    def digest(part: str) -> str:
        return "sha256:" + hashlib.sha256(part.encode()).hexdigest()[:16]

    text = _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{digest(m.group('userinfo'))}@", text)
    return _QUERY.sub(lambda m: f"{m.group('url')}?{digest(m.group(0))}", text)


def redact_text(text: str) -> str:
    """Every URI in ``text`` redacted as :func:`redact` does (for error messages, log lines, model cards)."""
    text = _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)
    return _QUERY.sub(lambda m: m.group("url"), text)
