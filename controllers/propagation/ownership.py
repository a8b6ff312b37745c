"""Which works and hub mirrors belong to an ApplicationSet.

``plan`` labels an ApplicationSet's works and mirrors with its (possibly hashed) namespace and name
and annotates them with the full ``namespace/name``: the labels select, the annotation decides.
Used by the propagation pass, its finalizer and the sweep of orphaned works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers import contract
from controllers.propagation import identities


def owner_labels(namespace: str, name: str) -> dict[str, str]:
    """The labels ``plan`` puts on an ApplicationSet's works and mirrors (values may be hashed)."""
    return {
        contract.LABEL_APPSET_NAMESPACE: identities.label_value(namespace),
        contract.LABEL_APPSET_NAME: identities.label_value(name),
    }


def object_annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The annotations of a Kubernetes object."""
    return work_annotations(obj.get("metadata") or {})


def work_annotations(meta: Mapping[str, Any]) -> Mapping[str, str]:
    """The annotations in an ObjectMeta (a work's metadata is one, without an enclosing object)."""
    annotated: Mapping[str, str] = meta.get("annotations") or {}
    return annotated


def owner(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    """The ApplicationSet a work's metadata names as its owner, if any."""
    namespace, _, name = str(work_annotations(meta).get(contract.ANNOTATION_APPSET, "")).partition("/")
    return (namespace, name) if namespace and name else None


def owned_by(meta: Mapping[str, Any], namespace: str, name: str) -> bool:
    return work_annotations(meta).get(contract.ANNOTATION_APPSET) == f"{namespace}/{name}"
