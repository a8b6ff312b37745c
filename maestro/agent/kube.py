"""The real cluster: `KubeApplier` applies bundles to a kube-apiserver through its REST API.

Built by the agent's entry point with the worker cluster's kubeconfig (or the in-cluster service
account). `KubeBackend` maps the `backend.Backend` operations onto HTTP: server-side apply is a PATCH with
`application/apply-patch+yaml`, a delete carries the recorded uid as a precondition, records are
`AppliedBundle` objects (the CRD is applied at `start`, idempotently, and awaited until it is
Established). All requests go through `kubeio.rest.KubeRest`: asyncio-native and retried while the
API server is unreachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubeio import objects
from kubeio.discovery import Discovery, ResourceType
from kubeio.rest import APPLY_PATCH, JSON_PATCH, KubeRest, RetrySettings
from maestro.agent import records
from maestro.agent.backend import DeleteState
from maestro.agent.bundle_applier import ApplierSettings, BundleApplier
from maestro.agent.errors import ClusterError, ConflictError, NotFoundError
from maestro.agent.manifests import DEFAULT_FIELD_MANAGER, ObjectRef, marker_value

JsonObject = dict[str, Any]

_CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
_RECORDS_PATH = f"/apis/{records.GROUP}/{records.VERSION}/{records.PLURAL}"
_REVIEWS_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def object_path(ref: ObjectRef) -> str:
    return objects.object_path(ref.group, ref.version, ref.resource, ref.namespace, ref.name)


def collection_path(ref: ObjectRef) -> str:
    return object_path(ref).rsplit("/", 1)[0]


class KubeBackend:
    def __init__(
        self, rest: KubeRest, *, field_manager: str = DEFAULT_FIELD_MANAGER, crd_timeout: float = 60.0
    ) -> None:
        self.rest = rest
        self.discovery = Discovery(rest)
        self.field_manager = field_manager
        self.crd_timeout = crd_timeout

    async def prepare(self) -> None:
        """Apply the AppliedBundle CRD (create or bring up to date) and wait until it is served."""
        name = records.CRD["metadata"]["name"]
        await self.rest.request(
            "PATCH",
            f"{_CRD_PATH}/{name}",
            query=[("fieldManager", self.field_manager), ("force", "true")],
            body=records.CRD,
            content_type=APPLY_PATCH,
        )
        await objects.wait_established(self.rest, name, self.crd_timeout)

    async def close(self) -> None:
        await self.rest.close()

    async def resolve(self, group: str, version: str, kind: str) -> ResourceType:
        return await self.discovery.resolve(group, version, kind)

    async def get(self, ref: ObjectRef) -> JsonObject | None:
        try:
            return await self.rest.request("GET", object_path(ref))
        except NotFoundError:
            return None

    async def create(self, ref: ObjectRef, body: JsonObject) -> JsonObject:
        return await self.rest.request(
            "POST", collection_path(ref), query=[("fieldManager", self.field_manager)], body=body
        )

    async def replace(self, ref: ObjectRef, body: JsonObject) -> JsonObject:
        return await self.rest.request(
            "PUT", object_path(ref), query=[("fieldManager", self.field_manager)], body=body
        )

    async def server_side_apply(
        self, ref: ObjectRef, body: JsonObject, *, field_manager: str, force: bool
    ) -> JsonObject:
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        return await self.rest.request(
            "PATCH", object_path(ref), query=query, body=body, content_type=APPLY_PATCH
        )

    async def delete(self, ref: ObjectRef, *, uid: str, propagation: str) -> DeleteState:
        options = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": propagation,
            "preconditions": {"uid": uid},
        }
        try:
            answer = await self.rest.request("DELETE", object_path(ref), body=options)
        except NotFoundError:
            return DeleteState.ABSENT
        except ConflictError:
            # The uid precondition failed: the name now belongs to an object that is not ours.
            return DeleteState.ABSENT
        # A Status means deleted at once; the object itself means it waits for finalizers.
        return DeleteState.GONE if answer.get("kind") == "Status" else DeleteState.DELETING

    async def remove_label(self, ref: ObjectRef, label: str, *, uid: str) -> None:
        patch = [
            {"op": "test", "path": "/metadata/uid", "value": uid},
            {"op": "remove", "path": f"/metadata/labels/{label.replace('~', '~0').replace('/', '~1')}"},
        ]
        try:
            await self.rest.request(
                "PATCH",
                object_path(ref),
                query=[("fieldManager", self.field_manager)],
                body=patch,
                content_type=JSON_PATCH,
            )
        except NotFoundError:
            return
        except ClusterError as exc:
            if exc.status != 422:  # 422: the test failed (another object) or the label is gone
                raise

    async def list_records(self, consumer: str) -> list[JsonObject]:
        selector = f"{records.CONSUMER_LABEL}={marker_value(consumer)}"
        try:
            items, _ = await self.rest.list_all(_RECORDS_PATH, query=[("labelSelector", selector)])
        except NotFoundError:
            return []  # the CRD is not installed yet: nothing was ever recorded here
        return items

    async def put_record(self, obj: JsonObject) -> None:
        # Server-side apply: create or update in one call, no resourceVersion to track.
        await self.rest.request(
            "PATCH",
            f"{_RECORDS_PATH}/{obj['metadata']['name']}",
            query=[("fieldManager", self.field_manager), ("force", "true")],
            body=obj,
            content_type=APPLY_PATCH,
        )

    async def review(self, spec: JsonObject) -> bool:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        answer = await self.rest.request("POST", _REVIEWS_PATH, body=body)
        return bool((answer.get("status") or {}).get("allowed"))

    async def delete_record(self, name: str) -> None:
        try:
            await self.rest.request("DELETE", f"{_RECORDS_PATH}/{name}")
        except NotFoundError:
            return


class KubeApplier(BundleApplier):
    """`applier.Applier` for a real cluster.

    `kubeconfig=None` uses the in-cluster service account. The kubeconfig file is read here
    (local I/O, once); every API call later runs in a worker thread.
    """

    backend: KubeBackend

    def __init__(
        self,
        consumer: str,
        kubeconfig: str | Path | None = None,
        *,
        context: str | None = None,
        settings: ApplierSettings | None = None,
        retry: RetrySettings | None = None,
    ) -> None:
        settings = settings or ApplierSettings()
        rest = KubeRest.from_kubeconfig(kubeconfig, context=context, retry=retry)
        super().__init__(KubeBackend(rest, field_manager=settings.field_manager), consumer, settings)
