"""Answers to resync requests, as pure functions of the stored bundles and what the peer holds.

The server calls `agent_answer` when an agent (re)starts and sends `spec.resync_request` with the
versions it holds, and `source_answer` when a source sends `status.resync_request` with the status
hashes it holds; it then sends the events these answers name.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Iterable, Mapping

from maestro.api import bundles


class AgentResyncKind(enum.StrEnum):
    # Send the bundle's current spec: the agent lacks it or holds an older version.
    SPEC = "spec"
    # Send a delete: the bundle is being deleted.
    DELETE = "delete"
    # Send a delete for an id the server does not know (the agent holds a leftover).
    DELETE_UNKNOWN = "delete_unknown"


@dataclasses.dataclass(frozen=True, slots=True)
class AgentResyncItem:
    kind: AgentResyncKind
    resource_id: uuid.UUID
    # Absent for DELETE_UNKNOWN.
    bundle: bundles.ResourceBundle | None = None
    # The version the agent said it holds, if it named this id.
    agent_version: int | None = None


def agent_answer(
    server: Iterable[bundles.ResourceBundle], agent: Mapping[uuid.UUID, int]
) -> list[AgentResyncItem]:
    """Every deleting bundle, every bundle newer than the agent's copy, a delete for every id only
    the agent knows; ordered by id so the answer is reproducible."""
    out: list[AgentResyncItem] = []
    known: set[uuid.UUID] = set()
    for bundle in server:
        known.add(bundle.id)
        held = agent.get(bundle.id)
        if bundle.deleting:
            out.append(AgentResyncItem(AgentResyncKind.DELETE, bundle.id, bundle, held))
        elif held is None or held < bundle.version:
            out.append(AgentResyncItem(AgentResyncKind.SPEC, bundle.id, bundle, held))
    for resource_id, held in agent.items():
        if resource_id not in known:
            out.append(AgentResyncItem(AgentResyncKind.DELETE_UNKNOWN, resource_id, None, held))
    out.sort(key=lambda item: item.resource_id)
    return out


def source_answer(
    server: Iterable[bundles.BundleRecord], source: Mapping[uuid.UUID, str]
) -> list[bundles.BundleRecord]:
    """The records whose status the source must be sent: those whose hash differs from (or is
    missing in) its list, or every record with a status when the list is empty."""
    out = [
        record
        for record in server
        if record.status is not None and (not source or source.get(record.bundle.id) != record.status_hash)
    ]
    out.sort(key=lambda record: record.bundle.id)
    return out
