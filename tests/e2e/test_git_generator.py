"""The git generator end to end, on real components (see ``pull_fleet``): Argo CD on both workers,
Maestro, the hub controllers reading a local git repository.

Case: an ApplicationSet whose matrix crosses the repository's ``teams/*`` directories with the
clusters labelled for it deploys one Application per (cluster, directory), Synced and Healthy on
the worker and on the hub; a commit that adds a directory adds its Application on every selected
cluster, with no change to the ApplicationSet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controllers import contract
from localinfra import gitrepo
from tests.e2e.conftest import INVENTORY_NAMESPACE, PullFleet
from tests.e2e.test_lifecycle import (
    ARGOCD,
    Kube,
    app_path,
    appset_path,
    configmap_path,
    sync_health,
    works_of,
)

pytestmark = pytest.mark.e2e

NAME = "git-teams"


def git_application_set(repo: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": NAME,
            "namespace": INVENTORY_NAMESPACE,
            "labels": {contract.PULL_LABEL: contract.PULL_LABEL_VALUE},
        },
        "spec": {
            "goTemplate": True,
            "generators": [
                {
                    "matrix": {
                        "generators": [
                            {
                                "git": {
                                    "repoURL": repo,
                                    "revision": "HEAD",
                                    "directories": [{"path": "teams/*"}],
                                }
                            },
                            {"clusters": {"selector": {"matchLabels": {"e2e": "git"}}}},
                        ]
                    }
                }
            ],
            "template": {
                "metadata": {"name": "{{ .name }}-{{ .path.basename }}"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo, "targetRevision": "HEAD", "path": "{{ .path.path }}"},
                    "destination": {"name": "{{ .name }}", "namespace": "git-{{ .path.basename }}"},
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["CreateNamespace=true"],
                    },
                },
            },
        },
    }


async def test_a_commit_that_adds_a_directory_adds_its_application_on_every_cluster(
    pull_fleet: PullFleet, clients: dict[str, Kube], tmp_path: Path
) -> None:
    fleet = pull_fleet
    hub = clients["hub"]
    workers = clients
    repo = tmp_path / "teams"
    await asyncio.to_thread(gitrepo.commit, repo, {"teams/blue/configmap.yaml": gitrepo.CONFIGMAP1}, "blue")
    for cluster in fleet.workers:
        await fleet.set_cluster_secret(cluster, {"e2e": "git"})

    def deployed(teams: set[str]) -> Callable[[], Any]:
        async def check() -> tuple[bool, Any]:
            seen = {}
            for cluster in fleet.workers:
                for team in teams:
                    app = f"{cluster.name}-{team}"
                    seen[app] = {
                        "worker": sync_health(await workers[cluster.name].get(app_path(app))),
                        "hub": sync_health(await hub.get(app_path(app))),
                        "configmap1": await workers[cluster.name].get(configmap_path(f"git-{team}"))
                        is not None,
                    }
            ok = all(
                s["worker"] == s["hub"] == ("Synced", "Healthy") and s["configmap1"] for s in seen.values()
            )
            return ok, seen

        return check

    await hub.create(
        f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets", git_application_set(gitrepo.url(repo))
    )
    try:
        await fleet.eventually("teams/blue on both workers", deployed({"blue"}))
        await asyncio.to_thread(
            gitrepo.commit, repo, {"teams/green/configmap.yaml": gitrepo.CONFIGMAP1}, "green"
        )
        await fleet.eventually("teams/green added on both workers", deployed({"blue", "green"}))
    finally:
        await hub.delete(appset_path(NAME))
        for cluster in fleet.workers:
            await fleet.set_cluster_secret(cluster, {"e2e": "other"})

    async def gone() -> tuple[bool, Any]:
        records = await works_of(fleet, NAME)
        return not records and await hub.get(appset_path(NAME)) is None, records

    await fleet.eventually("the ApplicationSet and its works gone", gone)
