"""The server's settings, one small dataclass; the CLI fills it from flags."""

from __future__ import annotations

import dataclasses
import socket
from datetime import timedelta

from maestro.api import validation
from maestro.transport import layout


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    dsn: str
    kafka: str
    host: str = "127.0.0.1"
    port: int = 8090
    # One bundle size limit; gRPC's and Kafka's message limits are derived from it.
    bundle_limit: int = validation.DEFAULT_MAX_BUNDLE_BYTES
    # A bundle being deleted whose agent does not confirm within this is dropped (orphaned).
    deletion_grace: timedelta = timedelta(minutes=10)
    heartbeat_seconds: float = 10.0
    relay_batch: int = 1000
    ingest_batch: int = 2000
    pool_size: int = 16
    # The status reader restarts its consumer after polling this long with nothing received
    # while the group's committed offsets lag the broker and do not move (clients.Reader).
    stall_seconds: float = 30.0
    topics: layout.Layout = layout.DEFAULT
    server_id: str = dataclasses.field(default_factory=lambda: f"maestro-{socket.gethostname()}")

    @property
    def grpc_message_limit(self) -> int:
        """What a client may send: one bundle and its envelope."""
        return self.bundle_limit + 64 * 1024

    @property
    def grpc_reply_limit(self) -> int:
        """What the server may answer: a page of up to 500 bundles with their status."""
        return max(64 * 1024 * 1024, 8 * self.grpc_message_limit)
