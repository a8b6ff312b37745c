"""Names, ids, hashes and label values of an ApplicationSet's works and mirrors.

Used by ``plan`` (which gives every target its identity), ``diff`` (which matches stored works to
the plan by name and spec hash) and the propagation controller (which selects an ApplicationSet's
works and mirrors by label). A work's id is upstream Maestro's, so it must never change for a
given (source, cluster, name).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def work_name(appset_namespace: str, appset_name: str, cluster: str, application: str) -> str:
    """A work name that is stable per (ApplicationSet, cluster, Application) and readable."""
    digest = hashlib.sha256(f"{appset_namespace}/{appset_name}/{cluster}/{application}".encode()).hexdigest()[
        :10
    ]
    return f"{application[: 253 - 11].rstrip('-.')}-{digest}"


def work_id(source: str, cluster: str, name: str) -> str:
    """Upstream Maestro's resource id for a work: UUIDv5 (OID namespace) of
    ``<source>-manifestworks.work.open-cluster-management.io-<cluster>-<name>``."""
    return str(
        uuid.uuid5(
            uuid.NAMESPACE_OID, f"{source}-manifestworks.work.open-cluster-management.io-{cluster}-{name}"
        )
    )


def mirror_hash(application: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(application, sort_keys=True).encode()).hexdigest()[:16]


def spec_hash(bundle: Mapping[str, Any]) -> str:
    """sha256 of the bundle's canonical JSON: equal hashes mean nothing to send."""
    return hashlib.sha256(json.dumps(bundle, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def with_sync(digest: str, token: str | None) -> str:
    """The spec hash of a work whose Application (of hash ``digest``) carries the sync operation
    ``token`` (RollingSync); ``digest`` itself without one."""
    if not token:
        return digest
    return hashlib.sha256(f"{digest}:{token}".encode()).hexdigest()


def label_value(text: str) -> str:
    """``text`` if it is a valid label value, else a truncated form with a hash (full value goes in
    an annotation)."""
    if len(text) <= 63 and _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", text)[:52].strip("-_.")
    return f"{head}-{digest}" if head else digest
