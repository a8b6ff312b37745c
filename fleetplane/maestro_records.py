"""What ``fleetplane maestro`` shows of consumers, works and revoked certificates: one record per
item (what -o yaml/json prints) and the table columns over it (-o table/wide)."""

from __future__ import annotations

from typing import Any

from fleetplane.output import Column, Record
from maestro.api import consumers, listing, revocations


def consumer(c: consumers.Consumer) -> dict[str, Any]:
    return {
        "name": c.name,
        "labels": dict(c.labels),
        "topic": c.spec_placement.topic,
        "partition": c.spec_placement.partition,
        "status_topic": c.status_topic,
        "incarnation": c.slot,
    }


CONSUMER_COLUMNS = (
    Column.key("name", "name"),
    Column.key("labels", "labels"),
    Column.key("incarnation", "incarnation"),
    Column.key("spec topic", "topic"),
    Column.key("partition", "partition", wide=True),
    Column.key("status topic", "status_topic"),
)


def work(w: listing.BundleSummary) -> dict[str, Any]:
    return {
        "id": w.id,
        "consumer": w.consumer,
        "source": w.source,
        "version": w.version,
        "state": "?" if w.deletion is listing.DeletionState.UNSPECIFIED else w.deletion.value,
        "spec": w.spec(),
        "metadata": w.metadata(),
        "status": w.status() or {},
    }


def _conditions(record: Record) -> str:
    conditions = (record.get("status") or {}).get("conditions") or []
    return " ".join(f"{c.get('type')}={c.get('status')}" for c in conditions)


WORK_COLUMNS = (
    Column.key("id", "id"),
    Column("name", lambda r: (r.get("metadata") or {}).get("name"), wide=True),
    Column.key("consumer", "consumer"),
    Column.key("source", "source"),
    Column.key("version", "version"),
    Column.key("state", "state"),
    Column("status", _conditions),
)


def revocation(r: revocations.Revocation) -> dict[str, Any]:
    return {
        "serial": f"0x{revocations.serial_text(r.serial)}",
        "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        "revoked_by": r.revoked_by,
        "reason": r.reason,
    }


def _when(record: Record) -> str:
    at = record.get("revoked_at")
    return str(at).replace("T", " ")[:19] if at else "?"


REVOCATION_COLUMNS = (
    Column.key("serial", "serial"),
    Column("revoked at", _when),
    Column.key("by", "revoked_by"),
    Column.key("reason", "reason"),
)
