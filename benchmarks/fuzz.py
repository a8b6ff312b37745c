"""Malformed CloudEvents at volume over raw gRPC, from a client allowed to publish, and what the
server makes of them.

Each event starts as a valid spec request of the fleet (a create for a registered cluster, or an
update or delete of a stored work) and gets one defect that must make the server refuse it —
an unknown cluster, a random or unknown type, data that is not JSON or not a bundle, a NUL in an
attribute or the metadata, an attribute far over the size limit, a stale, negative or huge
version, a missing or garbled resource id, an attribute of the wrong type, an unsupported spec
version — plus up to two harmless oddities (extension attributes of random names and types). Half
go one per ``Publish`` call, half in ``PublishBatch`` calls of 1 to 20. Every answer must be a
refusal; what is stored must not change (`fingerprint`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
import string
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks import maestro_setup
from localinfra import kafka, postgres
from localinfra.environment import Environment
from maestro.api import bundle_events, bundles, events
from maestro.client import MaestroClient
from maestro.wire import channels, stubs
from maestro.wire import cloudevents as wire_events

pb = stubs.cloudevent
Defect = Callable[[random.Random, pb.CloudEvent], None]
#: larger than any server's message limit derived from the default bundle limit (1 MiB)
HUGE = 3 * 1024 * 1024


@dataclass
class Fleet:
    """What the fuzzed events are made from: registered clusters and stored works (id, version)."""

    consumers: list[str]
    works: list[tuple[uuid.UUID, str, int]]
    source: str = "fuzz"


@dataclass
class FuzzResult:
    events: int = 0
    calls: int = 0
    #: answers by gRPC status code name ("OK" would be an event the server took)
    codes: dict[str, int] = field(default_factory=dict)
    #: by defect, how many events carried it
    defects: dict[str, int] = field(default_factory=dict)
    #: by defect, events the server took (each a bug: it must refuse them all)
    taken: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def accepted(self) -> int:
        return self.codes.get("OK", 0)


def _text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(string.printable) for _ in range(size))


def _valid(rng: random.Random, fleet: Fleet) -> pb.CloudEvent:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fz", "namespace": "default"}}
    spec = bundles.ManifestBundle(manifests=[manifest])
    if fleet.works and rng.random() < 0.5:
        rid, consumer, version = rng.choice(fleet.works)
        action = rng.choice([bundles.SpecAction.UPDATE, bundles.SpecAction.DELETE])
        request = bundles.SpecRequest(
            action,
            rid,
            consumer,
            fleet.source,
            version,
            spec if action is bundles.SpecAction.UPDATE else None,
        )
    else:
        request = bundles.SpecRequest(
            bundles.SpecAction.CREATE,
            uuid.uuid4(),
            rng.choice(fleet.consumers),
            fleet.source,
            0,
            spec,
            {"name": "fz"},
        )
    return wire_events.to_pb(bundle_events.spec_request_event(request))


def _string(event: pb.CloudEvent, name: str, value: str) -> None:
    event.attributes[f"ce-{name}"].ce_string = value


def unknown_cluster(rng: random.Random, event: pb.CloudEvent) -> None:
    _string(event, events.CLUSTER_NAME, f"nobody-{rng.randrange(10**9)}")


def random_type(rng: random.Random, event: pb.CloudEvent) -> None:
    event.type = rng.choice(
        [
            _text(rng, rng.randrange(1, 60)),
            f"{events.MANIFEST_BUNDLES}.spec.{_text(rng, 8)}",
            f"{events.MANIFEST_BUNDLES}.status.update_request",
            f"{events.MANIFEST_BUNDLES}.spec.resync_response",
            "io.example.other.spec.create_request",
        ]
    )


def bad_data(rng: random.Random, event: pb.CloudEvent) -> None:
    if event.type.endswith(".delete_request"):
        random_type(rng, event)  # a delete carries no data: spoil it otherwise
        return
    event.binary_data = rng.choice(
        [
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))),
            b"{",
            b"[]",
            b'{"manifests": 5}',
            b'{"manifests": [{"kind": 7}]}',
            b'{"manifests": [], "deleteOption": "nope"}',
            orjson.dumps(_text(rng, 30)),
        ]
    )


def nul_laden(rng: random.Random, event: pb.CloudEvent) -> None:
    if rng.random() < 0.5:
        _string(event, events.CLUSTER_NAME, event.attributes["ce-clustername"].ce_string + "\x00")
    else:
        _string(
            event, events.METADATA, orjson.dumps({"name": "a\x00b", "labels": {"x": "\x00" * 3}}).decode()
        )


def huge_value(rng: random.Random, event: pb.CloudEvent) -> None:
    target = rng.choice([events.METADATA, "xhuge", events.CLUSTER_NAME])
    _string(event, target, "a" * HUGE)


def stale_version(rng: random.Random, event: pb.CloudEvent) -> None:
    # An update (a delete names no version, as upstream: whatever is current goes), of a stored
    # work or of an unknown one, naming a version it is not at.
    event.type = f"{events.MANIFEST_BUNDLES}.spec.update_request"
    if not event.binary_data:
        event.binary_data = b'{"manifests": []}'
    current = event.attributes[f"ce-{events.RESOURCE_VERSION}"].ce_integer
    event.attributes[f"ce-{events.RESOURCE_VERSION}"].ce_integer = rng.choice(
        [current + rng.randrange(1, 1000), -rng.randrange(1, 2**31), 2**31 - 1]
    )


def bad_resource_id(rng: random.Random, event: pb.CloudEvent) -> None:
    if rng.random() < 0.5:
        del event.attributes[f"ce-{events.RESOURCE_ID}"]
    else:
        _string(event, events.RESOURCE_ID, rng.choice(["", "not-a-uuid", _text(rng, 36), "0" * 40]))


def wrong_attribute_type(rng: random.Random, event: pb.CloudEvent) -> None:
    name = rng.choice([events.CLUSTER_NAME, events.RESOURCE_ID, events.RESOURCE_VERSION, "time"])
    slot = event.attributes[f"ce-{name}"]
    choice = rng.randrange(3)
    if choice == 0 and name != events.RESOURCE_VERSION:
        slot.ce_integer = rng.randrange(-(2**31), 2**31)
    elif choice == 1:
        slot.ce_bytes = bytes(rng.randrange(256) for _ in range(8))
    else:
        slot.ce_string = _text(rng, 12) if name != events.CLUSTER_NAME else ""


def spec_version(rng: random.Random, event: pb.CloudEvent) -> None:
    event.spec_version = rng.choice(["", "0.3", "2.0", _text(rng, 5)])


DEFECTS: dict[str, Defect] = {
    "unknown cluster": unknown_cluster,
    "random type": random_type,
    "bad data": bad_data,
    "NUL in a value": nul_laden,
    "huge value": huge_value,
    "stale or huge version": stale_version,
    "bad resource id": bad_resource_id,
    "attribute of the wrong type": wrong_attribute_type,
    "unsupported spec version": spec_version,
}


def noise(rng: random.Random, event: pb.CloudEvent) -> None:
    """Extension attributes of random names and types: harmless on their own."""
    slot = event.attributes[
        f"ce-{''.join(rng.choice(string.ascii_lowercase) for _ in range(rng.randrange(3, 10)))}"
    ]
    kind = rng.randrange(4)
    if kind == 0:
        slot.ce_string = _text(rng, rng.randrange(0, 50))
    elif kind == 1:
        slot.ce_integer = rng.randrange(-(2**31), 2**31)
    elif kind == 2:
        slot.ce_boolean = rng.random() < 0.5
    else:
        slot.ce_bytes = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30)))


def malformed(rng: random.Random, fleet: Fleet, *, alone: bool = True) -> tuple[str, pb.CloudEvent]:
    """One event the server must refuse, and the name of its defect (one over the message limit
    only when it goes ``alone``: in a batch it would have the whole call refused)."""
    event = _valid(rng, fleet)
    for _ in range(rng.randrange(3)):
        noise(rng, event)
    name = rng.choice(sorted(n for n in DEFECTS if alone or n != "huge value"))
    DEFECTS[name](rng, event)
    return name, event


async def run(channel: grpc.aio.Channel, fleet: Fleet, count: int, seed: int) -> FuzzResult:
    """Send ``count`` malformed events over ``channel``; count the answers."""
    rng = random.Random(seed)
    single = stubs.cloudevent_grpc.CloudEventServiceStub(channel)
    batch = stubs.source_grpc.MaestroSourceStub(channel)
    result = FuzzResult()
    codes: collections.Counter[str] = collections.Counter()
    defects: collections.Counter[str] = collections.Counter()
    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    taken: collections.Counter[str] = collections.Counter()
    while result.events < count:
        size = 1 if rng.random() < 0.5 else rng.randrange(2, 21)
        size = min(size, count - result.events)
        made = [malformed(rng, fleet, alone=size == 1) for _ in range(size)]
        defects.update(name for name, _ in made)
        result.events += len(made)
        result.calls += 1
        try:
            if len(made) == 1:
                await single.Publish(pb.PublishRequest(event=made[0][1]), timeout=30)
                answers = ["OK"]
            else:
                reply = await batch.PublishBatch(
                    stubs.source.PublishBatchRequest(events=[e for _, e in made]), timeout=30
                )
                answers = [_code_name(r.code) for r in reply.results]
        except grpc.aio.AioRpcError as exc:
            answers = [exc.code().name] * len(made)
        codes.update(answers)
        taken.update(name for (name, _), answer in zip(made, answers, strict=True) if answer == "OK")
    result.taken = dict(taken)
    result.seconds = loop_time() - started
    result.codes = dict(codes)
    result.defects = dict(defects)
    return result


def _code_name(value: int) -> str:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code.name
    return str(value)


async def fingerprint(client: MaestroClient) -> tuple[int, int, str]:
    """Consumers, works, and a checksum over every work as stored (spec, metadata, status,
    version, times): equal before and after means nothing stored changed."""
    digest = hashlib.sha256()
    works = 0
    async for page in client.pages():
        for item in sorted(page.items, key=lambda i: i.id):
            works += 1
            for part in (item.id, item.consumer, item.source, str(item.version), str(item.updated_at_us)):
                digest.update(part.encode() + b"\0")
            for blob in (item.spec_json, item.metadata_json, item.status_json):
                digest.update(blob + b"\0")
    consumers = len(await client.list_consumers())
    return consumers, works, digest.hexdigest()


async def seed_fleet(client: MaestroClient, clusters: Sequence[str], works_per_cluster: int) -> Fleet:
    """Register ``clusters`` and store valid works on each: what the fuzzing must leave untouched."""
    fleet = Fleet(list(clusters), [], source=client.source)
    for name in clusters:
        await client.create_consumer(name)
        for n in range(works_per_cluster):
            rid = uuid.uuid4()
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"w{n}", "namespace": "default"},
            }
            await client.apply(name, rid, bundles.ManifestBundle(manifests=[manifest]))
            fleet.works.append((rid, name, 1))
    return fleet


async def bench(
    count: int, seed: int, progress: Callable[[str], None], *, insecure: bool = False
) -> dict[str, object]:
    """``fleetplane bench fuzz``: a Maestro server process on real PostgreSQL and Kafka, a seeded
    fleet, then ``count`` malformed events; the figures, and whether anything stored changed."""
    root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-"))
    env = Environment(root / "env")
    finished = False
    try:
        progress("[bench] starting PostgreSQL, Kafka and a Maestro server ...")
        pg = postgres.start(env, durable=False)
        kf = kafka.start(env, heap="1g", secure=not insecure)
        security = maestro_setup.Security(env, insecure=insecure)
        record, address, _ = await maestro_setup.start_server(env, pg, kf, root, security)
        credentials = security.credentials()
        async with MaestroClient(address, source="bench", credentials=credentials) as client:
            fleet = await seed_fleet(client, [f"fuzz-{n}" for n in range(4)], works_per_cluster=25)
            before = await fingerprint(client)
            progress(f"[bench] {before[1]} works stored; sending {count} malformed events (seed {seed}) ...")
            async with channels.aio_channel(address, credentials) as channel:
                result = await run(channel, fleet, count, seed)
                health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            after = await fingerprint(client)
        finished = True
    finally:
        maestro_setup.end_run(env, root, keep_logs=not finished, report=progress)
    return {
        "events": result.events,
        "calls": result.calls,
        "seconds": result.seconds,
        "events_per_second": result.events / result.seconds if result.seconds else 0.0,
        "answers": result.codes,
        "defects": result.defects,
        "taken (must be none)": result.taken or "none",
        "stored unchanged": after == before,
        "serving after": health.status == health_pb2.HealthCheckResponse.SERVING,
        "server pid": record.pid,
    }
