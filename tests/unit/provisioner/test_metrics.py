"""The provisioner's Prometheus metrics (``provisioner.metrics``) as a scraper reads them.

Cases: a pass is counted by kind, operation and outcome (done, requeued, error) and timed, a
cancelled one not at all; clusters are counted by state, each composite in one state at a time and
gone once forgotten; no label value names a composite.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from provisioner import metrics as metrics_mod
from provisioner.reconciler import Requeue

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: metrics_mod.ProvisionerMetrics) -> Samples:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def passes(samples: Samples, kind: str, operation: str, outcome: str) -> float:
    labels = (("kind", kind), ("operation", operation), ("outcome", outcome))
    return samples.get(("fleetplane_provisioner_reconciles_total", labels), 0)


def clusters(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "fleetplane_provisioner_clusters"
    }


def test_passes_are_counted_by_kind_operation_and_outcome() -> None:
    metrics = metrics_mod.ProvisionerMetrics()
    with metrics.reconciling(metrics_mod.COMPOSITE):
        pass
    with pytest.raises(Requeue), metrics.reconciling(metrics_mod.COMPOSITE):
        raise Requeue("cluster starting")
    with pytest.raises(RuntimeError), metrics.reconciling(metrics_mod.CLAIM, metrics_mod.DELETE):
        raise RuntimeError("hub away")
    with pytest.raises(asyncio.CancelledError), metrics.reconciling(metrics_mod.DEFINITION):
        raise asyncio.CancelledError
    samples = scrape(metrics)
    assert passes(samples, "composite", "reconcile", "done") == 1
    assert passes(samples, "composite", "reconcile", "requeued") == 1
    assert passes(samples, "claim", "delete", "error") == 1
    assert not [key for key in samples if ("kind", "definition") in key[1]]
    composite = (("kind", "composite"), ("operation", "reconcile"))
    timed = ("fleetplane_provisioner_reconcile_seconds_count", composite)
    assert samples[timed] == 2


def test_clusters_are_counted_by_state() -> None:
    metrics = metrics_mod.ProvisionerMetrics()
    assert clusters(scrape(metrics)) == dict.fromkeys(metrics_mod.STATES, 0)
    metrics.cluster("team-a-x7k2", metrics_mod.PROVISIONING)
    metrics.cluster("team-b-p9q1", metrics_mod.PROVISIONING)
    metrics.cluster("team-a-x7k2", metrics_mod.READY)
    metrics.cluster("team-c-m3n4", metrics_mod.FAILED)
    assert clusters(scrape(metrics)) == {"provisioning": 1, "ready": 1, "failed": 1, "deleting": 0}
    metrics.cluster("team-a-x7k2", metrics_mod.DELETING)
    metrics.forget_cluster("team-b-p9q1")
    assert clusters(scrape(metrics)) == {"provisioning": 0, "ready": 0, "failed": 1, "deleting": 1}
    assert metrics.cluster_state("team-a-x7k2") == metrics_mod.DELETING
    assert not [labels for _, labels in scrape(metrics) if any("team" in value for _, value in labels)]
