"""Prometheus metrics of the hub controllers: passes over ApplicationSets, the works and mirrors
they write, the statuses they carry back, and their errors.

One registry per operator (never the global one). Labels hold kinds, outcomes and loop names,
never the name of an ApplicationSet, a cluster or a work: their number grows with the fleet, and
a team's names are not for everyone who may scrape (docs/security.md). Served by
``fleetplane controllers run --metrics-port`` (``kubeio.kopf_operator.operate``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

APPLICATION_SET = "ApplicationSet"
#: what a pass over an ApplicationSet came to
CHANGED, UNCHANGED, PROBLEMS, SKIPPED, ERROR = "changed", "unchanged", "problems", "skipped", "error"
#: what a deletion step came to: the works all gone (and the mirrors deleted), or some left
DELETED, DELETING = "deleted", "deleting"
# From a pass that finds nothing to do (milliseconds) to one that writes thousands of works.
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "fleetplane_controllers_reconciles",
            "Passes over a hub resource, by kind and outcome (changed: works or mirrors written; "
            "problems: the resource's own errors, shown in its conditions; skipped: gone, deleting or "
            "not opted in; error: the pass failed and is retried; deleted/deleting: a deletion step "
            "found every work gone, or some left).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "fleetplane_controllers_reconcile_seconds",
            "Time of one pass, by kind.",
            ["kind"],
            buckets=PASS_BUCKETS,
            registry=self.registry,
        )
        self.works_published = Counter(
            "fleetplane_controllers_works_published",
            "Works sent to Maestro, by operation (create, update).",
            ["operation"],
            registry=self.registry,
        )
        self.works_deleted = Counter(
            "fleetplane_controllers_works_deleted",
            "Works whose deletion was asked of Maestro.",
            registry=self.registry,
        )
        self.mirror_writes = Counter(
            "fleetplane_controllers_mirror_writes",
            "Hub Applications (mirrors) written, by operation (apply, delete).",
            ["operation"],
            registry=self.registry,
        )
        self.status_updates = Counter(
            "fleetplane_controllers_status_updates",
            "Work statuses received from Maestro (its status watch and the periodic lists).",
            registry=self.registry,
        )
        self.status_writes = Counter(
            "fleetplane_controllers_status_writes",
            "Status writes to the hub, by kind and outcome (written; gone: no object to write to; "
            "refused: the hub rejects it as invalid; failed: retried).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "fleetplane_controllers_errors",
            "Failures of the controllers' loops, each retried, by loop (propagation, finalizer, "
            "sweep, mirror-watch, status-watch, status-list, status-write).",
            ["loop"],
            registry=self.registry,
        )
        self.status_writes_pending = Gauge(
            "fleetplane_controllers_status_writes_pending",
            "Status writes waiting for their turn (coalesced per object, rate-limited).",
            registry=self.registry,
        )
        self.application_sets = Gauge(
            "fleetplane_controllers_application_sets",
            "Opted-in ApplicationSets served (one propagation loop each).",
            registry=self.registry,
        )
