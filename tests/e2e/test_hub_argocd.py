"""The fleet seen through Argo CD on the hub: argocd-server's REST API and the real ``argocd`` CLI
show the mirrors' real status and resource trees, and refuse to act on them (see ``pull_fleet``,
run here with argocd-server on the hub).

One ApplicationSet deploys ``configmap1`` to both workers; once both mirrors are Synced and
Healthy: ``argocd app list``, ``app get`` (its resources and its tree), ``appset get``; the REST
calls the web UI makes (the list, the stream, the resource tree) with a session token, and none
without; Sync and Delete refused with Argo CD's permission error and the mirror kept; a refresh
acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from localinfra import hub_argocd, paths
from tests.e2e.conftest import INVENTORY_NAMESPACE, PullFleet
from tests.e2e.test_lifecycle import ARGOCD, Kube, app_path, application_set, appset_path, sync_health

pytestmark = pytest.mark.e2e

#: read by ``pull_fleet``: run argocd-server on the hub
HUB_ARGOCD = True
APPSET = "hubview"


class ArgoCDUser:
    """The admin at a terminal (the ``argocd`` CLI, logged in) and a program (the REST API)."""

    def __init__(self, server: hub_argocd.HubArgoCD, folder: Path) -> None:
        self.server = server
        self.config = folder / "argocd-config"
        self.context = ssl.create_default_context(cafile=str(server.ca))
        self.token = ""

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [str(paths.bin_dir() / "argocd"), *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and out.returncode != 0:
            pytest.fail(f"argocd {' '.join(args[:3])} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def login(self) -> None:
        password = self.server.admin_password()
        login = ["--username", "admin", "--password", password, "--server-crt", str(self.server.ca)]
        self.cli("login", self.server.address, *login)
        session = self.request("POST", "/api/v1/session", {"username": "admin", "password": password})
        self.token = session["token"]

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token if token is not None else self.token:
            headers["Authorization"] = f"Bearer {token if token is not None else self.token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, context=self.context, timeout=30) as resp:
            return json.loads(resp.read())

    def first_event(self, path: str) -> dict[str, Any]:
        """The first event of a streamed endpoint (one JSON object a line)."""
        auth = {"Authorization": f"Bearer {self.token}"}
        req = urllib.request.Request(self.server.url + path, headers=auth)
        with urllib.request.urlopen(req, context=self.context, timeout=30) as resp:
            return dict(json.loads(resp.readline()))


@pytest.fixture(scope="module")
async def deployed(pull_fleet: PullFleet) -> AsyncIterator[list[str]]:
    """``configmap1`` deployed by ApplicationSet to both workers, both mirrors Synced and Healthy."""
    fleet = pull_fleet
    hub = Kube(fleet.hub)
    apps = [f"{c.name}-{APPSET}" for c in fleet.workers]
    try:
        for cluster in fleet.workers:
            await fleet.set_cluster_secret(cluster, {"e2e": APPSET})
        await hub.create(
            f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets",
            # a namespace of its own on the workers: the lifecycle cases watch `default`'s configmap1
            application_set(APPSET, {"e2e": APPSET}, fleet.apps_repo, namespace=APPSET),
        )

        async def synced() -> tuple[bool, Any]:
            seen = {a: sync_health(await hub.get(app_path(a))) for a in apps}
            return all(s == ("Synced", "Healthy") for s in seen.values()), seen

        await fleet.eventually("both hub mirrors Synced and Healthy", synced)
        yield apps
        await hub.delete(appset_path(APPSET))

        async def gone() -> tuple[bool, Any]:
            left = await hub.get(appset_path(APPSET))
            return left is None, left

        await fleet.eventually("the ApplicationSet and its Applications gone", gone)
    finally:
        await hub.rest.close()


@pytest.fixture(scope="module")
async def user(pull_fleet: PullFleet, tmp_path_factory: pytest.TempPathFactory) -> ArgoCDUser:
    assert pull_fleet.hub_argocd is not None
    who = ArgoCDUser(pull_fleet.hub_argocd, tmp_path_factory.mktemp("argocd-user"))
    await asyncio.to_thread(who.login)
    return who


async def test_the_cli_shows_the_fleets_status_and_deployed_resources(
    deployed: list[str], user: ArgoCDUser, pull_fleet: PullFleet
) -> None:
    listed = (await asyncio.to_thread(user.cli, "app", "list")).stdout
    for app in deployed:
        row = next(line for line in listed.splitlines() if app in line)
        assert "Synced" in row and "Healthy" in row, listed

    app = deployed[0]
    shown = (await asyncio.to_thread(user.cli, "app", "get", app)).stdout
    assert "Sync Status:        Synced" in shown and "Health Status:      Healthy" in shown, shown
    assert "configmap1" in shown, shown  # the resources the cluster deployed

    async def tree_drawn() -> tuple[bool, Any]:
        tree = (await asyncio.to_thread(user.cli, "app", "get", app, "-o", "tree", check=False)).stdout
        return "ConfigMap/configmap1" in tree, tree

    await pull_fleet.eventually("`argocd app get -o tree` draws configmap1", tree_drawn, timeout=60)

    appset = (await asyncio.to_thread(user.cli, "appset", "get", f"{INVENTORY_NAMESPACE}/{APPSET}")).stdout
    assert APPSET in appset and pull_fleet.apps_repo in appset, appset


async def test_the_api_the_web_ui_calls_answers_a_logged_in_user_only(
    deployed: list[str], user: ArgoCDUser
) -> None:
    listed = await asyncio.to_thread(user.request, "GET", "/api/v1/applications")
    statuses = {a["metadata"]["name"]: a["status"] for a in listed["items"]}
    for app in deployed:
        assert (statuses[app]["sync"]["status"], statuses[app]["health"]["status"]) == ("Synced", "Healthy")
        assert statuses[app]["sync"]["revision"]  # the commit the cluster deployed

    tree = await asyncio.to_thread(user.request, "GET", f"/api/v1/applications/{deployed[0]}/resource-tree")
    assert [(n["kind"], n["name"]) for n in tree["nodes"]] == [("ConfigMap", "configmap1")]
    assert tree["nodes"][0]["health"]["status"] == "Healthy"

    event = await asyncio.to_thread(user.first_event, f"/api/v1/stream/applications?name={deployed[0]}")
    assert event["result"]["application"]["status"]["sync"]["status"] == "Synced"

    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(user.request, "GET", "/api/v1/applications", token="")
    assert refused.value.code == 401


async def test_sync_and_delete_are_refused_and_refresh_is_acknowledged(
    deployed: list[str], user: ArgoCDUser, pull_fleet: PullFleet
) -> None:
    app = deployed[0]
    for args in (("app", "sync", app), ("app", "delete", app, "--yes")):
        out = await asyncio.to_thread(user.cli, *args, check=False)
        assert out.returncode != 0
        assert "permission denied" in out.stderr, out.stderr
    hub = Kube(pull_fleet.hub)
    try:
        mirror = await hub.get(app_path(app))
        assert mirror is not None and "operation" not in mirror
    finally:
        await hub.rest.close()

    # argocd-server asks for the refresh on the mirror and waits for it to be taken off
    refreshed = await asyncio.to_thread(user.cli, "app", "get", app, "--refresh", timeout=180)
    assert "Synced" in refreshed.stdout
