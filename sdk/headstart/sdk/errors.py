"""The SDK's exceptions: a small hierarchy, each chained (``from``) to the error it explains.

Every one says, in ``str(error)``, one line a person can act on. The CLI maps them to exit codes:
``exit_code`` (1 a job failed or the API said no, 3 a wait timed out).
"""

from __future__ import annotations


class HeadstartError(Exception):
    """Base of every SDK error."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ClusterUnreachable(HeadstartError):
    """No kubeconfig, an unknown context, or an API server that does not answer."""


class CrdNotInstalled(HeadstartError):
    """The cluster does not serve FineTuneJobs (`headstart crd | kubectl apply -f -`)."""


class Forbidden(HeadstartError):
    """The API server refused the request for this user (RBAC)."""


class NotFound(HeadstartError):
    """No such FineTuneJob (or no such output)."""


class AlreadyExists(HeadstartError):
    """A FineTuneJob of that name already exists in the namespace."""


class InvalidJob(HeadstartError):
    """The manifest is not a valid FineTuneJob (client-side checks or the API server's)."""

    def __init__(self, message: str, lines: list[str] | None = None):
        super().__init__(message)
        self.lines = lines or [str(self)]


class JobFailed(HeadstartError):
    """The job ended in phase Failed; ``reason`` and ``message`` come from its status."""

    def __init__(self, name: str, reason: str | None, message: str | None):
        self.name, self.reason, self.detail = name, reason, message
        super().__init__(f"FineTuneJob {name} failed: {reason or 'Failed'}: {message or 'no message'}")


class Timeout(HeadstartError, TimeoutError):
    """A wait ran out of time before the job reached the phases asked for."""

    exit_code = 3


class ArtifactError(HeadstartError):
    """A fetched model is incomplete, does not match its manifest, or would write outside its folder."""
