"""The hub controllers' workload in the chaos suite and ``bench chaos``, and its exact outcome.

Pure logic. A run's inventory Secret per cluster and ApplicationSets (a clusters generator picking
every cluster of the run) make an Application per (ApplicationSet, cluster). Struck by the kill of
the controllers' leader: every third ApplicationSet's template is changed before the kill, every
fifth is deleted while nobody leads. `pending` compares what the hub, Maestro and the clusters hold
with that (`Plan.intended`): one work per (ApplicationSet, cluster) left, every Application once on
its cluster at its last template and once on the hub with the status the cluster's has, the
deleted ApplicationSets gone with their Applications and works, the outbox empty.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from benchmarks.fleet import workload
from controllers import contract

#: the hub's inventory and ApplicationSets, and the clusters' Applications (the controllers'
#: default): Argo CD's namespace
NAMESPACE = "argocd"
APPSETS = f"/apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}/applicationsets"
APPLICATIONS = f"/apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}/applications"
#: the label of a run's inventory Secrets and Applications: the run's id
RUN_LABEL = "chaos-run"
#: what the Applications would sync (nothing fetches it)
REPO = "https://git.invalid/chaos/apps.git"
PATHS = ("apps", "apps-v2")
UNKNOWN = "Unknown"


def changed(i: int) -> bool:
    """Whether the ``i``-th ApplicationSet's template is changed before the kill."""
    return i % 3 == 0 and not deleted(i)


def deleted(i: int) -> bool:
    """Whether the ``i``-th ApplicationSet is deleted while nobody leads."""
    return i % 5 == 4


def count_for(works: int, clusters: int) -> int:
    """ApplicationSets so that, with one Application per cluster each, there are about ``works``."""
    return max(1, round(works / clusters))


