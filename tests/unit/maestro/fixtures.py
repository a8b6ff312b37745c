"""Small builders shared by Maestro's unit tests (one copy of each payload, not one per test)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from maestro.api import bundles

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
RID = uuid.UUID("0b6f7b5c-4a7e-5d7e-9d2b-2d9d8f1f3a10")


def manifest(name: str = "guestbook", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"project": "default", **extra},
    }


def spec(**extra: Any) -> bundles.ManifestBundle:
    return bundles.ManifestBundle(manifests=[manifest(**extra)])


def bundle(
    version: int = 1, *, deleted: bool = False, rid: uuid.UUID = RID, **extra: Any
) -> bundles.ResourceBundle:
    body = spec(**extra)
    return bundles.ResourceBundle(
        id=rid,
        consumer="cluster1",
        source="hub",
        version=version,
        manifests=body.manifests,
        metadata={"name": "work1", "namespace": "cluster1"},
        deleted_at=NOW if deleted else None,
    )


def request(
    action: bundles.SpecAction,
    version: int = 0,
    *,
    rid: uuid.UUID = RID,
    source: str = "hub",
    consumer: str = "cluster1",
    **extra: Any,
) -> bundles.SpecRequest:
    return bundles.SpecRequest(
        action=action,
        resource_id=rid,
        consumer=consumer,
        source=source,
        version=version,
        spec=None if action is bundles.SpecAction.DELETE else spec(**extra),
        metadata={"name": "work1", "namespace": "cluster1"},
    )


def status(seq: int = 7, condition: str = "Applied", value: str = "True") -> bundles.BundleStatus:
    return bundles.BundleStatus(
        conditions=[{"type": condition, "status": value, "reason": "Done", "message": "<ok> & fine"}],
        resource_status=[{"resourceMeta": {"ordinal": 0, "kind": "Application", "name": "guestbook"}}],
        sequence_id=seq,
    )
