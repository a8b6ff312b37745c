"""The desired state of one pull ApplicationSet: a Maestro work and a hub mirror per (cluster, Application).

Called by the propagation kopf handler after ``generators.generate``: ``plan_application_set``
renders every parameter set, resolves its destination against the inventory and builds

- the **worker Application** (namespace ``argocd`` on the managed cluster, destination
  ``https://kubernetes.default.svc`` i.e. the cluster itself), wrapped in a ManifestBundle with
  server-side apply and status feedback rules;
- the **hub mirror** Application (same name, in the ApplicationSet's namespace, owned by it,
  ``argocd.argoproj.io/skip-reconcile: "true"``) that users ``kubectl get`` and that the status
  controller writes status into.

``controllers.propagation.diff`` then compares the plan with the works Maestro already holds.
Problems with one target are ``TargetError`` entries, never an exception that stops the others.

Naming: an Application keeps the name its template gives it, on the hub and on the worker, as with
Argo CD's own ApplicationSet controller (templates already include ``{{name}}``); two parameter
sets rendering the same name are an error for the later one. A work is named
``<application>-<hash>`` where the hash covers (ApplicationSet, cluster, Application), so one
ApplicationSet never touches another's works; its id is upstream Maestro's UUIDv5 of that name.

Deletion: works use ``propagationPolicy: Foreground``, so deleting a work deletes the worker
Application. ``syncPolicy.preserveResourcesOnDeletion: true`` keeps the *resources*: the worker
Application is sent without Argo CD's ``resources-finalizer``, so its deletion does not cascade.
(``Orphan`` would instead leave a live, unowned Application on the cluster that keeps syncing and
self-healing - not what Argo CD's "preserve" means.) Without it, the finalizer is added when the
template has none, exactly as Argo CD does.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from controllers import contract
from controllers.propagation import errors, generators, inventory, templating

PlanError = errors.PlanError

APPLICATION_API_VERSION = "argoproj.io/v1alpha1"
APPSET_KIND = "ApplicationSet"
APPLICATION_POLICIES = ("sync", "create-only", "create-update", "create-delete")

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_FINALIZER_VARIANTS = (
    contract.RESOURCES_FINALIZER,
    f"{contract.RESOURCES_FINALIZER}/foreground",
    f"{contract.RESOURCES_FINALIZER}/background",
)


@dataclasses.dataclass(frozen=True)
class PlanOptions:
    """Deployment-wide settings; the defaults are what the worker compositions install."""

    #: the CloudEvents source of the propagation controller (part of every work id)
    source: str = contract.MAESTRO_SOURCE
    worker_namespace: str = "argocd"
    field_manager: str = "fleetplane"
    in_cluster_server: str = "https://kubernetes.default.svc"


@dataclasses.dataclass(frozen=True)
class TargetKey:
    cluster: str
    application: str


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


class NotRenderedError(LookupError):
    """A plan's summary (``Plan.summary``) was asked for a document it does not keep."""


@dataclasses.dataclass(frozen=True)
class DesiredWork:
    key: TargetKey
    work_name: str
    work_id: str
    spec_hash: str
    #: digest of the hub mirror, kept in its annotation: an unchanged mirror is not written again
    mirror_hash: str
    #: the Application's labels, which RollingSync steps select on
    labels: Mapping[str, str]
    target_revisions: tuple[str, ...]
    #: ``None`` in a summary: what a pass compares is above, the documents are made again to write
    documents: WorkDocuments | None

    @property
    def cluster(self) -> str:
        return self.key.cluster

    @property
    def application(self) -> str:
        return self.key.application

    def _documents(self) -> WorkDocuments:
        if self.documents is None:
            raise NotRenderedError(
                f"{self.cluster}/{self.application}: a plan summary keeps no documents; render the plan again"
            )
        return self.documents

    @property
    def metadata(self) -> dict[str, Any]:
        return self._documents().metadata

    @property
    def bundle(self) -> dict[str, Any]:
        return self._documents().bundle

    @property
    def hub_application(self) -> dict[str, Any]:
        return self._documents().hub_application

    @property
    def worker_application(self) -> dict[str, Any]:
        return self._documents().worker_application

    def hub_mirror(self, status: Mapping[str, Any] | None) -> dict[str, Any]:
        """The hub mirror as written: the planned Application annotated with its hash, carrying
        ``status`` when one is known. New dicts where it differs from the plan, which later passes
        may reuse."""
        planned = self.hub_application
        meta = planned["metadata"]
        mirror = {
            **planned,
            "metadata": {
                **meta,
                "annotations": {**meta["annotations"], contract.ANNOTATION_MIRROR_HASH: self.mirror_hash},
            },
        }
        if status is not None:
            mirror["status"] = dict(status)
        return mirror


