"""Reading kopf's indexes and the objects in them (pure): the one value a key holds, a job's key, ownership,
every value of an index. What the reconciler, the progress intake and the Kueue view all read them with."""

from __future__ import annotations

import collections.abc
from typing import Any

from headstart.api import names


def plain(value: Any) -> Any:
    """A deep copy of kopf's mapping views as plain dicts and lists."""
    if isinstance(value, collections.abc.Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def ftj_key(namespace: str, name: str) -> tuple[str, str]:
    """The key of a FineTuneJob (and of its children) in the indexes."""
    return (namespace, names.label_value(name))


def first(index: Any, key: Any) -> Any:
    """The one value a kopf index holds for key, or None."""
    if index is None or key not in index:
        return None
    for value in index[key]:
        return value
    return None


def values(index: Any) -> list[Any]:
    """Every value an index holds, over all its keys."""
    return [value for key in list(index or ()) for value in index[key]] if index is not None else []


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether ``obj`` has an ownerReference to the object ``uid``."""
    return any(o.get("uid") == uid for o in (obj.get("metadata") or {}).get("ownerReferences") or [])
