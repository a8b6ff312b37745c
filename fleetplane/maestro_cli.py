"""``fleetplane maestro``: run the server or an agent, and look at consumers and works."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta

import grpc
import typer
from rich.console import Console
from rich.table import Table

from fleetplane import gc_tuning, logs
from maestro.agent import service as agent_service
from maestro.api import validation
from maestro.server import app as server_app
from maestro.server.settings import ServerSettings
from maestro.storage import migrations
from maestro.transport import layout
from maestro.wire import stubs

app = typer.Typer(help="The Maestro server, its agents, and what they hold.", no_args_is_help=True)
consumers_app = typer.Typer(help="Clusters that receive work.", no_args_is_help=True)
works_app = typer.Typer(help="Resource bundles (ManifestWorks) and their status.", no_args_is_help=True)
app.add_typer(consumers_app, name="consumers")
app.add_typer(works_app, name="works")
console = Console()
err = Console(stderr=True)

DSN = typer.Option(..., "--dsn", envvar="MAESTRO_DSN", help="PostgreSQL DSN.")
KAFKA = typer.Option(..., "--kafka", envvar="MAESTRO_KAFKA", help="Kafka bootstrap servers.")
SERVER = typer.Option("127.0.0.1:8090", "--server", envvar="MAESTRO_SERVER", help="Maestro gRPC address.")
WORKS_OF_CONSUMER = typer.Option("", help="Only this consumer's works.")
WORKS_OF_SOURCE = typer.Option("", help="Only this source's works.")
LOG = typer.Option("warning", "--log-level", help="debug, info, warning or error.")
PREFIX = typer.Option(
    layout.DEFAULT.prefix,
    "--topic-prefix",
    help="Prefix of the Kafka topic and group names (server and agents must agree).",
)


@app.command()
def migrate(dsn: str = DSN, log_level: str = LOG) -> None:
    """Create or upgrade the database schema (idempotent; safe with several replicas)."""
    logs.configure(log_level)
    applied = asyncio.run(migrations.migrate(dsn))
    console.print(f"applied migrations: {applied or 'none (up to date)'}")


@app.command()
def server(
    dsn: str = DSN,
    kafka: str = KAFKA,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8090, help="gRPC port (source API and query API)."),
    bundle_limit: int = typer.Option(validation.DEFAULT_MAX_BUNDLE_BYTES, help="Largest bundle, bytes."),
    deletion_grace: float = typer.Option(600.0, help="Seconds before an unconfirmed delete is orphaned."),
    server_id: str = typer.Option("", help="This replica's id (default: maestro-<hostname>)."),
    topic_prefix: str = PREFIX,
    log_level: str = LOG,
) -> None:
    """Serve the gRPC APIs, relay the outbox to Kafka and ingest agents' status."""
    logs.configure(log_level)
    gc_tuning.tune()
    settings = ServerSettings(
        dsn=dsn,
        kafka=kafka,
        host=host,
        port=port,
        bundle_limit=bundle_limit,
        deletion_grace=timedelta(seconds=deletion_grace),
        topics=layout.Layout(topic_prefix),
    )
    if server_id:
        settings = dataclasses.replace(settings, server_id=server_id)
    asyncio.run(server_app.serve(settings))


@app.command()
def agent(
    cluster: str = typer.Option(..., "--cluster", help="The consumer (cluster) name registered in Maestro."),
    kubeconfig: str = typer.Option(..., "--kubeconfig", help="Kubeconfig of the cluster to apply to."),
    kafka: str = KAFKA,
    server: str = SERVER,
    refresh: float = typer.Option(
        60.0, help="Seconds between full re-reads of applied objects (changes are watched: a safety net)."
    ),
    topic_prefix: str = PREFIX,
    log_level: str = LOG,
) -> None:
    """Run the agent of one cluster: apply its works, report their status."""
    logs.configure(log_level)
    gc_tuning.tune()
    settings = agent_service.AgentSettings(
        cluster=cluster,
        kubeconfig=kubeconfig,
        kafka=kafka,
        server=server,
        refresh_seconds=refresh,
        topics=layout.Layout(topic_prefix),
    )
    asyncio.run(agent_service.run(settings))


def _query(address: str) -> stubs.query_grpc.MaestroQueryStub:
    return stubs.query_grpc.MaestroQueryStub(grpc.insecure_channel(address))


def _call(fn, request):  # type: ignore[no-untyped-def]
    try:
        return fn(request, timeout=30)
    except grpc.RpcError as exc:
        err.print(f"[red]error:[/red] {exc.code().name}: {exc.details()}")
        raise typer.Exit(1) from None


