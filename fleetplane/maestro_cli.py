"""``fleetplane maestro``: run the server or an agent, look at consumers and works, revoke certificates."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console

from fleetplane import (
    gc_tuning,
    kube_options,
    logs,
    maestro_quarantine_cli,
    maestro_records,
    output,
    probe_options,
    tls_options,
)
from fleetplane.maestro_connection import SERVER, Connection, connected
from maestro.agent import service as agent_service
from maestro.api import errors as maestro_errors
from maestro.api import lifecycle, quarantine, queries, revocations, validation
from maestro.server.settings import ServerSettings
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings, KafkaSettingsError
from maestro.transport.errors import AuthorizationError
from maestro.transport.topic_settings import TopicSettings
from maestro.wire import channels
from trust import identity as trust_identity

app = typer.Typer(help="The Maestro server, its agents, and what they hold.", no_args_is_help=True)
consumers_app = typer.Typer(help="Clusters that receive work.", no_args_is_help=True)
works_app = typer.Typer(help="Resource bundles (ManifestWorks) and their status.", no_args_is_help=True)
certificates_app = typer.Typer(help="Client certificates the server refuses.", no_args_is_help=True)
app.add_typer(consumers_app, name="consumers")
app.add_typer(works_app, name="works")
app.add_typer(certificates_app, name="certificates")
console = Console()
err = Console(stderr=True)

DSN = typer.Option(
    ..., "--dsn", envvar="MAESTRO_DSN", help="PostgreSQL connection string (DSN) of Maestro's database."
)
KAFKA = typer.Option(..., "--kafka", envvar="MAESTRO_KAFKA", help="Kafka bootstrap servers.")
WORKS_OF_CONSUMER = typer.Option("", help="Only this consumer's works.")
WORKS_OF_SOURCE = typer.Option("", help="Only this source's works.")
AGENT_KUBECONFIG = kube_options.kubeconfig_option("the cluster to apply to")


KAFKA_PRINCIPALS = typer.Option(
    trust_identity.PrincipalForm.MAPPED,
    "--kafka-principals",
    envvar="MAESTRO_KAFKA_PRINCIPALS",
    help="How the brokers name a client by its certificate, which the cluster ACLs must match: "
    "'mapped' (User:cluster.<name>.<incarnation>; the brokers set ssl.principal.mapping.rules as "
    "docs/security.md gives them) or 'subject' (the certificate's whole subject, "
    "User:UID=<incarnation>,CN=<name>,OU=cluster,O=fleetplane; for brokers that cannot map, as "
    "Amazon MSK's cannot).",
    case_sensitive=False,
)


def _kafka(
    bootstrap: str,
    tls_dir: str | None,
    insecure: bool,
    principals: trust_identity.PrincipalForm = trust_identity.PrincipalForm.MAPPED,
) -> KafkaSettings:
    try:
        return KafkaSettings.from_flags(bootstrap, tls_dir, insecure, principals)
    except KafkaSettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


PREFIX = typer.Option(
    layout.DEFAULT.prefix,
    "--topic-prefix",
    help="Prefix of the Kafka topic and group names (server and agents must agree).",
)
TLS_DIR = tls_options.TLS_DIR
INSECURE = tls_options.INSECURE


@app.command()
def migrate(dsn: str = DSN, log_level: str = logs.LEVEL, log_format: logs.Format = logs.FORMAT) -> None:
    """Create or upgrade the database schema (idempotent; safe with several replicas)."""
    from maestro.storage import migrations  # the server's extra: an agent's image has no PostgreSQL driver

    logs.configure(log_level, log_format)
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
    max_streams: int = typer.Option(
        1000, help="Open status streams (Subscribe, WatchStatus) this replica serves; more are refused."
    ),
    max_streams_per_caller: int = typer.Option(
        100, help="Open status streams per caller (as authenticated); more are refused."
    ),
    stream_backlog: int = typer.Option(
        10_000, help="Resync events a Subscribe stream may have unsent before it is ended (slow client)."
    ),
    max_page_size: int = typer.Option(
        queries.MAX_PAGE_SIZE, help=f"Most bundles in one list page (at most {queries.MAX_PAGE_SIZE})."
    ),
    max_page_bytes: int = typer.Option(
        queries.DEFAULT_PAGE_BYTES,
        help="Most bytes of documents in one list page, whatever the count (a larger bundle comes alone).",
    ),
    rest_port: int = typer.Option(
        None,
        "--rest-port",
        help="Also serve upstream Maestro's REST API (/api/maestro/v1: consumers, resource-bundles) "
        "here, over TLS, authenticated and authorized as the gRPC API (client certificate, or a hub "
        "token with --token-port's hub).",
    ),
    status_sequence_ahead: float = typer.Option(
        lifecycle.DEFAULT_SEQUENCE_AHEAD.total_seconds(),
        help="Seconds a status sequence id (an agent's clock) may be ahead of this server's clock.",
    ),
    quarantine_after: int = typer.Option(
        quarantine.DEFAULT_ATTEMPTS,
        help="Times an event may fail for its own reasons (Kafka refusing a spec event for good, a "
        "status the database refuses) before it is quarantined (`maestro quarantine list`).",
    ),
    topic_prefix: str = PREFIX,
    topic_replication_factor: int = typer.Option(
        None,
        "--topic-replication-factor",
        help="Replicas of each cluster's spec and status topic when it is made (default: the "
        "brokers' default.replication.factor). 3 survives the loss of a broker; it applies to new "
        "topics (existing ones with fewer replicas are reported at start).",
    ),
    topic_min_insync_replicas: int = typer.Option(
        None,
        "--topic-min-insync-replicas",
        help="Replicas that must hold a message before Kafka acknowledges it (producers use "
        "acks=all); default: the brokers' min.insync.replicas. 2 with 3 replicas. Set on existing "
        "topics too, at every start.",
    ),
    topic_config: list[str] = typer.Option(
        [],
        "--topic-config",
        help="A further config of every spec and status topic, KEY=VALUE (e.g. retention.ms=604800000); "
        "repeatable. Set on existing topics too, at every start.",
    ),
    kafka_principals: trust_identity.PrincipalForm = KAFKA_PRINCIPALS,
    tls_dir: str = typer.Option(
        None,
        "--tls-dir",
        envvar="FLEETPLANE_TLS_DIR",
        help="Folder with ca.crt (the CA clients' certificates must chain to), tls.crt and tls.key "
        "(the serving certificate, for the names clients connect to). Re-read when replaced.",
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Serve plaintext with no authentication: anyone may do anything."
    ),
    token_port: int = typer.Option(
        None,
        "--token-port",
        help="Also serve TLS here to callers with a hub token instead of a certificate (each token "
        "reviewed by the hub, each call authorized by the hub's RBAC).",
    ),
    hub_kubeconfig: Path = typer.Option(
        None,
        "--hub-kubeconfig",
        envvar="FLEETPLANE_HUB_KUBECONFIG",
        help="The hub that reviews tokens (needs system:auth-delegator); default: in-cluster.",
    ),
    token_audience: list[str] = typer.Option(
        [], "--token-audience", help="Accept only tokens issued for this audience (repeatable)."
    ),
    trust_domain: str = typer.Option(
        trust_identity.DEFAULT_TRUST_DOMAIN, help="SPIFFE trust domain of client certificates."
    ),
    health_port: int = probe_options.health_port_option(
        "the gRPC ports listen, the database answers, every background loop runs"
    ),
    health_host: str = probe_options.HEALTH_HOST,
    metrics_port: int = probe_options.metrics_port_option(
        "gRPC calls by method and code, the outbox's depth and age"
    ),
    metrics_host: str = probe_options.METRICS_HOST,
    log_level: str = logs.LEVEL,
    log_format: logs.Format = logs.FORMAT,
) -> None:
    """Serve the gRPC APIs, relay the outbox to Kafka and ingest agents' status."""
    from maestro.server import app as server_app  # the server's extra: an agent's image lacks it

    logs.configure(log_level, log_format)
    gc_tuning.tune()
    tls = None
    if tls_dir and not insecure:
        try:
            tls = channels.tls_files(Path(tls_dir))
        except channels.CredentialsError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    try:
        settings = ServerSettings(
            dsn=dsn,
            kafka=_kafka(kafka, tls_dir, insecure, kafka_principals),
            host=host,
            port=port,
            bundle_limit=bundle_limit,
            deletion_grace=timedelta(seconds=deletion_grace),
            topics=layout.Layout(topic_prefix),
            topic_settings=TopicSettings.from_flags(
                topic_replication_factor, topic_min_insync_replicas, topic_config
            ),
            max_streams=max_streams,
            max_streams_per_caller=max_streams_per_caller,
            stream_backlog=stream_backlog,
            max_page_size=max_page_size,
            max_page_bytes=max_page_bytes,
            rest_port=rest_port,
            status_sequence_ahead=timedelta(seconds=status_sequence_ahead),
            quarantine_after=quarantine_after,
            tls=tls,
            insecure=insecure,
            token_port=token_port,
            hub_kubeconfig=hub_kubeconfig,
            token_audiences=tuple(token_audience),
            trust_domain=trust_domain,
            health_port=health_port,
            health_host=health_host,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if server_id:
        settings = dataclasses.replace(settings, server_id=server_id)
    asyncio.run(server_app.serve(settings))


@app.command()
def agent(
    cluster: str = typer.Option(..., "--cluster", help="The consumer (cluster) name registered in Maestro."),
    kubeconfig: str | None = AGENT_KUBECONFIG,
    context: str | None = kube_options.CONTEXT,
    kafka: str = KAFKA,
    server: str = SERVER,
    refresh: float = typer.Option(
        60.0, help="Seconds between full re-reads of applied objects (changes are watched: a safety net)."
    ),
    placement_check: float = typer.Option(
        30.0,
        help="Seconds between asking Maestro whether the cluster's consumer was registered again or "
        "moved (then the agent follows it; it also asks when Kafka refuses it something).",
    ),
    topic_prefix: str = PREFIX,
    kafka_principals: trust_identity.PrincipalForm = KAFKA_PRINCIPALS,
    tls_dir: str | None = TLS_DIR,
    insecure: bool = INSECURE,
    health_port: int | None = probe_options.health_port_option(
        "its spec partition assigned and polled without error, every background loop runs"
    ),
    health_host: str = probe_options.HEALTH_HOST,
    metrics_port: int | None = probe_options.metrics_port_option(
        "bundles applied, failed and deleted, status reports, apply latency, consumer restarts, "
        "the spec partition's lag, the certificate's expiry"
    ),
    metrics_host: str = probe_options.METRICS_HOST,
    log_level: str = logs.LEVEL,
    log_format: logs.Format = logs.FORMAT,
) -> None:
    """Run the agent of one cluster: apply its works, report their status."""
    logs.configure(log_level, log_format)
    gc_tuning.tune()
    settings = agent_service.AgentSettings(
        cluster=cluster,
        kubeconfig=kube_options.single_file(kube_options.load(kubeconfig, context)),
        kafka=_kafka(kafka, tls_dir, insecure, kafka_principals),
        server=server,
        credentials=tls_options.credentials(tls_dir, None, insecure),
        refresh_seconds=refresh,
        placement_check_seconds=placement_check,
        topics=layout.Layout(topic_prefix),
        health_port=health_port,
        health_host=health_host,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    try:
        asyncio.run(agent_service.run(settings))
    except AuthorizationError as exc:
        err.print(f"[red]error:[/red] {exc}")
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


LABELS = typer.Option([], "--label", "-l", help="A label, key=value (repeatable).")
CONSUMER_NAME = typer.Argument(..., help="The consumer's (cluster's) name.")


@consumers_app.command("create")
@connected
def consumers_create(
    connection: Connection,
    name: str = CONSUMER_NAME,
    label: list[str] = LABELS,
) -> None:
    """Register a cluster; allocates its Kafka partition."""
    c = connection.call(lambda m: m.create_consumer(name, _labels(label)))
    where = c.spec_placement
    who = trust_identity.Identity.cluster(c.name, c.slot or 0)
    console.print(
        f"consumer {c.name} created (incarnation {c.slot}): spec events on {where.topic}, status on "
        f"{c.status_topic}; its agent's Kafka principal is {who.kafka_principal} "
        f"({who.kafka_principal_as(trust_identity.PrincipalForm.SUBJECT)} where the brokers do not "
        "map subjects)"
    )


@consumers_app.command("list")
@connected
def consumers_list(
    connection: Connection,
    out: output.Format = output.OUTPUT,
) -> None:
    """Every registered cluster with its labels, incarnation and Kafka topics."""
    found = connection.call(lambda m: m.list_consumers())
    output.show([maestro_records.consumer(c) for c in found], maestro_records.CONSUMER_COLUMNS, out)


@consumers_app.command("get")
@connected
def consumers_get(
    connection: Connection,
    name: str = CONSUMER_NAME,
    out: output.Format = output.OUTPUT,
) -> None:
    """One registered cluster: its labels, incarnation, Kafka topics and partition."""
    c = connection.call(lambda m: m.get_consumer(name))
    output.show_one(maestro_records.consumer(c), maestro_records.CONSUMER_COLUMNS, out)


@consumers_app.command("label")
@connected
def consumers_label(
    connection: Connection,
    name: str = CONSUMER_NAME,
    label: list[str] = LABELS,
) -> None:
    """Replace a consumer's labels."""
    connection.call(lambda m: m.update_consumer_labels(name, _labels(label)))
    console.print(f"consumer {name} labelled")


@consumers_app.command("delete")
@connected
def consumers_delete(
    connection: Connection,
    name: str = CONSUMER_NAME,
) -> None:
    """Delete a consumer (refused while it still has works)."""
    connection.call(lambda m: m.delete_consumer(name))
    console.print(f"consumer {name} deleted")


@works_app.command("list")
@connected
def works_list(
    connection: Connection,
    consumer: str = WORKS_OF_CONSUMER,
    source: str = WORKS_OF_SOURCE,
    out: output.Format = output.OUTPUT,
) -> None:
    """Every work, page by page, with its version, state and status conditions (a source's
    certificate sees its own works)."""
    where = queries.ResourceFilter(consumer=consumer, source=source)
    items, _ = connection.call(lambda m: m.list_summaries(where))
    output.show([maestro_records.work(w) for w in items], maestro_records.WORK_COLUMNS, out)


@works_app.command("count")
@connected
def works_count(
    connection: Connection,
    consumer: str = WORKS_OF_CONSUMER,
    source: str = WORKS_OF_SOURCE,
) -> None:
    """How many works there are (deleting ones included), without listing them."""
    where = queries.ResourceFilter(consumer=consumer, source=source)
    console.print(connection.call(lambda m: m.count(where)))


@works_app.command("get")
@connected
def works_get(
    connection: Connection,
    work_id: str = typer.Argument(..., help="The work's id (a UUID, as `works list` shows it)."),
    out: output.Format = output.OUTPUT,
) -> None:
    """One work: its state and status conditions; with -o yaml or json also its spec, metadata and
    full status."""
    w = connection.call(lambda m: m.get_summary(work_id))
    output.show_one(maestro_records.work(w), maestro_records.WORK_COLUMNS, out)


@certificates_app.command("revoke")
@connected
def certificates_revoke(
    connection: Connection,
    serial: str = typer.Option(
        ...,
        "--serial",
        help="The certificate's serial: decimal, or hex with 0x (openssl x509 -noout -serial prints hex).",
    ),
    reason: str = typer.Option("", "--reason", help="Why, for whoever reads the list later."),
) -> None:
    """Refuse a client certificate from now on, on every replica (admin only)."""
    try:
        number = revocations.parse_serial(serial)
    except maestro_errors.InvalidArgument as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    done = connection.call(lambda m: m.revoke_certificate(number, reason))
    console.print(f"certificate 0x{revocations.serial_text(done.serial)} revoked by {done.revoked_by}")


@certificates_app.command("list")
@connected
def certificates_list(
    connection: Connection,
    out: output.Format = output.OUTPUT,
) -> None:
    """Every revoked serial (admin only)."""
    found = connection.call(lambda m: m.revoked_certificates())
    output.show(
        [maestro_records.revocation(r) for r in found],
        maestro_records.REVOCATION_COLUMNS,
        out,
        empty="No revoked certificates.",
    )


maestro_quarantine_cli.register(app)
