"""Lists of large bundles: every page is bounded by bytes as well as by count, so the CLI lists a
fleet whose count-bounded page would exceed gRPC's 4 MiB default, and a client with that default
reads every page."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import grpc
import orjson
import pytest

from maestro.api import bundles, queries
from maestro.api.rest_models import BUNDLES_PATH
from maestro.client import MaestroClient
from maestro.wire import stubs
from tests.integration.maestro.conftest import ADMIN, MaestroUnderTest
from tests.integration.maestro.rest_client import rest_client

pytestmark = pytest.mark.integration
BUNDLES = 300
BLOB = 50_000  # bytes of data per bundle: 300 of them weigh ~15 MB, a page of 500 more than 4 MiB


async def _fleet_of_large_bundles(client: MaestroClient) -> set[str]:
    await client.create_consumer("cluster-large")
    ids = {str(uuid.uuid4()) for _ in range(BUNDLES)}

    async def one(rid: str, n: int) -> None:
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"large-{n}", "namespace": "default"},
            "data": {"blob": f"{n:06d}" + "x" * (BLOB - 6)},
        }
        await client.apply("cluster-large", uuid.UUID(rid), bundles.ManifestBundle([manifest]))

    await asyncio.gather(*(one(rid, n) for n, rid in enumerate(ids)))
    return ids


async def test_the_cli_lists_bundles_whose_count_bounded_page_would_exceed_4_mib(
    maestro_server: MaestroUnderTest,
) -> None:
    async with maestro_server.client(batch_publish=True) as client:
        ids = await _fleet_of_large_bundles(client)
    assert BUNDLES * BLOB > 4 * 1024 * 1024 and queries.DEFAULT_PAGE_SIZE >= BUNDLES

    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetplane.cli",
        "maestro",
        "works",
        "list",
        "-o",
        "json",
        "--server",
        maestro_server.address,
        "--tls-dir",
        str(maestro_server.identities.issue(ADMIN)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    took = time.monotonic() - started
    assert process.returncode == 0, err.decode()
    listed = orjson.loads(out)
    assert {w["id"] for w in listed} == ids
    print(
        f"\nCLI listed {len(listed)} bundles of {BLOB} bytes ({len(out) / 1e6:.1f} MB of JSON) in {took:.2f}s"
    )


async def test_the_rest_api_lists_them_in_upstreams_pages(rest_server: MaestroUnderTest) -> None:
    async with rest_server.client(batch_publish=True) as client:
        ids = await _fleet_of_large_bundles(client)
    assert rest_server.running.rest_port is not None
    started = time.monotonic()
    listed: list[str] = []
    async with rest_client(rest_server.running.rest_port, rest_server.identities.issue(ADMIN)) as rest:
        for page in (1, 2):  # upstream's source client asks for pages of 400
            answer = await rest.call("GET", BUNDLES_PATH, params={"page": str(page), "size": "200"})
            assert answer.status == 200 and answer.body["total"] == BUNDLES
            listed += [b["id"] for b in answer.body["items"]]
    took = time.monotonic() - started
    assert set(listed) == ids and len(listed) == BUNDLES
    print(f"\nREST listed {BUNDLES} bundles of {BLOB} bytes in pages of 200 in {took:.2f}s")


async def test_every_page_fits_a_client_with_grpcs_default_message_limit(
    maestro_server: MaestroUnderTest,
) -> None:
    async with maestro_server.client(batch_publish=True) as client:
        ids = await _fleet_of_large_bundles(client)
    credentials = maestro_server.credentials(ADMIN)
    # A bare channel: gRPC's default limit of 4 MiB on what it receives.
    async with grpc.aio.secure_channel(maestro_server.address, credentials.channel_credentials()) as channel:
        query = stubs.query_grpc.MaestroQueryStub(channel)
        seen: list[str] = []
        pages = 0
        token = ""
        while True:
            reply = await query.ListResourceBundles(
                stubs.query.ListResourceBundlesRequest(page_size=queries.MAX_PAGE_SIZE, page_token=token)
            )
            assert reply.ByteSize() <= 4 * 1024 * 1024
            seen += [item.id for item in reply.items]
            pages += 1
            token = reply.next_page_token
            if not token:
                break
    assert set(seen) == ids and len(seen) == len(ids)
    assert pages >= 4, "15 MB of bundles in pages of at most 3 MiB of documents"


async def test_a_client_asks_for_smaller_pages_by_bytes(maestro_server: MaestroUnderTest) -> None:
    async with maestro_server.client(batch_publish=True) as client:
        ids = await _fleet_of_large_bundles(client)
        sizes = [len(page.items) async for page in client.pages(page_bytes=500_000)]
        # ~50 KB and 256 bytes each: 9 fit in 500,000 bytes
        assert sum(sizes) == len(ids) and max(sizes) == 9
        one = [len(page.items) async for page in client.pages(page_bytes=1)]
        assert one == [1] * len(ids), "a page holds one bundle at least"