def inventory_secret(cluster: str, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """An Argo CD cluster Secret ``name`` of the pull model for ``cluster`` (its name and a server
    nothing connects to, no credentials), with ``labels`` for the generators to select."""
    return workload.inventory_secret(cluster, name, labels, f"https://{cluster}.invalid:6443")


def run_secret(cluster: str, run: str) -> dict[str, Any]:
    """``cluster``'s inventory Secret in the run ``run``."""
    return inventory_secret(cluster, f"chaos-{run}-{cluster}", {RUN_LABEL: run})


def application_set(name: str, run: str, path: str) -> dict[str, Any]:
    """A pulled ApplicationSet making an Application on every cluster of the run."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {contract.PULL_LABEL: contract.PULL_LABEL_VALUE},
        },
        "spec": {
            "generators": [{"clusters": {"selector": {"matchLabels": {RUN_LABEL: run}}}}],
            # Else each Application carries Argo CD's resources finalizer, which only a worker's
            # running Argo CD takes off; these deploy nothing, so there is nothing to cascade.
            "syncPolicy": {"preserveResourcesOnDeletion": True},
            "template": {
                "metadata": {"name": f"{{{{name}}}}-{name}", "labels": {RUN_LABEL: run}},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": REPO, "targetRevision": "HEAD", "path": path},
                    "destination": {"name": "{{name}}", "namespace": "default"},
                },
            },
        },
    }


#: the template change made to every third ApplicationSet (a JSON merge patch)
CHANGE = {"spec": {"template": {"spec": {"source": {"path": PATHS[1]}}}}}


def synced_and_healthy(app: Mapping[str, Any] | None) -> tuple[str, str]:
    """An Application's sync and health status, as the hub shows a cluster's (Unknown when none)."""
    status = (app or {}).get("status") or {}
    return (
        ((status.get("sync") or {}).get("status")) or UNKNOWN,
        ((status.get("health") or {}).get("status")) or UNKNOWN,
    )


def by_name(items: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Applications by name (a name held twice is a duplicate)."""
    named: dict[str, list[Mapping[str, Any]]] = {}
    for app in items:
        named.setdefault(app["metadata"]["name"], []).append(app)
    return named


def applications_in(
    held: Mapping[tuple[str, str, str, str], Mapping[str, Any]], run: str
) -> dict[str, list[Mapping[str, Any]]]:
    """The run's Applications among a cluster's objects (by group, resource, namespace and name),
    by name."""
    return by_name(
        obj
        for (group, resource, namespace, _), obj in held.items()
        if (group, resource, namespace) == ("argoproj.io", "applications", NAMESPACE)
        and (obj["metadata"].get("labels") or {}).get(RUN_LABEL) == run
    )


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run's ApplicationSets (``names``, in order) on its ``clusters``."""

    run: str
    names: tuple[str, ...]
    clusters: tuple[str, ...]

    @classmethod
    def of(cls, run: str, count: int, clusters: Sequence[str]) -> Plan:
        return cls(run, tuple(f"c{run}-{i:04d}" for i in range(count)), tuple(clusters))

    @property
    def prefix(self) -> str:
        """What every ApplicationSet name of the run starts with."""
        return f"c{self.run}-"

    @property
    def applications(self) -> int:
        """Applications once every ApplicationSet is served, before any is deleted."""
        return len(self.names) * len(self.clusters)

    def path(self, i: int) -> str:
        return PATHS[1] if changed(i) else PATHS[0]

    def intended(self) -> dict[str, dict[str, str]]:
        """Each cluster's Applications by name, with the source path of their last template."""
        return {
            cluster: {f"{cluster}-{n}": self.path(i) for i, n in enumerate(self.names) if not deleted(i)}
            for cluster in self.clusters
        }


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What the hub, Maestro and the clusters hold of a run."""

    #: Maestro's works by (ApplicationSet, cluster)
    works: Mapping[tuple[str, str], int]
    #: the hub's ApplicationSets, by name
    appsets: set[str]
    #: the hub's Applications (mirrors) of the run, by name
    hub: Mapping[str, Sequence[Mapping[str, Any]]]
    #: each cluster's Applications of the run, by name
    clusters: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]
    #: rows waiting in the outbox
    outbox: int


def pending(plan: Plan, snapshot: Snapshot) -> list[str]:
    """What keeps the outcome from being exact (empty: it is)."""
    intended = plan.intended()
    works = Counter(snapshot.works)
    left: list[str] = []
    wanted = {(n, c) for c, apps in intended.items() for n in plan.names if f"{c}-{n}" in apps}
    left += [f"work of {k}: {works[k]}" for k in sorted(wanted) if works[k] != 1]
    left += [f"work of deleted {k}: {v}" for k, v in sorted(works.items()) if k not in wanted and v]
    left += [
        f"ApplicationSet {n} not deleted"
        for i, n in enumerate(plan.names)
        if deleted(i) and n in snapshot.appsets
    ]
    every = {name: path for apps in intended.values() for name, path in apps.items()}
    left += [f"hub Application {n} left" for n in sorted(set(snapshot.hub) - set(every))]
    for cluster, apps in intended.items():
        held = snapshot.clusters.get(cluster, {})
        left += [f"{cluster}: Application {n} left" for n in sorted(set(held) - set(apps))]
        for name, path in apps.items():
            here, there = held.get(name, []), snapshot.hub.get(name, [])
            if len(here) != 1 or len(there) != 1:
                left.append(f"{name}: {len(here)} on {cluster}, {len(there)} on the hub")
                continue
            paths = (here[0]["spec"]["source"]["path"], there[0]["spec"]["source"]["path"])
            if paths != (path, path):
                left.append(f"{name}: source path {paths} (cluster, hub), not {path}")
            elif synced_and_healthy(here[0]) != synced_and_healthy(there[0]):
                left.append(
                    f"{name}: hub status {synced_and_healthy(there[0])}, "
                    f"{cluster}'s {synced_and_healthy(here[0])}"
                )
    if snapshot.outbox:
        left.append(f"outbox: {snapshot.outbox} rows")
    return left


def sent_twice(sent: Mapping[Any, Sequence[int]]) -> dict[Any, list[int]]:
    """The works a status sequence id was sent more than once for, with the ids sent."""
    return {work: list(ids) for work, ids in sent.items() if len(ids) != len(set(ids))}
