"""An agent's Prometheus metrics (``maestro.agent.metrics``) as a scraper reads them, after an agent
over an in-memory cluster applied, refused, skipped and deleted work; and the spec partition's lag
from the consumer's cached end offsets (``Reader.lag``).

Cases: before the agent has started only the latency histogram exists; then applies by outcome,
deletions, spec events by outcome, status reports acknowledged, bundles held, consumer restarts,
certificate reloads, the lag and the certificate's seconds left; no label names a cluster or a
work; the lag is unknown until the reader knows where it stands, zero on an empty partition.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from maestro.agent.agent_loop import Agent
from maestro.agent.errors import ClusterError
from maestro.agent.memory import MemoryApplier
from maestro.agent.metrics import AgentMetrics, Sources
from maestro.api import bundles, events
from tests.unit.maestro import kafkafakes
from tests.unit.maestro.agent.test_agent_loop import STATUS_TOPIC, Sent, configmap_bundle, spec_message
from tests.unit.maestro.kafkafakes import FakeConsumer, FakeMessage

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: AgentMetrics) -> Samples:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_scrape_shows_what_the_agent_did() -> None:
    metrics = AgentMetrics(clock=lambda: 1_000.0)
    assert {name for name, _ in scrape(metrics)} == {
        "maestro_agent_apply_seconds_bucket",
        "maestro_agent_apply_seconds_count",
        "maestro_agent_apply_seconds_sum",
        "maestro_agent_apply_seconds_created",
    }
    sent = Sent()
    applier = MemoryApplier("c1", argocd_sync_delay=0)
    agent = Agent(
        applier,
        sent,
        status_topic=STATUS_TOPIC,
        on_apply=metrics.apply_seconds.observe,
    )
    await agent.start()
    metrics.attach(
        Sources(
            stats=agent.stats,
            held=lambda: agent.held,
            consumer_restarts=lambda: 2,
            renewals=lambda: 1,
            lag=lambda: 7,
            not_after=lambda: 4_600.0,
        )
    )
    kept, gone = uuid.uuid4(), uuid.uuid4()
    create = events.Action.CREATE_REQUEST
    await agent.handle(
        [
            spec_message(configmap_bundle(kept, 1, "a"), 0, create),
            spec_message(configmap_bundle(gone, 1, "b"), 1, create),
            spec_message(configmap_bundle(kept, 1, "a"), 2, create),
            spec_message(configmap_bundle(uuid.uuid4(), 1, "x", consumer="c2"), 3, create),
        ]
    )
    applier.backend.write_errors[("", "configmaps", "default", "cm")] = ClusterError("forbidden", status=403)
    await agent.handle([spec_message(configmap_bundle(uuid.uuid4(), 1, "c"), 4, create)])
    deleting = bundles.ResourceBundle(
        id=gone, consumer="c1", source="hub", version=1, manifests=[], deleted_at=datetime.now(UTC)
    )
    await agent.handle([spec_message(deleting, 5, events.Action.DELETE_REQUEST)])

    samples = scrape(metrics)
    assert samples[("maestro_agent_applies_total", (("outcome", "applied"),))] == 2
    assert samples[("maestro_agent_applies_total", (("outcome", "failed"),))] == 1
    assert samples[("maestro_agent_deletions_total", ())] == 1
    assert samples[("maestro_agent_spec_events_total", (("outcome", "skipped"),))] == 1
    assert samples[("maestro_agent_spec_events_total", (("outcome", "rejected"),))] == 1
    assert samples[("maestro_agent_spec_events_total", (("outcome", "handled"),))] == 4
    reports = len(sent.messages) - 1  # all but the resync request sent at start
    assert samples[("maestro_agent_status_reports_total", ())] == reports > 0
    assert samples[("maestro_agent_bundles", ())] == agent.held == 2
    assert samples[("maestro_agent_apply_seconds_count", ())] == 3
    assert samples[("maestro_agent_consumer_restarts_total", ())] == 2
    assert samples[("maestro_agent_certificate_reloads_total", ())] == 1
    assert samples[("maestro_agent_spec_lag_messages", ())] == 7
    assert samples[("maestro_agent_certificate_expiry_seconds", ())] == 3_600
    assert {label for _, labels in samples for label, _ in labels} <= {"outcome", "le"}


def test_the_lag_is_read_from_the_consumers_cached_end_offsets() -> None:
    consumer = FakeConsumer([[FakeMessage(4)]], committed=2)
    reader = kafkafakes.reader(consumer)
    assert reader.lag() is None, "nothing assigned: unknown"
    reader.assign([("t.spec", 0)])
    consumer.end_offset = 10
    assert reader.lag() == 8
    reader.poll_batch_sync(10, 0)
    assert reader.lag() == 5
    consumer.broker_away = True
    assert reader.lag() is None


def test_a_partition_read_from_its_beginning_lags_from_its_start() -> None:
    consumer = FakeConsumer()
    reader = kafkafakes.reader(consumer)
    reader.assign([("t.spec", 0)])
    assert reader.lag() == 0, "an empty partition"
    consumer.end_offset = 3
    assert reader.lag() == 3


def test_a_group_members_lag_is_read_from_its_assigned_positions() -> None:
    """The server's status reader joins a group by pattern: its lag is over the partitions the group
    gave it, from where it stands in each."""
    consumer = FakeConsumer()
    reader = kafkafakes.reader(consumer)
    reader.subscribe(["^t\\.status\\..*"])
    assert reader.lag() is None, "nothing assigned yet: unknown"
    consumer.positions = {("t.status.1", 0): 4, ("t.status.2", 0): -1001}
    consumer.end_offset = 6
    # 2 behind on the first; the second not read yet, from its start (0)
    assert reader.lag() == 2 + 6
    consumer.positions = {("t.status.1", 0): 6, ("t.status.2", 0): 6}
    assert reader.lag() == 0
