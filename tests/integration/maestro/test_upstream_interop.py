"""Upstream Maestro's own Go clients, unchanged, against a fleetplane server: the REST consumer
calls of its openapi client, and its gRPC source work client (``grpcsource``: create, update,
delete, list, get and watch ManifestWorks, its lists and gets through the REST API) with a real
agent applying to a real cluster.

The driver (``localinfra/upstream_maestro``) is built from upstream's sources; give its path in
``FLEETPLANE_MAESTRO_INTEROP_DRIVER`` or build it into the cache (``python -m
localinfra.upstream_maestro --git ...``). Without it the suite is skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from localinfra import kube, upstream_maestro
from tests.conftest import KafkaAs
from tests.integration.maestro.conftest import ADMIN, MaestroUnderTest
from tests.integration.maestro.test_pipeline import running_agent
from trust.identity import Identity

pytestmark = pytest.mark.integration
SOURCE = "interop"


def _driver() -> Path:
    given = os.environ.get("FLEETPLANE_MAESTRO_INTEROP_DRIVER")
    path = Path(given) if given else upstream_maestro.binary()
    if not path.exists():
        pytest.skip(
            f"no driver of upstream Maestro's clients at {path}: build it with `python -m "
            "localinfra.upstream_maestro --git openshift-online/maestro=DIR --git "
            "open-cluster-management-io/sdk-go=DIR ...` (the git directories of upstream's repositories) "
            "or give its path in FLEETPLANE_MAESTRO_INTEROP_DRIVER"
        )
    return path


class Driver:
    def __init__(self, path: Path, server: MaestroUnderTest, who: Identity, consumer: str) -> None:
        folder = server.identities.issue(who)
        assert server.running.rest_port is not None
        self._argv = [
            str(path),
            f"--rest=https://127.0.0.1:{server.running.rest_port}",
            f"--grpc={server.address}",
            f"--ca={folder / 'ca.crt'}",
            f"--cert={folder / 'tls.crt'}",
            f"--key={folder / 'tls.key'}",
            f"--source={SOURCE}",
            f"--consumer={consumer}",
            "--timeout=90s",
        ]

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self._argv, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )

    @staticmethod
    async def answer(process: asyncio.subprocess.Process) -> Any:
        out, err = await process.communicate()
        assert process.returncode == 0, f"upstream's client failed: {err.decode()[-3000:]}"
        return json.loads(out)

    async def __call__(self, *args: str) -> Any:
        return await self.answer(await self.start(*args))


async def test_upstreams_rest_consumer_calls(rest_server: MaestroUnderTest) -> None:
    admin = Driver(_driver(), rest_server, ADMIN, "")
    made = await admin("consumer-create", "interop-c1", "env=dev")
    assert (made["name"], made["kind"], made["labels"]) == ("interop-c1", "Consumer", {"env": "dev"})
    assert (await admin("consumer-get", made["id"]))["name"] == "interop-c1"
    await admin("consumer-create", "interop-c2")
    listed = await admin("consumer-list", "name = 'interop-c2'")
    assert (listed["kind"], listed["total"], [c["name"] for c in listed["items"]]) == (
        "ConsumerList",
        1,
        ["interop-c2"],
    )
    patched = await admin("consumer-patch", made["id"], "env=prod", "tier=web")
    assert patched["labels"] == {"env": "prod", "tier": "web"}
    await admin("consumer-delete", "interop-c2")
    assert (await admin("consumer-list"))["total"] == 1


def _work(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name, "labels": {"app": "interop"}},
        "spec": {
            "workload": {
                "manifests": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": f"{name}-cm", "namespace": "default"},
                        "data": data,
                    }
                ]
            }
        },
    }


async def test_upstreams_source_work_client_create_update_list_get_watch_delete(
    rest_server: MaestroUnderTest,
    worker_clusters: list[kube.Cluster],
    kafka_as: KafkaAs,
    tmp_path: Path,
) -> None:
    server, path = rest_server, _driver()
    cluster = worker_clusters[0]
    admin = Driver(path, server, ADMIN, cluster.name)
    await admin("consumer-create", cluster.name)
    works = Driver(path, server, Identity.source(SOURCE), cluster.name)
    file = tmp_path / "work.json"
    async with running_agent(server, cluster, kafka_as):
        watching = await works.start("work-watch", "interop-work", "Applied")
        await asyncio.sleep(2)  # the watch lists and subscribes first
        file.write_text(json.dumps(_work("interop-work", {"v": "1"})))
        created = await works("work-apply", str(file))
        assert created["metadata"]["name"] == "interop-work"
        events = await Driver.answer(watching)
        assert any(
            c["type"] == "Applied" and c["status"] == "True" for e in events for c in e["conditions"]
        ), events

        got = await works("work-get", "interop-work")
        assert got["metadata"]["generation"] == 1
        assert got["spec"]["workload"]["manifests"][0]["data"] == {"v": "1"}
        assert [w["metadata"]["name"] for w in (await works("work-list", "app=interop"))["items"]] == [
            "interop-work"
        ]
        assert (await works("work-list", "app=other"))["items"] in (None, [])

        file.write_text(json.dumps(_work("interop-work", {"v": "2"})))
        await works("work-apply", str(file))
        updated = await works("work-get", "interop-work")
        assert updated["metadata"]["generation"] == 2
        assert updated["spec"]["workload"]["manifests"][0]["data"] == {"v": "2"}

        watching = await works.start("work-watch", "interop-work", "Deleted")
        await asyncio.sleep(2)
        await works("work-delete", "interop-work")
        events = await Driver.answer(watching)
        assert events[-1]["type"] == "DELETED"
