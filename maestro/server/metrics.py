"""Prometheus metrics of one replica: its gRPC calls, its outbox, its status ingest and the works.

Each replica keeps its own registry (two replicas in one process, as in the tests, count apart).
Calls are counted and timed per method and status code by a server interceptor; for a streaming
call the time is the stream's whole life. The outbox's depth and its oldest event's age are read
from PostgreSQL every ``OUTBOX_PERIOD`` seconds by one count over the outbox (rows leave it as soon
as Kafka has them, so it stays small while the relay keeps up): an age that grows means events do
not reach the clusters. The works by state are counted every ``WORKS_PERIOD`` seconds (one pass
over every work's scalar columns: ~0.1 s of the database's time at 150,000 works). The status
ingest's lag is its Kafka reader's, read when scraped (no request to the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kubeio import probes
from maestro.api import quarantine
from maestro.storage import resource_sql
from maestro.storage import store as store_mod

log = logging.getLogger(__name__)

# From a cached read (about a millisecond) to a long stream (minutes).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600)
OUTBOX_PERIOD = 15.0
WORKS_PERIOD = 60.0


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.handled = Counter(
            "maestro_grpc_server_handled",
            "gRPC calls finished, by method and status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.handling = Histogram(
            "maestro_grpc_server_handling_seconds",
            "Time from a gRPC call's start to its end (a stream's whole life), by method and status code.",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbox_events = Gauge(
            "maestro_outbox_events",
            "Spec events stored and not yet relayed to Kafka.",
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "maestro_outbox_oldest_event_age_seconds",
            "Age of the oldest spec event not yet relayed to Kafka (0: none waits).",
            registry=self.registry,
        )
        self.quarantined = Gauge(
            "maestro_quarantined_events",
            "Events set aside after failing for their own reasons, by kind (spec: Kafka refused it "
            "for good; status: it did not decode or store). `fleetplane maestro quarantine list`.",
            ["kind"],
            registry=self.registry,
        )
        for kind in quarantine.Kind:
            self.quarantined.labels(kind.value)
        self.works = Gauge(
            "maestro_works",
            "Works by state (pending: its cluster has not reported on its current spec yet; reported; "
            "deleting: waiting for its cluster to remove it). Every replica counts them all.",
            ["state"],
            registry=self.registry,
        )
        for state in resource_sql.WORK_STATES:
            self.works.labels(state)
        self._ingest = _IngestLag()
        self.registry.register(self._ingest)

    def interceptor(self) -> grpc.aio.ServerInterceptor:
        return _Observing(self)

    def routes(self) -> dict[str, probes.Handler]:
        return probes.metrics_routes(self.registry)

    def watch_ingest(self, lag: Callable[[], int | None]) -> None:
        """Report the status ingest's lag from now on (None: unknown, not reported)."""
        self._ingest.lag = lag

    async def sample_outbox(self, st: store_mod.Store, period: float = OUTBOX_PERIOD) -> None:
        """Read the outbox's depth and age, and the quarantine's counts, every ``period`` seconds,
        until cancelled."""

        async def read() -> None:
            depth, age = await st.outbox_backlog()
            self.outbox_events.set(depth)
            self.outbox_oldest_age.set(age)
            for kind, count in (await st.quarantine_counts()).items():
                self.quarantined.labels(kind.value).set(count)

        await _every(period, read, "the outbox's depth")

    async def sample_works(self, st: store_mod.Store, period: float = WORKS_PERIOD) -> None:
        """Count the works by state every ``period`` seconds, until cancelled."""

        async def read() -> None:
            for state, count in (await st.works_by_state()).items():
                self.works.labels(state).set(count)

        await _every(period, read, "the works by state")

    @contextlib.contextmanager
    def observing(self, method: str, context: grpc.aio.ServicerContext) -> Iterator[None]:
        started = time.monotonic()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            code = _code(context, error)
            self.handled.labels(method, code).inc()
            self.handling.labels(method, code).observe(time.monotonic() - started)


async def _every(period: float, read: Callable[[], Awaitable[None]], what: str) -> None:
    while True:
        try:
            await read()
        except Exception as exc:  # the database away: keep the last figures, try again
            log.warning("reading %s failed: %s", what, exc)
        await asyncio.sleep(period)


class _IngestLag(Collector):
    def __init__(self) -> None:
        self.lag: Callable[[], int | None] | None = None

    def collect(self) -> Iterator[Metric]:
        found = self.lag() if self.lag is not None else None
        if found is not None:
            yield GaugeMetricFamily(
                "maestro_status_ingest_lag_messages",
                "Status events the broker holds on the status partitions this replica reads that it "
                "has not ingested yet.",
                value=found,
            )


def _code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    """The status the call ended with: the one set or aborted with, else what its end implies."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.UNKNOWN.name if error is not None else grpc.StatusCode.OK.name


Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]


def _observed(behavior: Behavior, method: str, metrics: ServerMetrics) -> Behavior:
    # gRPC tells a handler's kind by its function (coroutine or async generator): keep it.
    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            with metrics.observing(method, context):
                async for reply in behavior(request, context):
                    yield reply

        return streaming

    async def answering(request: Any, context: grpc.aio.ServicerContext) -> Any:
        with metrics.observing(method, context):
            return await behavior(request, context)

    return answering


class _Observing(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        kinds = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
        replaced = {
            kind: _observed(getattr(handler, kind), method, self._metrics)
            for kind in kinds
            if getattr(handler, kind) is not None
        }
        return handler._replace(**replaced)  # type: ignore[attr-defined,no-any-return]
