"""The SDK's exceptions: a small hierarchy, each chained (``from``) to the error it explains.

Every one says, in ``str(error)``, one line a person can act on, and carries the `headstart` command's exit
code for it (``exit_code``, from the table in headstart.sdk.exit_codes).

    HeadstartError
    ├── ClusterUnreachable   no or a broken kubeconfig, no such context, the server does not answer
    ├── CrdNotInstalled      the cluster serves no FineTuneJobs
    ├── Forbidden            RBAC said no
    ├── NotFound             no such job (or no model yet)
    ├── AlreadyExists        the name is taken
    ├── InvalidJob           the manifest is invalid (``lines``: one per problem)
    ├── JobFailed            the job ended Failed (``reason``, ``detail``)
    ├── Timeout              a wait ran out of time (also a TimeoutError)
    └── ArtifactError        a fetched model does not check out
"""

from __future__ import annotations

from . import exit_codes


class HeadstartError(Exception):
    """Base of every SDK error.

    Args:
        message: What went wrong, in one line (whitespace is folded).

    Attributes:
        exit_code: The `headstart` command's exit code for it.
    """

    exit_code = exit_codes.FAILED

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ClusterUnreachable(HeadstartError):
    """No kubeconfig, a malformed one, an unknown context, or an API server that does not answer."""


class CrdNotInstalled(HeadstartError):
    """The cluster does not serve FineTuneJobs (`headstart crd | kubectl apply -f -`)."""


class Forbidden(HeadstartError):
    """The API server refused the request for this user (RBAC)."""


class NotFound(HeadstartError):
    """No such FineTuneJob (or no such output)."""


class AlreadyExists(HeadstartError):
    """A FineTuneJob of that name already exists in the namespace."""


class InvalidJob(HeadstartError):
    """The manifest is not a valid FineTuneJob (client-side checks or the API server's).

    Args:
        message: The first problem, in one line.
        lines: One line per problem (default: ``message``).

    Attributes:
        lines: One line per problem, e.g. ``job.yaml[0]: spec.stages[0].epochs: must be greater than 0``.
    """

    def __init__(self, message: str, lines: list[str] | None = None):
        super().__init__(message)
        self.lines = lines or [str(self)]


class JobFailed(HeadstartError):
    """The job ended in phase Failed.

    Args:
        name: The job's name.
        reason: Its status.reason (e.g. ``BadDataset``, ``OOMKilled``), if any.
        message: Its status.message, if any.

    Attributes:
        name: The job's name.
        reason: Why it failed, as one CamelCase word (None if the status gives none).
        detail: The status message.
    """

    def __init__(self, name: str, reason: str | None, message: str | None):
        self.name, self.reason, self.detail = name, reason, message
        super().__init__(f"FineTuneJob {name} failed: {reason or 'Failed'}: {message or 'no message'}")


class Timeout(HeadstartError, TimeoutError):
    """A wait ran out of time before the job reached the phases asked for."""

    exit_code = exit_codes.TIMED_OUT


class ArtifactError(HeadstartError):
    """A fetched model is incomplete, does not match its manifest, or would write outside its folder."""
