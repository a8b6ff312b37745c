"""What the demo looks at: the hub's Applications, the ApplicationSet, ``configmap1`` on each worker.

``journey`` calls ``FleetView.snapshot`` once a second while it waits for a case and shows the
result with ``render`` (the live table). Reads use the Kubernetes Python client with each
cluster's kubeconfig; a failed read is an observation (``Snapshot.error``), not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from rich.console import Group
from rich.table import Table
from rich.text import Text

from controllers import contract
from localinfra import kube

ARGO = ("argoproj.io", "v1alpha1")


@dataclass(frozen=True)
class AppRow:
    """One hub Application as the table shows it."""

    name: str
    cluster: str
    sync: str
    health: str
    message: str
    appset: str
    #: a condition whose type ends in ``Error`` (e.g. the worker's ``ComparisonError``) is shown
    error: bool = False


@dataclass(frozen=True)
class Snapshot:
    """The hub's Applications, whether the ApplicationSet exists, ``configmap1`` per worker."""

    apps: list[AppRow] = field(default_factory=list)
    appset: bool = False
    configmaps: dict[str, bool] = field(default_factory=dict)
    error: str = ""

    def app(self, name: str) -> AppRow | None:
        return next((a for a in self.apps if a.name == name), None)

    def describe(self) -> str:
        """One line per fact, for an error message naming what was last seen."""
        if self.error:
            return f"reading the clusters failed: {self.error}"
        lines = [f"ApplicationSet present: {self.appset}"]
        lines += [f"configmap1 on {w}: {'present' if ok else 'absent'}" for w, ok in self.configmaps.items()]
        lines += [f"hub Application {a.name}: sync={a.sync} health={a.health} {a.message}" for a in self.apps]
        if not self.apps:
            lines.append("no Application on the hub")
        return "\n".join(lines)


def message_of(status: Mapping[str, Any]) -> tuple[str, bool]:
    """The first error condition (``Type: message``), else the first condition, else the last
    operation's message; and whether it is an error."""
    conditions = status.get("conditions") or []
    errors = [c for c in conditions if str(c.get("type", "")).endswith("Error")]
    for condition in errors or conditions:
        return f"{condition.get('type', '')}: {condition.get('message', '')}".strip(), bool(errors)
    return str((status.get("operationState") or {}).get("message") or ""), False


def app_row(app: Mapping[str, Any]) -> AppRow:
    meta = app.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = app.get("status") or {}
    destination = (app.get("spec") or {}).get("destination") or {}
    message, error = message_of(status)
    return AppRow(
        name=str(meta.get("name", "")),
        cluster=str(
            labels.get(contract.LABEL_CLUSTER) or destination.get("name") or destination.get("server")
        ),
        sync=str((status.get("sync") or {}).get("status") or "-"),
        health=str((status.get("health") or {}).get("status") or "-"),
        message=message,
        appset=str(labels.get(contract.LABEL_APPSET_NAME, "")),
        error=error,
    )


class FleetView:
    """Read-only views of the hub and the workers for one ApplicationSet in ``namespace``."""

    def __init__(
        self, hub: kube.Cluster, workers: Sequence[kube.Cluster], appset: str, namespace: str
    ) -> None:
        self.appset, self.namespace = appset, namespace
        self.hub = kube_config.new_client_from_config(config_file=str(hub.kubeconfig))
        self.workers = {
            w.name: kube_config.new_client_from_config(config_file=str(w.kubeconfig)) for w in workers
        }

    def snapshot(self) -> Snapshot:
        try:
            return self._read()
        except Exception as exc:  # a transient read failure is just another observation
            return Snapshot(error=f"{type(exc).__name__}: {str(exc)[:300]}")

    def _read(self) -> Snapshot:
        custom = kube_client.CustomObjectsApi(self.hub)
        apps: Any = custom.list_cluster_custom_object(*ARGO, "applications", _request_timeout=10)
        rows = sorted((app_row(a) for a in apps.get("items") or []), key=lambda r: r.name)
        try:
            custom.get_namespaced_custom_object(
                *ARGO, self.namespace, "applicationsets", self.appset, _request_timeout=10
            )
            appset = True
        except ApiException as exc:
            if exc.status != 404:
                raise
            appset = False
        configmaps = {name: _exists_configmap(api) for name, api in self.workers.items()}
        return Snapshot(rows, appset, configmaps)

    def close(self) -> None:
        for api in (self.hub, *self.workers.values()):
            api.close()


def _exists_configmap(
    api: kube_client.ApiClient, name: str = "configmap1", namespace: str = "default"
) -> bool:
    try:
        kube_client.CoreV1Api(api).read_namespaced_config_map(name, namespace, _request_timeout=10)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def render(snapshot: Snapshot) -> Group:
    """The hub's Applications (name, cluster, sync, health, message), then ``configmap1`` per worker."""
    table = Table(title="Applications on the hub", title_justify="left")
    table.add_column("application", no_wrap=True)
    table.add_column("cluster", no_wrap=True)
    table.add_column("sync", no_wrap=True)
    table.add_column("health", no_wrap=True)
    table.add_column("message", overflow="fold", max_width=90)
    for row in snapshot.apps:
        table.add_row(row.name, row.cluster, _coloured(row.sync), _coloured(row.health), row.message)
    if not snapshot.apps:
        table.add_row("[dim](none)[/dim]", "", "", "", "")
    if snapshot.error:
        return Group(table, Text(f"reading the clusters failed: {snapshot.error}", style="yellow"))
    present = {True: "[green]present[/green]", False: "absent"}
    workers = "   ".join(f"{w}: {present[ok]}" for w, ok in snapshot.configmaps.items())
    return Group(table, Text.from_markup(f"configmap1 on the workers: {workers}"))


_COLOURS = {"Synced": "green", "Healthy": "green", "Unknown": "yellow", "OutOfSync": "yellow"}


def _coloured(value: str) -> str:
    colour = _COLOURS.get(value, "red" if value in ("Degraded", "Missing") else "")
    return f"[{colour}]{value}[/{colour}]" if colour else value