@dataclasses.dataclass(frozen=True)
class TargetError:
    """One target that could not be planned. ``reason`` uses Argo CD's ApplicationSet reasons
    where one fits (``RenderTemplateParamsError``, ``ApplicationValidationError``)."""

    reason: str
    message: str
    cluster: str | None = None
    application: str | None = None
    #: true when the failed target cannot be identified, so no existing work may be deleted
    blocks_deletes: bool = False


@dataclasses.dataclass(frozen=True)
class Plan:
    appset_namespace: str
    appset_name: str
    works: tuple[DesiredWork, ...]
    errors: tuple[TargetError, ...] = ()
    #: ``spec.syncPolicy.applicationsSync``: which of create/update/delete the controller may do
    policy: str = "sync"

    def work(self, cluster: str, application: str) -> DesiredWork | None:
        return next((w for w in self.works if w.key == TargetKey(cluster, application)), None)

    @property
    def rendered(self) -> bool:
        return all(w.documents is not None for w in self.works)

    def summary(self) -> Plan:
        """This plan without its documents, to keep between passes: at 3,000 targets x 50
        ApplicationSets the rendered documents held by a cache were 2.5 GB, and a pass that has
        nothing to write needs only the hashes."""
        return dataclasses.replace(
            self, works=tuple(dataclasses.replace(w, documents=None) for w in self.works)
        )


# --- opt-in and identities ---------------------------------------------------------------------------------


def is_pull_enabled(appset: Mapping[str, Any]) -> bool:
    """Whether fleetplane (not Argo CD) serves this ApplicationSet."""
    labels = (appset.get("metadata") or {}).get("labels") or {}
    return labels.get(contract.PULL_LABEL) == contract.PULL_LABEL_VALUE


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


def label_value(text: str) -> str:
    """``text`` if it is a valid label value, else a truncated form with a hash (full value goes in
    an annotation)."""
    if len(text) <= 63 and _LABEL_VALUE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", text)[:52].strip("-_.")
    return f"{head}-{digest}" if head else digest


# --- planning ----------------------------------------------------------------------------------------------


def plan_application_set(
    appset: Mapping[str, Any],
    params: Sequence[Mapping[str, Any]],
    clusters: inventory.Inventory,
    *,
    unmatched: Sequence[generators.Unmatched] = (),
    options: PlanOptions = PlanOptions(),
) -> Plan:
    """The desired works of ``appset`` for the generated ``params``.

    Raises ``PlanError`` only for problems of the ApplicationSet as a whole (not opted in, no
    uid, a bad ``applicationsSync``, ``templatePatch``); everything per target is a ``TargetError``.
    """
    metadata = appset.get("metadata") or {}
    namespace, name, uid = metadata.get("namespace"), metadata.get("name"), metadata.get("uid")
    if not is_pull_enabled(appset):
        raise PlanError(
            f'ApplicationSet {namespace}/{name} does not carry label {contract.PULL_LABEL}: "true"'
        )
    if not namespace or not name or not uid:
        raise PlanError(
            "ApplicationSet metadata needs namespace, name and uid (read it back from the API server)"
        )
    spec = appset.get("spec") or {}
    policy = ((spec.get("syncPolicy") or {}).get("applicationsSync")) or "sync"
    if policy not in APPLICATION_POLICIES:
        raise PlanError(
            f"spec.syncPolicy.applicationsSync: {policy!r} is not one of {', '.join(APPLICATION_POLICIES)}"
        )
    if spec.get("templatePatch"):
        raise PlanError(
            "spec.templatePatch is not supported by fleetplane; move the patched fields into spec.template"
        )
    try:
        templating.Mode.from_spec(spec)  # a bad option would otherwise fail every target alike
    except errors.TemplateError as exc:
        raise PlanError(str(exc)) from None
    preserve = bool((spec.get("syncPolicy") or {}).get("preserveResourcesOnDeletion"))

    builder = _Builder(str(namespace), str(name), str(uid), clusters, preserve, options)
    errs: list[TargetError] = [
        TargetError("UnknownCluster", f"{u.reason} ({u.path})", cluster=u.cluster or None) for u in unmatched
    ]
    works: list[DesiredWork] = []
    seen: dict[str, DesiredWork] = {}
    for i, p in enumerate(params):
        outcome = builder.build(spec, p, i)
        if isinstance(outcome, TargetError):
            errs.append(outcome)
            continue
        first = seen.get(outcome.application)
        if first is not None:
            errs.append(
                TargetError(
                    "DuplicateApplication",
                    f"parameter set {i} renders Application {outcome.application!r} for cluster "
                    f"{outcome.cluster!r}, a name already rendered for cluster {first.cluster!r}; "
                    "make template.metadata.name unique per target, e.g. '{{name}}-<app>'",
                    cluster=outcome.cluster,
                    application=outcome.application,
                )
            )
            continue
        seen[outcome.application] = outcome
        works.append(outcome)
    return Plan(str(namespace), str(name), tuple(works), tuple(errs), policy)


