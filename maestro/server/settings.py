"""The server's settings, one small dataclass; the CLI fills it from flags."""

from __future__ import annotations

import dataclasses
import socket
from datetime import timedelta
from pathlib import Path

from maestro.api import lifecycle, quarantine, queries, validation
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings
from maestro.transport.topic_settings import BROKER_DEFAULTS, TopicSettings
from trust import files
from trust.identity import DEFAULT_TRUST_DOMAIN


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    dsn: str
    #: the brokers, and the server's identity to them (a super user: it creates every cluster's
    #: topics and ACLs)
    kafka: KafkaSettings
    host: str = "127.0.0.1"
    port: int = 8090
    # One bundle size limit; gRPC's and Kafka's message limits are derived from it.
    bundle_limit: int = validation.DEFAULT_MAX_BUNDLE_BYTES
    # A bundle being deleted whose agent does not confirm within this is dropped (orphaned).
    deletion_grace: timedelta = timedelta(minutes=10)
    heartbeat_seconds: float = 10.0
    relay_batch: int = 1000
    ingest_batch: int = 2000
    # An event that fails this many times for its own reasons (Kafka refusing a spec event for
    # good, a status the database will not take) is quarantined (maestro.api.quarantine).
    quarantine_after: int = quarantine.DEFAULT_ATTEMPTS
    pool_size: int = 16
    # The status reader restarts its consumer after polling this long with nothing received
    # while the group's committed offsets lag the broker and do not move (`transport.consumer.Reader`).
    stall_seconds: float = 30.0
    # How often the status reader reads the topic list again, to pick up the status topic of a
    # cluster registered at another replica (the replica that registers one picks it up at once).
    status_topics_refresh: float = 10.0
    topics: layout.Layout = layout.DEFAULT
    # The spec and status topics' replication and configs, set on existing topics too at start.
    topic_settings: TopicSettings = BROKER_DEFAULTS
    server_id: str = dataclasses.field(default_factory=lambda: f"maestro-{socket.gethostname()}")
    # Open status streams (Subscribe, WatchStatus, WatchStatusBatches) this replica serves, in all
    # and per caller (as authenticated: a certificate's identity or a token's user; the calls of an
    # insecure server count against the total only). One more is refused with RESOURCE_EXHAUSTED.
    # Each open stream reads the database on every stored status change.
    max_streams: int = 1000
    max_streams_per_caller: int = 100
    # Resync answers (status events) a Subscribe stream may have unsent before it is ended with
    # RESOURCE_EXHAUSTED: its client reads too slowly. An idle stream takes any one answer whole.
    stream_backlog: int = 10_000
    # Bundles in one page of a list call, whatever the client asks (at most queries.MAX_PAGE_SIZE).
    max_page_size: int = queries.MAX_PAGE_SIZE
    # What one page's documents weigh at most, whatever the count (a single larger bundle comes
    # alone): pages fit clients' message limits whatever the bundle sizes.
    max_page_bytes: int = queries.DEFAULT_PAGE_BYTES
    # How far past this server's clock a status report's sequence id may be (they are the agents'
    # clocks in nanoseconds): beyond it the report is refused; see lifecycle.check_sequence.
    status_sequence_ahead: timedelta = lifecycle.DEFAULT_SEQUENCE_AHEAD
    # The server's serving certificate and the CA its clients' certificates must chain to. None
    # only with `insecure`: plaintext, and every caller may do everything.
    tls: files.TLSFiles | None = None
    insecure: bool = False
    # A second TLS port for callers with a Kubernetes token instead of a certificate (gRPC's Python
    # server either requires client certificates on a port or does not ask for them). None: none.
    token_port: int | None = None
    # The hub that reviews tokens and their permissions; None: the pod's own (in-cluster) account.
    hub_kubeconfig: Path | None = None
    # Audiences a token must be issued for (empty: the hub API server's own).
    token_audiences: tuple[str, ...] = ()
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    # Where /healthz and /readyz answer plain HTTP (maestro.server.readiness); None: nowhere, 0: a
    # free port.
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    # Where /metrics answers Prometheus (maestro.server.metrics); None: nowhere, and no call is
    # counted.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Where upstream Maestro's REST API answers (maestro.server.rest_api), on ``host``; None:
    # nowhere, 0: a free port.
    rest_port: int | None = None
    # How long a token review or a permission answer is reused.
    auth_cache_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "max_streams",
            "max_streams_per_caller",
            "stream_backlog",
            "max_page_size",
            "max_page_bytes",
            "quarantine_after",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_page_size > queries.MAX_PAGE_SIZE:
            raise ValueError(f"max_page_size must be at most {queries.MAX_PAGE_SIZE}")
        if self.status_sequence_ahead <= timedelta(0):
            raise ValueError("status_sequence_ahead must be positive")
        if self.insecure and (self.tls is not None or self.token_port is not None):
            raise ValueError("an insecure server serves plaintext: give it no TLS files and no token port")
        if not self.insecure and (self.tls is None or not self.tls.has_identity):
            raise ValueError(
                "the server needs its TLS files (ca.crt, tls.crt, tls.key: --tls-dir), "
                "or --insecure to serve plaintext to anyone"
            )

    @property
    def grpc_message_limit(self) -> int:
        """What a client may send: one bundle and its envelope."""
        return self.bundle_limit + 64 * 1024

    @property
    def grpc_reply_limit(self) -> int:
        """What the server may answer: a page of up to 500 bundles with their status."""
        return max(64 * 1024 * 1024, 8 * self.grpc_message_limit)
