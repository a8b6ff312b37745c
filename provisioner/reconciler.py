"""Claims, composites, compositions and definitions on the management cluster, reconciled.

Called by ``provisioner.operator`` (the kopf wiring) for every event and periodic pass; each call
is level-based: it reads what exists and moves it one step closer to what the composite asks, so a
restart, a missed event or a manual edit is repaired by the next call. A call that has to wait (a
cluster starting, a workload not ready, works still draining from Maestro) raises ``Requeue``.

A composite's pass: pick its Composition and revision (``compositions``), render the revision's
template (``render``), make the cluster exist (the provider), then apply each composed resource in
the template's order — ``workload`` objects into the new cluster, ``hub`` objects on the management
cluster, ``maestro`` consumers through the gRPC API — stopping at the first ``waitReady`` resource
that is not ready yet. A render or provider failure becomes ``Synced=False`` with the reason and
touches nothing already provisioned.

Deletion runs in the order the fleet needs: the hub inventory entry goes first (so the hub
controllers withdraw the cluster's apps), then, once Maestro holds no work for the cluster, the
Maestro agent, the consumer, Argo CD, and last the cluster itself.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import grpc
import yaml

from kubeio import credentials, objects
from kubeio.errors import ClusterUnavailableError, KubeError, NotFoundError
from kubeio.rest import KubeRest
from localinfra import kube as local_kube
from localinfra import process
from maestro.api import queries
from maestro.client import MaestroClient
from provisioner import api, catalog, compositions, conditions, render, xrd
from provisioner.providers.base import ClusterProvider, ClusterSpec, ClusterState, Phase, ProviderError
from provisioner.providers.local_workloads import LocalWorkloads, component, is_workload, status_patch

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
FIELD_MANAGER = "fleetplane-provisioner"
SECRET_KEY = "kubeconfig"


class Requeue(Exception):
    """Not done yet: call again after ``delay`` seconds (the status already says why)."""

    def __init__(self, message: str, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


class Reporter(Protocol):
    def __call__(self, obj: Mapping[str, Any], kind: str, reason: str, message: str) -> None: ...


@dataclass
class Settings:
    #: where templates named by a Composition's ``spec.template.path`` live
    compositions_dir: Path
    #: the ``platform`` variable of every template (hub, maestro, argocd; see ``render``)
    platform: Mapping[str, Any]
    #: seconds a deletion waits for Maestro to confirm the cluster's works are gone while its agent
    #: runs; after that (or at once when the agent is gone) it stops the agent and leaves the rest to
    #: Maestro's orphan grace period, saying so in the condition
    drain_seconds: float = 120.0
    requeue_seconds: float = 3.0


@dataclass
class _Pass:
    """What one composite pass found, for its status."""

    resources: list[JsonObject] = field(default_factory=list)
    cluster: JsonObject = field(default_factory=dict)
    connection_secret: JsonObject | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _generation(obj: Mapping[str, Any]) -> int:
    return int(_meta(obj).get("generation") or 0)


def kind_path(definition: Mapping[str, Any], *, claim: bool) -> tuple[str, str, str]:
    """``(group, version, plural)`` of a definition's composite or claim kind (its served version)."""
    spec = definition.get("spec") or {}
    names = spec.get("claimNames" if claim else "names") or {}
    versions = spec.get("versions") or [{}]
    served = next((v for v in versions if v.get("referenceable")), versions[0])
    return str(spec.get("group")), str(served.get("name")), str(names.get("plural"))


