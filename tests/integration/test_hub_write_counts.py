"""The fleet benchmark counts the hub's writes as the real API server reports them: one write of
each kind, made with kubectl on an Argo CD AppProject (a kind nothing else writes here), moves the
count of exactly that operation by one in the API server's own /metrics."""

from __future__ import annotations

import json
import uuid

import pytest

from benchmarks.fleet.hub_cluster import write_counts
from localinfra import kube, kubectl

pytestmark = pytest.mark.integration


def _counts(hub: kube.Cluster) -> dict[str, int]:
    return write_counts(kubectl.run(hub.kubeconfig, "get", "--raw", "/metrics"), "appprojects")


def test_each_write_is_counted_under_its_operation(hub: kube.Cluster) -> None:
    namespace, name = "default", f"counted-{uuid.uuid4().hex[:6]}"
    project = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"description": "first"},
    }
    ref = ("appproject", name, "-n", namespace)
    writes = {
        "create": lambda: kubectl.run(hub.kubeconfig, "create", "-f", "-", stdin=json.dumps(project)),
        "update": lambda: kubectl.run(
            hub.kubeconfig, "replace", "-f", "-",
            stdin=json.dumps({**project, "spec": {"description": "second"}}),
        ),
        "patch": lambda: kubectl.run(
            hub.kubeconfig, "patch", *ref, "--type", "merge", "-p", '{"spec":{"description":"third"}}'
        ),
        "apply": lambda: kubectl.run(
            hub.kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-",
            stdin=json.dumps({**project, "spec": {"description": "fourth"}}),
        ),
        "delete": lambda: kubectl.run(hub.kubeconfig, "delete", *ref),
    }  # fmt: skip
    for operation, write in writes.items():
        before = _counts(hub)
        write()
        after = _counts(hub)
        moved = {op: after.get(op, 0) - before.get(op, 0) for op in after.keys() | before.keys()}
        assert {op: n for op, n in moved.items() if n} == {operation: 1}, operation
