"""The output manifest: the contract between the trainer, which writes it last, and whoever reads a model.

``manifest.json`` at an output location lists every artifact (path relative to the location) with its
sha256; its presence means the output is complete, and an artifact whose digest differs is damaged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: The file, written last, whose presence means the output is complete.
MANIFEST = "manifest.json"
#: Its ``kind``.
MODEL_KIND = "headstart.dev/model"


def damaged(artifacts: Mapping[str, str], digest_of: Callable[[str], str | None]) -> list[str]:
    """The artifacts (of a manifest's ``artifacts``) whose sha256, by ``digest_of(rel)`` (None: missing),
    is not the manifest's; empty when the output is intact."""
    return [rel for rel, digest in artifacts.items() if digest_of(rel) != digest]


@dataclass(frozen=True)
class Owner:
    """The job an output and its checkpoints belong to: recorded in the manifest and in the checkpoint state.

    In a cluster a job is its namespace, name and uid (the same name recreated is another job); a local run
    (``headstart run``) has no namespace and no uid, and is its name."""

    name: str
    namespace: str | None = None
    uid: str | None = None

    @classmethod
    def of(cls, job: Any) -> Owner:
        """The owner of a FineTuneJob (its metadata)."""
        meta = job.metadata
        return cls(meta.name, meta.namespace, meta.uid)

    @classmethod
    def recorded(cls, data: Mapping[str, Any], name: str | None = None) -> Owner | None:
        """The owner a manifest or checkpoint state records (``owner``, else its bare ``job`` name)."""
        owner = data.get("owner")
        if isinstance(owner, Mapping) and isinstance(owner.get("name"), str):
            return cls(owner["name"], owner.get("namespace"), owner.get("uid"))
        name = data.get("job", name)
        return cls(name) if isinstance(name, str) else None

    def to_dict(self) -> dict[str, str]:
        """The owner as a mapping of its namespace, name and uid, each only when it is set.

        Returns:
            The mapping.
        """
        return {k: v for k, v in (("namespace", self.namespace), ("name", self.name), ("uid", self.uid)) if v}

    def same_job(self, other: Owner) -> bool:
        """Whether ``other`` is this job: the same name and namespace and, where both record one, uid. An
        older record without namespace or uid is judged by what it has."""
        if other.name != self.name:
            return False
        if self.namespace and other.namespace and other.namespace != self.namespace:
            return False
        return not (self.uid and other.uid and other.uid != self.uid)

    def __str__(self) -> str:
        named = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{named} (uid {self.uid})" if self.uid else named