class Reconciler:
    def __init__(
        self,
        hub: KubeRest,
        maestro: MaestroClient,
        providers: Mapping[str, ClusterProvider],
        settings: Settings,
        *,
        workloads: LocalWorkloads | None = None,
        report: Reporter | None = None,
        kinds_served: Callable[[Sequence[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.hub = objects.Objects(hub)
        # waits until the operator's own watches include kinds whose CRDs were just served
        self.kinds_served = kinds_served
        self.maestro = maestro
        self.providers = providers
        self.settings = settings
        self.workloads = workloads
        self.report: Reporter = report or (lambda *_: None)
        self._locks: dict[str, asyncio.Lock] = {}
        self._clusters: dict[str, tuple[str, objects.Objects]] = {}

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def close(self) -> None:
        for _, cluster in self._clusters.values():
            await cluster.rest.close()
        self._clusters.clear()

    # --- definitions and compositions -------------------------------------------------------------

    async def reconcile_definition(self, definition: Mapping[str, Any]) -> list[str]:
        """Serve the definition's composite and claim kinds; returns the CRD names."""
        try:
            crds = xrd.generated_crds(definition)
        except xrd.DefinitionError as exc:
            await self._set_conditions(definition, ok=False, reason="InvalidDefinition", message=str(exc))
            self.report(definition, "Warning", "InvalidDefinition", str(exc))
            raise
        for crd in crds:
            await self.hub.apply(crd, field_manager=FIELD_MANAGER)
        for crd in crds:
            await self.hub.wait_established(crd["metadata"]["name"])
        names = [c["metadata"]["name"] for c in crds]
        if self.kinds_served is not None:
            await self.kinds_served(names)
        await self._set_conditions(definition, ok=True, ready=True, message="serving " + ", ".join(names))
        return names

    async def reconcile_composition(self, composition: Mapping[str, Any]) -> str:
        """Cut a revision when the template or defaults changed; returns the latest revision's name."""
        text = catalog.template_text(composition, self.settings.compositions_dir)
        revisions = await self.list_objects(api.GROUP, api.VERSION, "compositionrevisions")
        new = compositions.next_revision(composition, text, revisions)
        if new is not None:
            await self.hub.apply(new, field_manager=FIELD_MANAGER)
            self.report(composition, "Normal", "RevisionCreated", f"revision {new['metadata']['name']}")
            revisions.append(new)
        own = compositions.revisions_of(str(_meta(composition).get("name")), revisions)
        for old in compositions.prunable_revisions(composition, revisions, await self._revisions_in_use()):
            await self.hub.delete(old)
        return str(own[-1]["metadata"]["name"])

    async def _revisions_in_use(self) -> set[str]:
        in_use: set[str] = set()
        for definition in await self.list_objects(api.GROUP, api.VERSION, "compositeresourcedefinitions"):
            for composite in await self.list_objects(*kind_path(definition, claim=False)):
                name = (composite.get("status") or {}).get("compositionRevision")
                if name:
                    in_use.add(str(name))
        return in_use

    # --- claims -------------------------------------------------------------------------------------

    async def reconcile_claim(self, claim: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        """Bind the claim to its composite (created or updated from the claim) and copy its status."""
        wanted = xrd.composite_from_claim(claim, definition)
        group, version, _ = kind_path(definition, claim=False)
        wanted["apiVersion"] = f"{group}/{version}"
        composite = await self.hub.apply(wanted, field_manager=FIELD_MANAGER)
        if (claim.get("spec") or {}).get("resourceRef") != xrd.resource_ref(composite):
            await self.hub.rest.request(
                "PATCH",
                await self.hub.path(claim),
                body={"spec": {"resourceRef": xrd.resource_ref(composite)}},
                content_type="application/merge-patch+json",
            )
        await self._copy_status(claim, composite)

    async def composite_changed(self, composite: Mapping[str, Any]) -> None:
        """Carry a composite's status to its claim (a claim shows what its cluster is doing)."""
        ref = (composite.get("spec") or {}).get("claimRef") or {}
        if not ref.get("name") or _meta(composite).get("deletionTimestamp"):
            return
        claim = await self.hub.get(
            {**ref, "metadata": {"name": ref["name"], "namespace": ref.get("namespace")}}
        )
        if claim is not None and not _meta(claim).get("deletionTimestamp"):
            await self._copy_status(claim, composite)

    async def _copy_status(self, claim: Mapping[str, Any], composite: Mapping[str, Any]) -> None:
        status = xrd.claim_status(claim, composite)
        if status != (claim.get("status") or {}):
            await self.hub.patch_status(claim, {"status": status})

    async def delete_claim(self, claim: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        """Delete the claim's composite and wait until it is gone (its own deletion runs first)."""
        group, version, _ = kind_path(definition, claim=False)
        name = ((claim.get("spec") or {}).get("resourceRef") or {}).get(
            "name"
        ) or xrd.claim_to_composite_name(claim)
        ref = {"apiVersion": f"{group}/{version}", "kind": definition["spec"]["names"]["kind"]}
        composite = await self.hub.get({**ref, "metadata": {"name": name}})
        if composite is None:
            return
        if not _meta(composite).get("deletionTimestamp"):
            await self.hub.delete(composite)
        await self.hub.patch_status(claim, {"status": xrd.claim_status(claim, composite)})
        raise Requeue(f"waiting for composite {name} to be deleted", self.settings.requeue_seconds)

    # --- composites ---------------------------------------------------------------------------------

    async def reconcile_composite(self, composite: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        name = str(_meta(composite)["name"])
        async with self._lock(name):
            found = _Pass()
            try:
                revision, resources = await self._render(composite, definition)
            except (compositions.CompositionError, render.RenderError) as exc:
                reason = "RenderFailed" if isinstance(exc, render.RenderError) else "CompositionInvalid"
                await self._fail(composite, reason, str(exc))
                raise Requeue(str(exc), 30.0) from exc
            provider_resource = resources[0]
            spec = render.cluster_spec(provider_resource, name)
            provider_name = render.provider_name(provider_resource)
            try:
                state = await self._provider(provider_name).ensure(spec)
            except ProviderError as exc:
                await self._fail(composite, exc.reason, exc.message, revision=revision)
                raise Requeue(exc.message, 15.0 if exc.retryable else 120.0) from exc
            found.cluster = {"provider": provider_name, "name": name, "phase": str(state.phase)}
            found.cluster["endpoint"] = state.endpoint
            found.cluster.update(state.details)
            found.resources.append(_entry(provider_resource, state.ready, state.message or str(state.phase)))
            if not state.ready or state.kubeconfig is None:
                await self._progress(composite, found, revision, f"cluster {state.phase}: {state.message}")
                raise Requeue(f"cluster {name} is {state.phase}", self.settings.requeue_seconds)
            worker = await self._worker(name, state.kubeconfig)
            found.connection_secret = await self._connection_secret(composite, state)
            waiting = ""
            for resource in resources[1:]:
                try:
                    ready, message = await self._apply(composite, name, resource, worker)
                except (KubeError, grpc.aio.AioRpcError, ValueError) as exc:
                    message = _error_text(exc)
                    found.resources.append(_entry(resource, False, message))
                    await self._fail(composite, "ApplyFailed", f"{resource.name}: {message}", revision, found)
                    raise Requeue(message, 10.0) from exc
                found.resources.append(_entry(resource, ready, message))
                if not ready and resource.wait_ready:
                    waiting = f"waiting for {resource.name}: {message}"
                    break
            await self._prune(composite, found, worker)
            if waiting:
                await self._progress(composite, found, revision, waiting)
                raise Requeue(waiting, self.settings.requeue_seconds)
            await self._write_status(composite, found, revision, synced=(True, "", ""), ready=(True, "", ""))

    async def _render(
        self, composite: Mapping[str, Any], definition: Mapping[str, Any]
    ) -> tuple[JsonObject, list[render.ComposedResource]]:
        all_compositions = await self.list_objects(api.GROUP, api.VERSION, "compositions")
        default = ((definition.get("spec") or {}).get("defaultCompositionRef") or {}).get("name") or ""
        composition = compositions.select_composition(composite, all_compositions, default)
        revisions = await self.list_objects(api.GROUP, api.VERSION, "compositionrevisions")
        bound = {
            **composite,
            "spec": {**(composite.get("spec") or {}), "compositionRef": {"name": _meta(composition)["name"]}},
        }
        revision = compositions.resolve_revision(bound, revisions)
        patch = compositions.binding_patch(composite, composition, revision)
        if patch:
            await self.hub.rest.request(
                "PATCH",
                await self.hub.path(composite),
                body=patch,
                content_type="application/merge-patch+json",
            )
        rev_spec = revision.get("spec") or {}
        defaults = rev_spec.get("defaults") or {}
        values = render.composite_values(composite, None, defaults, self.settings.platform)
        template = rev_spec.get("template") or {}
        source = str(template.get("source") or f"CompositionRevision/{_meta(revision)['name']}")
        text = str(template.get("inline") or "")
        return revision, render.render(text, source=source, values=values)

    def _provider(self, wanted: str) -> ClusterProvider:
        provider = self.providers.get(wanted)
        if provider is None:
            raise ProviderError(
                "ProviderNotConfigured",
                f"no {wanted!r} provider in this provisioner; it has {', '.join(sorted(self.providers))}",
                retryable=False,
            )
        return provider

    async def _worker(self, name: str, kubeconfig: Mapping[str, Any]) -> objects.Objects:
        digest = yaml.safe_dump(dict(kubeconfig), sort_keys=True)
        cached = self._clusters.get(name)
        if cached is not None and cached[0] == digest:
            return cached[1]
        if cached is not None:
            await cached[1].rest.close()
        creds = await asyncio.to_thread(credentials.from_kubeconfig_dict, dict(kubeconfig))
        worker = objects.Objects(KubeRest(creds))
        self._clusters[name] = (digest, worker)
        return worker

    async def _apply(
        self,
        composite: Mapping[str, Any],
        name: str,
        resource: render.ComposedResource,
        worker: objects.Objects,
    ) -> tuple[bool, str]:
        obj = dict(resource.object)
        if resource.target == "workload":
            applied = await worker.apply(obj, field_manager=FIELD_MANAGER)
            if obj.get("kind") == "CustomResourceDefinition":
                await worker.wait_established(str(_meta(obj)["name"]))
                return True, "established"
            if is_workload(obj):
                return await self._run_workload(name, worker, applied)
            return True, "applied"
        if resource.target == "hub":
            obj["metadata"] = {
                **_meta(obj),
                "labels": {**(_meta(obj).get("labels") or {}), api.LABEL_COMPOSITE_NAME: name},
            }
            await self.hub.apply(obj, field_manager=FIELD_MANAGER)
            return True, "applied on the management cluster"
        if resource.target == "maestro":
            return await self._consumer(str(obj.get("name") or name), obj.get("labels") or {})
        raise ValueError(f"unknown target {resource.target!r}")

    async def _run_workload(
        self, name: str, worker: objects.Objects, applied: JsonObject
    ) -> tuple[bool, str]:
        if self.workloads is None or component(applied) is None:
            status = applied.get("status") or {}
            replicas = int((applied.get("spec") or {}).get("replicas") or 1)
            ready = int(status.get("readyReplicas") or 0) >= replicas
            return ready, f"{status.get('readyReplicas') or 0}/{replicas} replicas ready"
        cluster = local_kube.Cluster(name, worker.rest.server, self._kubeconfig_file(name))
        state = await self.workloads.run(cluster, applied)
        await worker.patch_status(applied, status_patch(applied, state))
        return state.ready, state.message

    def _kubeconfig_file(self, name: str) -> Path:
        for provider in self.providers.values():
            path_of = getattr(provider, "kubeconfig_path", None)
            if path_of is not None:
                return Path(path_of(name))
        raise ValueError("local workloads need the local provider's kubeconfig files")

    async def _consumer(self, name: str, labels: Mapping[str, str]) -> tuple[bool, str]:
        try:
            await self.maestro.get_consumer(name)
            return True, "registered with Maestro"
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
        await self.maestro.create_consumer(name, dict(labels))
        return True, "registered with Maestro"

    async def _connection_secret(
        self, composite: Mapping[str, Any], state: ClusterState
    ) -> JsonObject | None:
        ref = (composite.get("spec") or {}).get("writeConnectionSecretToRef") or {}
        if not ref.get("name") or state.kubeconfig is None:
            return None
        secret: JsonObject = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": ref["name"],
                "namespace": ref.get("namespace") or "default",
                "labels": {api.LABEL_COMPOSITE_NAME: str(_meta(composite)["name"])},
            },
            "type": "Opaque",
            "data": {
                SECRET_KEY: base64.b64encode(yaml.safe_dump(state.kubeconfig).encode()).decode(),
                "server": base64.b64encode(state.endpoint.encode()).decode(),
            },
        }
        await self.hub.apply(secret, field_manager=FIELD_MANAGER)
        return {"name": ref["name"], "namespace": secret["metadata"]["namespace"]}

    async def _prune(self, composite: Mapping[str, Any], found: _Pass, worker: objects.Objects) -> None:
        """Delete what an earlier revision composed and this one no longer does."""
        now = {r["name"] for r in found.resources}
        for old in (composite.get("status") or {}).get("resources") or []:
            if old.get("name") in now or old.get("target") not in ("workload", "hub"):
                continue
            ref = {
                "apiVersion": old.get("apiVersion"),
                "kind": old.get("kind"),
                "metadata": {"name": old.get("objectName"), "namespace": old.get("namespace")},
            }
            await (worker if old["target"] == "workload" else self.hub).delete(ref)
            self.report(composite, "Normal", "Pruned", f"{old['name']} is no longer composed: deleted")

    # --- deletion -----------------------------------------------------------------------------------

    async def delete_composite(self, composite: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        """One step of the ordered deletion; ``Requeue`` until the last one is done."""
        name = str(_meta(composite)["name"])
        async with self._lock(name):
            policy = (composite.get("spec") or {}).get("deletionPolicy") or "Delete"
            await self._delete_hub_objects(name)
            if policy == "Orphan":
                self.report(
                    composite, "Normal", "Orphaned", f"cluster {name} and its workloads are left running"
                )
                return
            works = await self._works_left(name)
            agent_alive = self._agent_alive(name)
            started = _meta(composite).get("deletionTimestamp")
            waited = (_now() - _parse_time(started)).total_seconds() if started else 0.0
            if works and agent_alive and waited < self.settings.drain_seconds:
                await self._deleting(
                    composite, f"waiting for the agent to remove {works} work(s) from the cluster"
                )
                raise Requeue(f"{works} works left", self.settings.requeue_seconds)
            if self.workloads is not None:
                self.workloads.stop_agent(name)
            if works:
                # The agent is gone: Maestro deletes the works itself once their grace period ends.
                await self._deleting(
                    composite,
                    f"{works} work(s) still in Maestro with no agent to remove them; they go when "
                    "Maestro's orphan grace period ends (the server's --orphan-grace)",
                )
                raise Requeue(f"{works} orphaned works left", 10.0)
            try:
                await self.maestro.delete_consumer(name)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            if self.workloads is not None:
                self.workloads.stop(name)
            resources = await self._render_quietly(composite, definition)
            spec = render.cluster_spec(resources[0], name) if resources else ClusterSpec(name)
            recorded = ((composite.get("status") or {}).get("cluster") or {}).get("provider")
            provider_name = recorded or (render.provider_name(resources[0]) if resources else "local")
            state = await self._provider(str(provider_name)).delete(spec)
            if state.phase is not Phase.DELETED:
                await self._deleting(composite, f"cluster {state.phase}: {state.message}")
                raise Requeue(f"cluster {name} {state.phase}", self.settings.requeue_seconds)
            cached = self._clusters.pop(name, None)
            if cached is not None:
                await cached[1].rest.close()
            self.report(composite, "Normal", "Deleted", f"cluster {name} deleted")

    async def _render_quietly(
        self, composite: Mapping[str, Any], definition: Mapping[str, Any]
    ) -> list[render.ComposedResource]:
        try:
            return (await self._render(composite, definition))[1]
        except (compositions.CompositionError, render.RenderError) as exc:
            log.warning(
                "composite %s: deleting with provider defaults: %s", _meta(composite).get("name"), exc
            )
            return []

    async def _delete_hub_objects(self, name: str) -> None:
        selector = f"{api.LABEL_COMPOSITE_NAME}={name}"
        for secret in await self.list_objects("", "v1", "secrets", label_selector=selector):
            await self.hub.delete({"apiVersion": "v1", "kind": "Secret", "metadata": _meta(secret)})

    async def _works_left(self, name: str) -> int:
        try:
            records, _ = await self.maestro.list(queries.ResourceFilter(consumer=name))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return 0
            raise
        return len(records)

    def _agent_alive(self, name: str) -> bool:
        if self.workloads is None:
            return True  # a real cluster's agent: trust the drain timeout
        record = self.workloads.env.processes.get(f"{name}/maestro-agent")
        return record is not None and process.is_alive(record)

    # --- status ---------------------------------------------------------------------------------

    async def _fail(
        self,
        composite: Mapping[str, Any],
        reason: str,
        message: str,
        revision: Mapping[str, Any] | None = None,
        found: _Pass | None = None,
    ) -> None:
        self.report(composite, "Warning", reason, message)
        await self._write_status(composite, found, revision, synced=(False, reason, message), ready=None)

    async def _progress(
        self, composite: Mapping[str, Any], found: _Pass, revision: Mapping[str, Any], message: str
    ) -> None:
        await self._write_status(
            composite, found, revision, synced=(True, "", ""), ready=(False, conditions.CREATING, message)
        )

    async def _deleting(self, composite: Mapping[str, Any], message: str) -> None:
        await self._write_status(
            composite, None, None, synced=None, ready=(False, conditions.DELETING, message)
        )

    async def _write_status(
        self,
        composite: Mapping[str, Any],
        found: _Pass | None,
        revision: Mapping[str, Any] | None,
        *,
        synced: tuple[bool, str, str] | None,
        ready: tuple[bool, str, str] | None,
    ) -> None:
        current = dict(composite.get("status") or {})
        conds = current.get("conditions") or []
        generation, now = _generation(composite), _now()
        if synced is not None:
            conds = conditions.synced(
                conds, ok=synced[0], reason=synced[1], message=synced[2], generation=generation, now=now
            )
        if ready is not None:
            conds = conditions.ready(
                conds, status=ready[0], reason=ready[1], message=ready[2], generation=generation, now=now
            )
        status: JsonObject = {"conditions": conds}
        if found is not None:
            status["resources"] = found.resources
            if found.cluster:
                status["cluster"] = found.cluster
            if found.connection_secret:
                status["connectionSecret"] = found.connection_secret
        if revision is not None:
            status["compositionRevision"] = str(_meta(revision)["name"])
        if {**current, **status} != current:
            await self.hub.patch_status(composite, {"status": status})

    async def _set_conditions(
        self,
        obj: Mapping[str, Any],
        *,
        ok: bool,
        ready: bool | None = None,
        reason: str = "",
        message: str = "",
    ) -> None:
        generation, now = _generation(obj), _now()
        conds = conditions.synced(
            (obj.get("status") or {}).get("conditions"),
            ok=ok,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )
        if ready is not None:
            conds = conditions.ready(conds, status=ready, message=message, generation=generation, now=now)
        await self.hub.patch_status(obj, {"status": {"conditions": conds}})

    async def list_objects(
        self, group: str, version: str, plural: str, *, label_selector: str = ""
    ) -> list[JsonObject]:
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        query = [("labelSelector", label_selector)] if label_selector else []
        try:
            reply = await self.hub.rest.request("GET", f"{base}/{plural}", query=query)
        except NotFoundError:
            return []
        return list(reply.get("items") or [])


def _entry(resource: render.ComposedResource, ready: bool, message: str) -> JsonObject:
    obj = resource.object
    meta = obj.get("metadata") or {}
    entry: JsonObject = {
        "name": resource.name,
        "target": resource.target,
        "apiVersion": str(obj.get("apiVersion") or api.API_VERSION),
        "kind": str(obj.get("kind") or ""),
        "ready": ready,
        "message": message[:500],
    }
    if meta.get("name"):
        entry["objectName"] = str(meta["name"])
    if meta.get("namespace"):
        entry["namespace"] = str(meta["namespace"])
    return entry


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"Maestro: {exc.code().name}: {exc.details()}"
    if isinstance(exc, ClusterUnavailableError):
        return f"the cluster did not answer: {exc}"
    return str(exc)


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