def _labels(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            err.print(f"[red]error:[/red] label {pair!r} is not key=value")
            raise typer.Exit(2)
        out[key] = value
    return out


@consumers_app.command("create")
def consumers_create(
    name: str, label: list[str] = typer.Option([], "--label", "-l", help="key=value"), server: str = SERVER
) -> None:
    """Register a cluster; allocates its Kafka partition."""
    c = _call(
        _query(server).CreateConsumer, stubs.query.CreateConsumerRequest(name=name, labels=_labels(label))
    )
    console.print(f"consumer {c.name} created: spec events on {c.spec_topic}[{c.spec_partition}]")


@consumers_app.command("list")
def consumers_list(server: str = SERVER) -> None:
    table = Table("name", "labels", "topic", "partition")
    token = ""
    while True:
        page = _call(_query(server).ListConsumers, stubs.query.ListConsumersRequest(page_token=token))
        for c in page.items:
            table.add_row(
                c.name,
                ",".join(f"{k}={v}" for k, v in sorted(c.labels.items())),
                c.spec_topic,
                str(c.spec_partition),
            )
        token = page.next_page_token
        if not token:
            break
    console.print(table)


@consumers_app.command("get")
def consumers_get(name: str, server: str = SERVER) -> None:
    c = _call(_query(server).GetConsumer, stubs.query.GetConsumerRequest(name=name))
    console.print_json(
        json.dumps(
            {"name": c.name, "labels": dict(c.labels), "topic": c.spec_topic, "partition": c.spec_partition}
        )
    )


@consumers_app.command("label")
def consumers_label(
    name: str, label: list[str] = typer.Option([], "--label", "-l", help="key=value"), server: str = SERVER
) -> None:
    """Replace a consumer's labels."""
    _call(
        _query(server).UpdateConsumerLabels,
        stubs.query.UpdateConsumerLabelsRequest(name=name, labels=_labels(label)),
    )
    console.print(f"consumer {name} labelled")


@consumers_app.command("delete")
def consumers_delete(name: str, server: str = SERVER) -> None:
    """Delete a consumer (refused while it still has works)."""
    _call(_query(server).DeleteConsumer, stubs.query.DeleteConsumerRequest(name=name))
    console.print(f"consumer {name} deleted")


_STATE = {0: "?", 1: "active", 2: "deleting", 3: "deleted"}


def _conditions(status: bytes) -> str:
    if not status:
        return "-"
    conds = json.loads(status).get("conditions") or []
    return " ".join(f"{c.get('type')}={c.get('status')}" for c in conds)


@works_app.command("list")
def works_list(
    consumer: str = WORKS_OF_CONSUMER,
    source: str = WORKS_OF_SOURCE,
    server: str = SERVER,
) -> None:
    """Every work, page by page, with its version, state and status conditions."""
    table = Table("id", "consumer", "source", "version", "state", "status")
    token = ""
    while True:
        page = _call(
            _query(server).ListResourceBundles,
            stubs.query.ListResourceBundlesRequest(consumer=consumer, source=source, page_token=token),
        )
        for w in page.items:
            table.add_row(
                w.id,
                w.consumer,
                w.source,
                str(w.version),
                _STATE.get(w.deletion_state, "?"),
                _conditions(w.status),
            )
        token = page.next_page_token
        if not token:
            break
    console.print(table)


@works_app.command("count")
def works_count(
    consumer: str = WORKS_OF_CONSUMER,
    source: str = WORKS_OF_SOURCE,
    server: str = SERVER,
) -> None:
    """How many works there are (deleting ones included), without listing them."""
    reply = _call(
        _query(server).CountResourceBundles,
        stubs.query.CountResourceBundlesRequest(consumer=consumer, source=source),
    )
    console.print(reply.count)


@works_app.command("get")
def works_get(work_id: str, server: str = SERVER) -> None:
    """One work: spec, metadata and status as JSON."""
    w = _call(_query(server).GetResourceBundle, stubs.query.GetResourceBundleRequest(id=work_id))
    console.print_json(
        json.dumps(
            {
                "id": w.id,
                "consumer": w.consumer,
                "source": w.source,
                "version": w.version,
                "state": _STATE.get(w.deletion_state, "?"),
                "spec": json.loads(w.spec or b"{}"),
                "metadata": json.loads(w.metadata or b"{}"),
                "status": json.loads(w.status or b"{}"),
            }
        )
    )
