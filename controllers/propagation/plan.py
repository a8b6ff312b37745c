"""The desired state of one pull ApplicationSet: a Maestro work and a hub mirror per (cluster, Application).

Called by the propagation controller (``controller``) after ``generators.generate``: ``plan_application_set``
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
Application is sent without Argo CD's ``resources-finalizer`` (unless the template sets it
itself), so its deletion does not cascade. (``Orphan`` would instead leave a live, unowned
Application on the cluster that keeps syncing and self-healing - not what Argo CD's "preserve"
means.) Without it, the finalizer is added when the template has none, exactly as Argo CD does
(``templating.render_application``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from controllers import contract
from controllers.propagation import (
    documents,
    errors,
    generators,
    identities,
    inventory,
    rollout,
    targets,
    templating,
)
from controllers.propagation.documents import WorkDocuments

PlanError = errors.PlanError

APPLICATION_POLICIES = ("sync", "create-only", "create-update", "create-delete")
RENDER_ERROR = "RenderTemplateParamsError"


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

    def with_sync(self, token: str | None, revisions: Sequence[str] = ()) -> DesiredWork:
        """This target with its Application carrying the RollingSync operation ``token`` (if any),
        pinned to ``revisions``."""
        if not token:
            return self
        return dataclasses.replace(
            self,
            spec_hash=identities.with_sync(self.spec_hash, token),
            documents=self.documents.with_sync(token, revisions) if self.documents is not None else None,
        )

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


# --- opt-in ---------------------------------------------------------------------------------


def is_pull_enabled(appset: Mapping[str, Any]) -> bool:
    """Whether fleetplane (not Argo CD) serves this ApplicationSet."""
    labels = (appset.get("metadata") or {}).get("labels") or {}
    return labels.get(contract.PULL_LABEL) == contract.PULL_LABEL_VALUE


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
    uid, a bad ``applicationsSync``); everything per target is a ``TargetError``.
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
    try:
        templating.Mode.from_spec(spec)  # a bad option would otherwise fail every target alike
    except errors.TemplateError as exc:
        raise PlanError(str(exc)) from None
    preserve = bool((spec.get("syncPolicy") or {}).get("preserveResourcesOnDeletion"))

    settings = documents.DocumentSettings(
        appset_namespace=str(namespace),
        appset_name=str(name),
        appset_uid=str(uid),
        preserve=preserve,
        worker_namespace=options.worker_namespace,
        in_cluster_server=options.in_cluster_server,
        field_manager=options.field_manager,
        rolling_sync=rollout.is_rolling_sync(spec),
    )
    builder = _Builder(clusters, settings, options.source)
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
    # as in Argo CD, a name rendered twice is deployed for neither target
    doubled = {e.application for e in errs if e.reason == "DuplicateApplication"}
    for work in [w for w in works if w.application in doubled]:
        errs.append(
            TargetError(
                "DuplicateApplication",
                f"Application {work.application!r} for cluster {work.cluster!r} is not deployed: "
                "a later parameter set renders the same name",
                cluster=work.cluster,
                application=work.application,
            )
        )
    works = [w for w in works if w.application not in doubled]
    if any(e.reason == RENDER_ERROR for e in errs):
        # as in Argo CD, a parameter set that cannot be rendered fails the whole generation:
        # nothing is created or changed until it is fixed
        works = []
    return Plan(str(namespace), str(name), tuple(works), tuple(errs), policy)


class _Builder:
    """Turns one parameter set into a ``DesiredWork`` (or says why not)."""

    def __init__(
        self, clusters: inventory.Inventory, settings: documents.DocumentSettings, source: str
    ) -> None:
        self.clusters = clusters
        self.settings = settings
        self.source = source

    def build(
        self, spec: Mapping[str, Any], params: Mapping[str, Any], index: int
    ) -> DesiredWork | TargetError:
        try:
            app = templating.render_application(spec, params)
        except errors.TemplateError as exc:
            return TargetError(
                RENDER_ERROR,
                f"parameter set {index} ({_describe(params)}): {exc}",
                blocks_deletes=True,
            )
        app_meta = app.get("metadata") or {}
        app_name = app_meta.get("name")
        problem = targets.application_problem(
            app, app_name, self.settings.appset_namespace, self.settings.worker_namespace
        )
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
        cluster = targets.resolve_destination(destination, self.clusters, self.settings.in_cluster_server)
        if isinstance(cluster, str):
            target = destination.get("name") or destination.get("server")
            return TargetError(
                "UnknownCluster", f"Application {app_name!r}: {cluster}", cluster=target, application=app_name
            )
        return self._work(app, app_name, cluster)

    def _work(self, app: dict[str, Any], app_name: str, cluster: inventory.Cluster) -> DesiredWork:
        name = identities.work_name(
            self.settings.appset_namespace, self.settings.appset_name, cluster.name, app_name
        )
        docs = documents.target_documents(app, app_name, cluster.name, name, self.settings)
        return DesiredWork(
            key=TargetKey(cluster.name, app_name),
            work_name=name,
            work_id=identities.work_id(self.source, cluster.name, name),
            spec_hash=docs.spec_hash,
            mirror_hash=identities.mirror_hash(docs.hub_application),
            labels=docs.worker_application["metadata"]["labels"],
            target_revisions=_target_revisions(app["spec"]),
            documents=docs,
        )


def _target_revisions(spec: Mapping[str, Any]) -> tuple[str, ...]:
    sources = spec.get("sources") or [spec.get("source") or {}]
    return tuple(str(s.get("targetRevision") or "HEAD") for s in sources if isinstance(s, Mapping))


def _describe(params: Mapping[str, Any]) -> str:
    for key in ("name", "cluster", "clusterName", "server"):
        if isinstance(params.get(key), str):
            return f"{key}={params[key]}"
    return "no name parameter"