class _Builder:
    """Turns one parameter set into a ``DesiredWork`` (or says why not)."""

    def __init__(
        self,
        namespace: str,
        name: str,
        uid: str,
        clusters: inventory.Inventory,
        preserve: bool,
        options: PlanOptions,
    ) -> None:
        self.namespace, self.name, self.uid = namespace, name, uid
        self.clusters = clusters
        self.preserve = preserve
        self.options = options

    def build(
        self, spec: Mapping[str, Any], params: Mapping[str, Any], index: int
    ) -> DesiredWork | TargetError:
        try:
            app = templating.render_application(spec, params)
        except errors.TemplateError as exc:
            return TargetError(
                "RenderTemplateParamsError",
                f"parameter set {index} ({_describe(params)}): {exc}",
                blocks_deletes=True,
            )
        app_meta = app.get("metadata") or {}
        app_name = app_meta.get("name")
        problem = self._validate(app, app_name)
        if problem:
            return TargetError(
                "ApplicationValidationError",
                f"parameter set {index} ({_describe(params)}): {problem}",
                application=app_name if isinstance(app_name, str) else None,
                # which cluster it was meant for is unknown, so its work cannot be told apart
                blocks_deletes=True,
            )
        app_name = str(app_name)
        destination = app["spec"]["destination"]
        cluster = self._resolve(destination)
        if isinstance(cluster, str):
            target = destination.get("name") or destination.get("server")
            return TargetError(
                "UnknownCluster", f"Application {app_name!r}: {cluster}", cluster=target, application=app_name
            )
        return self._work(app, app_name, cluster)

    def _validate(self, app: Mapping[str, Any], app_name: Any) -> str | None:
        meta = app.get("metadata") or {}
        spec = app.get("spec")
        if not isinstance(app_name, str) or not app_name:
            return "template.metadata.name is empty; give it a name such as '{{name}}-guestbook'"
        if len(app_name) > 253 or not _DNS_SUBDOMAIN.fullmatch(app_name):
            return (
                f"Application name {app_name!r} is not a valid Kubernetes name (lower-case letters, digits, "
                "'-' and '.', at most 253); use the normalize function or nameNormalized"
            )
        if meta.get("namespace") not in (None, "", self.namespace):
            return (
                f"template.metadata.namespace {meta['namespace']!r}: hub Applications live in the "
                f"ApplicationSet's namespace ({self.namespace}) and worker ones in "
                f"{self.options.worker_namespace}; remove the field"
            )
        if not isinstance(spec, Mapping):
            return "template.spec is missing"
        if not spec.get("project"):
            return "template.spec.project is required (e.g. default)"
        if not spec.get("source") and not spec.get("sources"):
            return "template.spec needs source or sources"
        destination = spec.get("destination")
        if not isinstance(destination, Mapping) or not (destination.get("name") or destination.get("server")):
            return "template.spec.destination needs name or server (the managed cluster)"
        if destination.get("name") and destination.get("server"):
            return "template.spec.destination sets both name and server; keep one"
        return None

    def _resolve(self, destination: Mapping[str, Any]) -> inventory.Cluster | str:
        """The registered cluster ``destination`` names, or why there is none."""
        name, server = destination.get("name"), destination.get("server")
        hub_hint = ""
        if name == "in-cluster" or server == self.options.in_cluster_server:
            hub_hint = " ('in-cluster' is the hub itself, which the pull model does not deploy to)"
        if name:
            cluster = self.clusters.by_name(str(name))
            if cluster is not None:
                return cluster
            return (
                f"destination cluster {name!r} is not registered on the hub{hub_hint}; "
                f"{_known(self.clusters)}"
            )
        found = self.clusters.by_server(str(server))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(c.name for c in found)
            return (
                f"destination server {server!r} is registered by several clusters ({names}); "
                "use destination.name"
            )
        return (
            f"destination server {server!r} is not registered on the hub{hub_hint}; {_known(self.clusters)}"
        )

    def _work(self, app: dict[str, Any], app_name: str, cluster: inventory.Cluster) -> DesiredWork:
        meta = app.get("metadata") or {}
        template_labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        template_annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        appset_ref = f"{self.namespace}/{self.name}"
        hub_ref = f"{self.namespace}/{app_name}"
        name = work_name(self.namespace, self.name, cluster.name, app_name)
        owner_labels = {
            contract.LABEL_APPSET_NAMESPACE: label_value(self.namespace),
            contract.LABEL_APPSET_NAME: label_value(self.name),
        }

        worker_spec = copy.deepcopy(app["spec"])
        worker_destination = {"server": self.options.in_cluster_server}
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
            "namespace": self.options.worker_namespace,
            "labels": {**template_labels, **owner_labels},
            "annotations": worker_annotations,
        }
        finalizers = self._worker_finalizers(list(meta.get("finalizers") or []))
        if finalizers:
            worker_meta["finalizers"] = finalizers
        worker = {
            "apiVersion": APPLICATION_API_VERSION,
            "kind": "Application",
            "metadata": worker_meta,
            "spec": worker_spec,
        }

        bundle = self._bundle(worker)
        digest = spec_hash(bundle)
        hub = {
            "apiVersion": APPLICATION_API_VERSION,
            "kind": "Application",
            "metadata": {
                "name": app_name,
                "namespace": self.namespace,
                "labels": {
                    **template_labels,
                    **owner_labels,
                    contract.LABEL_CLUSTER: label_value(cluster.name),
                },
                "annotations": {
                    **template_annotations,
                    contract.ARGOCD_SKIP_RECONCILE: "true",
                    contract.ANNOTATION_APPSET: appset_ref,
                    contract.ANNOTATION_CLUSTER: cluster.name,
                    contract.ANNOTATION_WORK_NAME: name,
                },
                "ownerReferences": [
                    {
                        "apiVersion": APPLICATION_API_VERSION,
                        "kind": APPSET_KIND,
                        "name": self.name,
                        "uid": self.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            # the spec as the user wrote it: its destination names the managed cluster
            "spec": copy.deepcopy(app["spec"]),
        }
        work_metadata = {
            "name": name,
            "namespace": cluster.name,
            "labels": {**owner_labels, contract.LABEL_CLUSTER: label_value(cluster.name)},
            "annotations": {
                contract.ANNOTATION_APPSET: appset_ref,
                contract.ANNOTATION_HUB_APPLICATION: hub_ref,
                contract.ANNOTATION_CLUSTER: cluster.name,
                contract.ANNOTATION_SPEC_HASH: digest,
            },
        }
        return DesiredWork(
            key=TargetKey(cluster.name, app_name),
            work_name=name,
            work_id=work_id(self.options.source, cluster.name, name),
            spec_hash=digest,
            mirror_hash=mirror_hash(hub),
            labels=worker_meta["labels"],
            target_revisions=_target_revisions(app["spec"]),
            documents=WorkDocuments(work_metadata, bundle, hub, worker),
        )

    def _worker_finalizers(self, finalizers: list[str]) -> list[str]:
        if self.preserve:
            # "preserve" means deleting the Application must not delete what it deployed
            return [f for f in finalizers if f not in _FINALIZER_VARIANTS]
        return finalizers or [contract.RESOURCES_FINALIZER]

    def _bundle(self, worker: Mapping[str, Any]) -> dict[str, Any]:
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
                        "serverSideApply": {"fieldManager": self.options.field_manager, "force": True},
                    },
                }
            ],
        }


def _target_revisions(spec: Mapping[str, Any]) -> tuple[str, ...]:
    sources = spec.get("sources") or [spec.get("source") or {}]
    return tuple(str(s.get("targetRevision") or "HEAD") for s in sources if isinstance(s, Mapping))


def _describe(params: Mapping[str, Any]) -> str:
    for key in ("name", "cluster", "clusterName", "server"):
        if isinstance(params.get(key), str):
            return f"{key}={params[key]}"
    return "no name parameter"


def _known(clusters: inventory.Inventory) -> str:
    names = clusters.names()
    if not names:
        return "no clusters are registered (no cluster Secrets)"
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"registered clusters: {shown}"
