"""In-memory stand-ins for the hub API server and the Maestro source client, for handler tests.

They implement only what the propagation and status controllers
call, with the semantics that matter to them: label filters, create-vs-update refusals, soft
deletion of works, status kept apart from metadata and spec.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from controllers import hub
from maestro import client_errors
from maestro.api import bundles, listing, queries


def _us(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1_000_000)


def summary(
    record: bundles.BundleRecord, *, with_spec: bool = True, with_status: bool = True
) -> listing.BundleSummary:
    """A record as a listing shows it."""
    bundle, status = record.bundle, record.status
    return listing.BundleSummary(
        id=str(bundle.id),
        consumer=bundle.consumer,
        source=bundle.source,
        version=bundle.version,
        deletion=listing.DeletionState.DELETING if bundle.deleting else listing.DeletionState.ACTIVE,
        spec_json=orjson.dumps(bundle.spec.to_json()) if with_spec else b"",
        metadata_json=orjson.dumps(bundle.metadata),
        status_json=orjson.dumps(status.to_json()) if status and with_status else b"",
        status_sequence=status.sequence_id if status else 0,
        status_hash=record.status_hash,
        status_version=record.status_version,
        deleted_at_us=_us(bundle.deleted_at),
        created_at_us=_us(bundle.created_at),
        updated_at_us=_us(bundle.updated_at),
    )


def status_update(change: bundles.StatusChange) -> listing.StatusUpdate:
    """A stored status change as the watch delivers it."""
    record = change.record
    if change.deleted:
        deletion = listing.DeletionState.DELETED
    else:
        deletion = listing.DeletionState.DELETING if record.bundle.deleting else listing.DeletionState.ACTIVE
    return listing.StatusUpdate(
        resource_id=str(record.bundle.id),
        consumer=record.bundle.consumer,
        source=record.bundle.source,
        version=record.status_version,
        deletion=deletion,
        metadata_json=orjson.dumps(record.bundle.metadata),
        status_json=orjson.dumps(record.status.to_json()) if record.status else b"",
        status_sequence=record.status.sequence_id if record.status else 0,
        status_hash=record.status_hash,
        resume_token=str(change.rev),
    )


def _matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


class FakeMaestro:
    def __init__(self, source: str, consumers: tuple[str, ...] = ("c1", "c2")) -> None:
        self.source = source
        self.consumers = set(consumers)
        self.records: dict[uuid.UUID, bundles.BundleRecord] = {}
        self.calls: list[tuple[str, str]] = []

    async def list(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = 0,
        *,
        with_spec: bool = True,
        with_status: bool = True,
    ) -> tuple[list[bundles.BundleRecord], str]:
        where = where or queries.ResourceFilter()
        out = [
            r
            for r in self.records.values()
            if (not where.source or r.bundle.source == where.source)
            and (not where.consumer or r.bundle.consumer == where.consumer)
            and _matches(r.bundle.labels, where.labels)
        ]
        if not with_spec:  # as the server answers: no manifests, no options
            out = [
                dataclasses.replace(
                    r,
                    bundle=dataclasses.replace(
                        r.bundle, manifests=[], delete_option=None, manifest_configs=[], executer=None
                    ),
                )
                for r in out
            ]
        if not with_status:
            out = [dataclasses.replace(r, status=None) for r in out]
        return out, "7"

    async def pages(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = 0,
        *,
        with_spec: bool = True,
        with_status: bool = True,
    ) -> AsyncIterator[listing.BundlePage]:
        self.calls.append(("list", "with status" if with_status else "without status"))
        records, token = await self.list(where, page_size)
        # as the server answers: without the status, its sequence stays
        items = [summary(r, with_spec=with_spec, with_status=with_status) for r in records]
        yield listing.BundlePage(items=items, next_page_token="", watch_resume_token=token)

    async def get(self, resource_id: uuid.UUID) -> bundles.BundleRecord:
        self.calls.append(("get", str(resource_id)))
        found = self.records.get(resource_id)
        if found is None:
            raise client_errors.NotFound("NOT_FOUND", "resource bundle not found")
        return found

    async def apply(
        self,
        consumer: str,
        resource_id: uuid.UUID,
        bundle: bundles.ManifestBundle,
        *,
        metadata: Mapping[str, Any] | None = None,
        version: int = 0,
        create: bool = True,
    ) -> None:
        self.calls.append(("create" if create else "update", consumer))
        if consumer not in self.consumers:
            raise client_errors.NotFound("NOT_FOUND", f"consumer {consumer!r} not found")
        existing = self.records.get(resource_id)
        if create and existing is not None:
            if existing.bundle.spec != bundle:
                raise client_errors.AlreadyExists("ALREADY_EXISTS", "with a different payload")
            return
        if not create and existing is None:
            raise client_errors.NotFound("NOT_FOUND", "resource bundle not found")
        stored = bundles.ResourceBundle(
            id=resource_id,
            consumer=consumer,
            source=self.source,
            version=existing.bundle.version + 1 if existing else 1,
            manifests=bundle.manifests,
            delete_option=bundle.delete_option,
            manifest_configs=bundle.manifest_configs,
            metadata=dict(metadata or {}),
        )
        self.records[resource_id] = bundles.BundleRecord(stored, existing.status if existing else None)

    async def delete(self, consumer: str, resource_id: uuid.UUID, *, version: int = 0) -> None:
        self.calls.append(("delete", consumer))
        record = self.records.get(resource_id)
        if record is None:
            raise client_errors.NotFound("NOT_FOUND", "resource bundle not found")
        self.records[resource_id] = dataclasses.replace(
            record, bundle=dataclasses.replace(record.bundle, deleted_at=datetime.now(UTC))
        )

    def confirm_deletions(self) -> None:
        """The agents removed everything: deleting works disappear."""
        self.records = {k: r for k, r in self.records.items() if not r.bundle.deleting}


class FakeHub:
    def __init__(self) -> None:
        self.appsets: dict[tuple[str, str], dict[str, Any]] = {}
        self.applications: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: list[dict[str, Any]] = []
        self.config_maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        #: Applications whose writes the hub refuses, with its message
        self.refusals: dict[tuple[str, str], str] = {}
        #: the last resourceVersion given to an Application
        self.version = 0
        #: label-selected lists of Applications answered
        self.mirror_lists = 0

    async def get_application_set(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.appsets.get((namespace, name))
        return copy.deepcopy(found) if found else None

    async def replace_application_set_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        if (namespace, name) not in self.appsets:
            raise hub.NotFoundError("not found", status=404)
        self.appsets[(namespace, name)]["status"] = copy.deepcopy(dict(status))
        self.writes.append(("appset-status", namespace, name))

    async def get_application(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.applications.get((namespace, name))
        return copy.deepcopy(found) if found else None

    async def list_application_metadata(
        self, namespace: str, labels: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        self.mirror_lists += 1
        return [
            {"metadata": copy.deepcopy(a["metadata"])}
            for (ns, _), a in sorted(self.applications.items())
            if ns == namespace and _matches(a["metadata"].get("labels") or {}, labels)
        ]

    async def list_all_applications(self, label_selector: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(a)
            for a in self.applications.values()
            if label_selector in (a["metadata"].get("labels") or {})
        ]

    async def create_application(
        self, application: Mapping[str, Any], *, field_manager: str
    ) -> dict[str, Any]:
        key = self._admitted(application)
        if key in self.applications:
            raise hub.ConflictError(f"applications.argoproj.io {key[1]!r} already exists")
        return self._store(key, application, "create")

    async def replace_application(
        self, application: Mapping[str, Any], *, field_manager: str
    ) -> dict[str, Any]:
        key = self._admitted(application)
        current = self.applications.get(key)
        if current is None:
            raise hub.NotFoundError("not found", status=404)
        if current["metadata"].get("resourceVersion") != application["metadata"].get("resourceVersion"):
            raise hub.ConflictError("the object has been modified")
        return self._store(key, application, "replace")

    def _admitted(self, application: Mapping[str, Any]) -> tuple[str, str]:
        """The Application's key, unless the hub is told to refuse it (a 400, as for an unknown field)."""
        meta = application["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self.refusals:
            raise hub.ClusterError(self.refusals[key], status=400)
        return key

    def _store(self, key: tuple[str, str], application: Mapping[str, Any], verb: str) -> dict[str, Any]:
        stored = copy.deepcopy(dict(application))
        self.version += 1
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.applications[key] = stored
        self.writes.append((verb, *key))
        return stored

    async def delete_application(self, namespace: str, name: str) -> bool:
        self.writes.append(("delete", namespace, name))
        return self.applications.pop((namespace, name), None) is not None

    async def replace_application_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        if (namespace, name) not in self.applications:
            raise hub.NotFoundError("not found", status=404)
        self.version += 1
        stored = self.applications[(namespace, name)]
        stored["status"] = copy.deepcopy(dict(status))
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.writes.append(("app-status", namespace, name))

    async def list_secrets(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        return copy.deepcopy(self.secrets)

    async def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.config_maps.get((namespace, name)))

    async def list_namespaced(self, api_version: str, plural: str, namespace: str) -> list[dict[str, Any]]:
        return []


class Listener:
    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, str]] = []
        #: statuses to hand out with mirrors, by (namespace, name)
        self.statuses: dict[tuple[str, str], dict[str, Any]] = {}

    def status_of(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.statuses.get((namespace, name))

    def expect(self, namespace: str, name: str, newer_than: int) -> asyncio.Future[None]:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ready.set_result(None)  # whatever it has is what it will have: no wait
        return ready

    def release(self, namespace: str, names: Iterable[str]) -> None:
        return None

    def mirror_written(self, namespace: str, name: str, status: Mapping[str, Any] | None) -> None:
        if (namespace, name) not in self.created:
            self.created.append((namespace, name))

    def mirrors_seen(self, namespace: str, names: Iterable[str]) -> None:
        return None

    def mirror_deleted(self, namespace: str, name: str) -> None:
        self.deleted.append((namespace, name))
