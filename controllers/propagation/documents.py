"""The documents written for one target of a plan: the worker Application wrapped in its
ManifestBundle, the work's metadata, and the hub mirror Application.

Called by ``plan.plan_application_set`` for each target it resolved to a registered cluster.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from controllers import contract
from controllers.propagation import identities, ownership, progressive_sync

APPLICATION_API_VERSION = "argoproj.io/v1alpha1"
APPSET_KIND = "ApplicationSet"


@dataclasses.dataclass(frozen=True, slots=True)
class WorkDocuments:
    """What is written for one target: the work and the hub mirror."""

    #: the work's ObjectMeta as sent in the CloudEvent ``metadata`` extension
    metadata: dict[str, Any]
    #: the ManifestBundle spec (``manifests``, ``deleteOption``, ``manifestConfigs``)
    bundle: dict[str, Any]
    hub_application: dict[str, Any]
    #: the Application sent to the worker (also ``bundle["manifests"][0]``)
    worker_application: dict[str, Any]
    #: under RollingSync, the operation that syncs it when its step comes (``with_sync``)
    sync_operation: dict[str, Any] | None = None

    @property
    def spec_hash(self) -> str:
        digest: str = self.metadata["annotations"][contract.ANNOTATION_SPEC_HASH]
        return digest

    def with_sync(self, token: str, revisions: Sequence[str] = ()) -> WorkDocuments:
        """These documents with the worker Application carrying its sync operation (RollingSync),
        pinned to ``revisions`` when known: the work's spec hash covers it and
        ``contract.ANNOTATION_ROLLOUT_SYNC`` names it."""
        if self.sync_operation is None:
            raise ValueError("only a RollingSync target's documents carry a sync operation")
        operation = progressive_sync.pinned(
            self.sync_operation, revisions, multiple_sources="sources" in self.worker_application["spec"]
        )
        worker = {**self.worker_application, "operation": operation}
        annotations = self.metadata["annotations"]
        digest = identities.with_sync(annotations[contract.ANNOTATION_SPEC_HASH], token)
        metadata = {
            **self.metadata,
            "annotations": {
                **annotations,
                contract.ANNOTATION_SPEC_HASH: digest,
                contract.ANNOTATION_ROLLOUT_SYNC: token,
            },
        }
        bundle = {**self.bundle, "manifests": [worker]}
        return dataclasses.replace(self, metadata=metadata, bundle=bundle, worker_application=worker)


@dataclasses.dataclass(frozen=True)
class DocumentSettings:
    """Where and how the documents of an ApplicationSet's targets are written."""

    appset_namespace: str
    appset_name: str
    appset_uid: str
    #: ``syncPolicy.preserveResourcesOnDeletion``
    preserve: bool
    worker_namespace: str
    in_cluster_server: str
    field_manager: str
    #: ``strategy.type: RollingSync`` with steps: automated sync off, syncs asked by the rollout
    rolling_sync: bool = False


def target_documents(
    app: dict[str, Any],
    app_name: str,
    cluster: str,
    work_name: str,
    settings: DocumentSettings,
) -> WorkDocuments:
    """The documents of Application ``app`` (rendered, checked) deployed to ``cluster``."""
    meta = app.get("metadata") or {}
    template_labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    template_annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    appset_ref = f"{settings.appset_namespace}/{settings.appset_name}"
    hub_ref = f"{settings.appset_namespace}/{app_name}"
    owner_labels = ownership.owner_labels(settings.appset_namespace, settings.appset_name)

    user_spec = app["spec"]
    sync_operation = None
    if settings.rolling_sync:
        # as Argo CD's ApplicationSet controller: every Application is written with its automated
        # sync off, and synced by an operation once its step comes, pruning if it would have
        user_spec = copy.deepcopy(user_spec)
        prune = progressive_sync.automated_prune(user_spec)
        progressive_sync.disable_automated_sync(user_spec)
        sync_operation = progressive_sync.sync_operation(user_spec, prune)
    worker_spec = copy.deepcopy(user_spec)
    worker_destination = {"server": settings.in_cluster_server}
    if worker_spec["destination"].get("namespace"):
        worker_destination["namespace"] = worker_spec["destination"]["namespace"]
    worker_spec["destination"] = worker_destination
    worker_annotations = {
        k: v for k, v in template_annotations.items() if k != contract.ARGOCD_SKIP_RECONCILE
    }
    worker_annotations.update(
        {contract.ANNOTATION_APPSET: appset_ref, contract.ANNOTATION_HUB_APPLICATION: hub_ref}
    )
    worker_meta: dict[str, Any] = {
        "name": app_name,
        "namespace": settings.worker_namespace,
        "labels": {**template_labels, **owner_labels},
        "annotations": worker_annotations,
    }
    finalizers = list(meta.get("finalizers") or [])
    if finalizers:
        worker_meta["finalizers"] = finalizers
    worker = {
        "apiVersion": APPLICATION_API_VERSION,
        "kind": "Application",
        "metadata": worker_meta,
        "spec": worker_spec,
    }

    bundle = _bundle(worker, settings.field_manager)
    digest = identities.spec_hash(bundle)
    hub = {
        "apiVersion": APPLICATION_API_VERSION,
        "kind": "Application",
        "metadata": {
            "name": app_name,
            "namespace": settings.appset_namespace,
            "labels": {
                **template_labels,
                **owner_labels,
                contract.LABEL_CLUSTER: identities.label_value(cluster),
            },
            "annotations": {
                **template_annotations,
                contract.ARGOCD_SKIP_RECONCILE: "true",
                contract.ANNOTATION_APPSET: appset_ref,
                contract.ANNOTATION_CLUSTER: cluster,
                contract.ANNOTATION_WORK_NAME: work_name,
            },
            "ownerReferences": [
                {
                    "apiVersion": APPLICATION_API_VERSION,
                    "kind": APPSET_KIND,
                    "name": settings.appset_name,
                    "uid": settings.appset_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        # the spec as the user wrote it: its destination names the managed cluster
        "spec": copy.deepcopy(user_spec),
    }
    work_metadata = {
        "name": work_name,
        "namespace": cluster,
        "labels": {**owner_labels, contract.LABEL_CLUSTER: identities.label_value(cluster)},
        "annotations": {
            contract.ANNOTATION_APPSET: appset_ref,
            contract.ANNOTATION_HUB_APPLICATION: hub_ref,
            contract.ANNOTATION_CLUSTER: cluster,
            contract.ANNOTATION_SPEC_HASH: digest,
        },
    }
    return WorkDocuments(work_metadata, bundle, hub, worker, sync_operation)


def _bundle(worker: Mapping[str, Any], field_manager: str) -> dict[str, Any]:
    return {
        "manifests": [worker],
        "deleteOption": {"propagationPolicy": "Foreground"},
        "manifestConfigs": [
            {
                "resourceIdentifier": {
                    "group": "argoproj.io",
                    "resource": "applications",
                    "name": worker["metadata"]["name"],
                    "namespace": worker["metadata"]["namespace"],
                },
                "feedbackRules": [
                    {
                        "type": "JSONPaths",
                        "jsonPaths": [{"name": n, "path": p} for n, p in contract.FEEDBACK_PATHS],
                    }
                ],
                "updateStrategy": {
                    "type": "ServerSideApply",
                    "serverSideApply": {"fieldManager": field_manager, "force": True},
                },
            }
        ],
    }
