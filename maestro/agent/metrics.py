"""Prometheus metrics of one agent: what it applied, deleted and reported, its Kafka consumer, and
its certificate.

Counts are the agent's own ``AgentStats`` and its Kafka link's, read when scraped, so the apply
path counts nothing twice; only the apply latency is a histogram fed as applies finish. No label
names a cluster, a source or a work: an agent serves one cluster, which the scraper's own target
labels name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from maestro.agent.agent_loop import AgentStats

# From a bundle of one small object (a few milliseconds) to one that waits on a slow API server.
APPLY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class Sources:
    """What the scrape reads: the agent's counts and its Kafka link's figures."""

    stats: AgentStats
    #: bundles held now
    held: Callable[[], int]
    consumer_restarts: Callable[[], int]
    renewals: Callable[[], int]
    #: messages of the spec partition not read yet (None: unknown)
    lag: Callable[[], int | None]
    #: the certificate's notAfter, seconds since the epoch (None: no certificate)
    not_after: Callable[[], float | None]


class AgentMetrics:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.apply_seconds = Histogram(
            "maestro_agent_apply_seconds",
            "Time to apply one bundle version to the cluster (every manifest, its record, its prunes).",
            buckets=APPLY_BUCKETS,
            registry=self.registry,
        )
        self._collector = _Collector(clock)
        self.registry.register(self._collector)

    def attach(self, sources: Sources) -> None:
        """Report these from now on (before, the agent is starting: only its latencies show)."""
        self._collector.sources = sources


class _Collector(Collector):
    def __init__(self, clock: Callable[[], float]) -> None:
        self.sources: Sources | None = None
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        found = self.sources
        if found is None:
            return
        stats = found.stats
        applies = CounterMetricFamily(
            "maestro_agent_applies",
            "Bundle versions applied to the cluster, by outcome (failed: a manifest or the record "
            "was refused).",
            labels=["outcome"],
        )
        applies.add_metric(["applied"], stats.applied - stats.failed)
        applies.add_metric(["failed"], stats.failed)
        yield applies
        yield CounterMetricFamily(
            "maestro_agent_deletions",
            "Bundles whose deletion finished: everything they applied is gone from the cluster.",
            value=stats.deleted,
        )
        events = CounterMetricFamily(
            "maestro_agent_spec_events",
            "Spec events read from Kafka, by outcome (skipped: a version already applied, as after a "
            "restart; rejected: malformed or for another cluster).",
            labels=["outcome"],
        )
        events.add_metric(["handled"], stats.messages_read - stats.skipped - stats.rejected)
        events.add_metric(["skipped"], stats.skipped)
        events.add_metric(["rejected"], stats.rejected)
        yield events
        yield CounterMetricFamily(
            "maestro_agent_status_reports",
            "Status reports Kafka acknowledged on the cluster's status topic.",
            value=stats.reports,
        )
        yield GaugeMetricFamily(
            "maestro_agent_bundles",
            "Bundles the agent holds (applied, or being deleted).",
            value=found.held(),
        )
        yield CounterMetricFamily(
            "maestro_agent_consumer_restarts",
            "Times the spec consumer was started afresh because it stopped reading while the broker "
            "held more for it.",
            value=found.consumer_restarts(),
        )
        yield CounterMetricFamily(
            "maestro_agent_certificate_reloads",
            "Times the agent's Kafka clients were made again with renewed certificate files.",
            value=found.renewals(),
        )
        lag = found.lag()
        if lag is not None:
            yield GaugeMetricFamily(
                "maestro_agent_spec_lag_messages",
                "Spec events the broker holds for this cluster that the agent has not read yet.",
                value=lag,
            )
        not_after = found.not_after()
        if not_after is not None:
            yield GaugeMetricFamily(
                "maestro_agent_certificate_expiry_seconds",
                "Seconds until the agent's certificate (its identity to Maestro and Kafka) expires; "
                "negative once it has.",
                value=not_after - self._clock(),
            )
