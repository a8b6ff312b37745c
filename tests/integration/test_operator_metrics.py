"""The kopf operators' metrics as a Prometheus scraper sees them: ``fleetplane controllers run`` and
``fleetplane provisioner run`` as real processes with ``--metrics-port``, against the real hub and a
Maestro server (in this test's event loop) on the session's PostgreSQL and Kafka.

Cases, controllers: their /readyz turns 200 once they watch and reach the hub and Maestro; an
opted-in ApplicationSet over a one-cluster inventory of its own is passed over (changed), its work
published and its mirror applied; deleted, its finalizer's steps are counted (deleting, then
deleted) with the work it deleted; the Maestro server stopped, /readyz answers 503 naming it while
/healthz still answers. Provisioner: /readyz turns 200 once it installed its CRDs and watches; a
definition and a Composition of their own are reconciled; a composite whose cluster the local
provider starts is counted ready, one asking for a provider this provisioner lacks failed; deleted,
their deletions are counted and no cluster is left in any state. Neither scrape has a label naming
an ApplicationSet, a cluster or a composite.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from localinfra import kube, kubectl, pki, ports
from localinfra.environment import Environment
from localinfra.errors import InfraError
from maestro.server import app
from maestro.transport.connection import KafkaSettings
from tests.integration import probing
from tests.integration.maestro.conftest import Identities, MaestroUnderTest, server_settings
from trust.identity import Identity

pytestmark = pytest.mark.integration
FIELD_MANAGER = "probes-test"


@pytest.fixture
async def maestro(
    pg_dsn: str, kafka_settings: KafkaSettings, infra_env: Environment, tmp_path: Path
) -> AsyncIterator[MaestroUnderTest]:
    identities = Identities(pki.platform_ca(infra_env), tmp_path / "identities")
    settings = server_settings(pg_dsn, kafka_settings, identities)
    running = await app.start(settings)
    try:
        yield MaestroUnderTest(running, settings, identities)
    finally:
        await running.stop()


def operator_args(command: str, hub: kube.Cluster, maestro: MaestroUnderTest, who: Identity) -> list[str]:
    """``fleetplane <command> run`` on the hub, calling Maestro as ``who``, live on a free port."""
    return [
        command, "run", "--kubeconfig", str(hub.kubeconfig), "--maestro", maestro.address,
        "--tls-dir", str(maestro.identities.issue(who)),
        "--liveness", f"http://127.0.0.1:{ports.free_port()}/healthz",
    ]  # fmt: skip


def delete(hub: kube.Cluster, *what: str) -> None:
    kubectl.run(hub.kubeconfig, "delete", "--ignore-not-found", "--wait=false", *what)


async def test_the_controllers_count_their_passes_works_and_deletions(
    hub: kube.Cluster, maestro: MaestroUnderTest, infra_env: Environment, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    inventory, apps, cluster = f"probes-inv-{run}", f"probes-apps-{run}", f"probes-c-{run}"
    async with maestro.client() as client:
        await client.create_consumer(cluster)
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in (inventory, apps)
    ]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"cluster-{cluster}",
            "namespace": inventory,
            "labels": {"argocd.argoproj.io/secret-type": "cluster"},
        },
        "stringData": {"name": cluster, "server": f"https://{cluster}.example:6443"},
    }
    appset = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "guestbook", "namespace": apps, "labels": {"fleetplane.io/pull": "true"}},
        "spec": {
            "generators": [{"clusters": {"selector": {"matchLabels": secret["metadata"]["labels"]}}}],
            "template": {
                "metadata": {"name": "{{name}}-guestbook"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://git.example/apps.git", "path": "guestbook"},
                    "destination": {"name": "{{name}}", "namespace": "guestbook"},
                },
            },
        },
    }
    kubectl.apply(hub.kubeconfig, [*namespaces, secret, appset], field_manager=FIELD_MANAGER)
    metrics, health, log = ports.free_port(), ports.free_port(), tmp_path / "controllers.log"
    args = operator_args("controllers", hub, maestro, Identity.source("fleetplane"))
    args += ["--inventory-namespace", inventory, "--mirror-status-wait", "1", "--metrics-port", str(metrics)]
    args += ["--health-port", str(health)]
    try:
        async with probing.fleetplane(infra_env, f"probes/controllers-{run}", args, log):
            await probing.eventually(
                lambda: probing.ready(health), "the controllers ready", timeout=30, log=log
            )

            async def counted(name: str, **labels: str) -> probing.Samples | None:
                found = await probing.answers(metrics, "/metrics")
                if found is None:
                    return None
                samples = await probing.scrape(metrics)
                return samples if probing.value(samples, name, **labels) >= 1 else None

            # The pass ends once the mirror is written, which waits (--mirror-status-wait, a second
            # here) for a status no agent sends.
            changed = {"kind": "ApplicationSet", "outcome": "changed"}
            passed = await probing.eventually(
                lambda: counted("fleetplane_controllers_reconciles_total", **changed),
                "the pass that published the work",
                timeout=30,
                log=log,
            )
            create = {"operation": "create"}
            assert probing.value(passed, "fleetplane_controllers_works_published_total", **create) == 1
            assert probing.value(passed, "fleetplane_controllers_mirror_writes_total", **create) == 1
            assert probing.value(passed, "fleetplane_controllers_application_sets") == 1
            # the only replica leads (election is on by default)
            assert probing.value(passed, "fleetplane_leader") == 1
            assert probing.value(
                passed, "fleetplane_controllers_reconcile_seconds_count", kind="ApplicationSet"
            )

            delete(hub, "applicationset", "guestbook", "-n", apps)
            done = {"kind": "ApplicationSet", "outcome": "deleted"}
            deleted = await probing.eventually(
                lambda: counted("fleetplane_controllers_reconciles_total", **done),
                "the ApplicationSet's deletion finished",
                timeout=30,
                log=log,
            )

            await maestro.running.server.stop(grace=0)  # the fixture's stop finishes the rest
            unreachable = f"the Maestro server at {maestro.address} does not answer: UNAVAILABLE: "

            async def maestro_named() -> str | None:
                status, body = await probing.http_get(health, "/readyz")
                return body if status == 503 and body.startswith(unreachable) else None

            reason = await probing.eventually(maestro_named, "/readyz naming the Maestro server", log=log)
            assert len(reason.splitlines()) == 1, reason
            assert await probing.http_get(health, "/healthz") == (200, "ok\n")
    finally:
        delete(hub, "namespace", inventory, apps)
    deleting = {"kind": "ApplicationSet", "outcome": "deleting"}
    assert probing.value(deleted, "fleetplane_controllers_reconciles_total", **deleting) >= 1
    assert probing.value(deleted, "fleetplane_controllers_works_deleted_total") == 1
    assert probing.value(deleted, "fleetplane_controllers_mirror_writes_total", operation="delete") == 1
    assert probing.value(deleted, "fleetplane_controllers_application_sets") == 0
    named = {v for v in probing.label_values(deleted) if run in v or v == "guestbook"}
    assert not named, named


def definition(group: str, composition: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "parameters": {"type": "object", "properties": {"provider": {"type": "string"}}}
                },
            }
        },
    }
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": f"probeclusters.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "ProbeCluster", "plural": "probeclusters"},
            "claimNames": {"kind": "ProbeClusterClaim", "plural": "probeclusterclaims"},
            "defaultCompositionRef": {"name": composition},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "referenceable": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


# Only the cluster: the local provider starts a kube-apiserver for it, and it is Ready.
TEMPLATE = """\
---
name: cluster
target: provider
object:
  apiVersion: fleetplane.io/v1alpha1
  kind: ClusterConfig
  metadata:
    name: {{ name | tojson }}
  spec:
    provider: {{ parameters.provider | tojson }}
"""


def composition(group: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Composition",
        "metadata": {"name": name},
        "spec": {
            "compositeTypeRef": {"apiVersion": f"{group}/v1alpha1", "kind": "ProbeCluster"},
            "template": {"inline": TEMPLATE},
        },
    }


def composite(group: str, name: str, provider: str, **spec: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1alpha1",
        "kind": "ProbeCluster",
        "metadata": {"name": name},
        "spec": {"parameters": {"provider": provider}, **spec},
    }


async def test_the_provisioner_counts_its_passes_and_its_clusters_by_state(
    hub: kube.Cluster,
    maestro: MaestroUnderTest,
    kafka_bootstrap: str,
    etcd_url: str,
    infra_env: Environment,
    tmp_path: Path,
) -> None:
    run = uuid.uuid4().hex[:6]
    group, made = f"p{run}.probes.fleetplane.io", f"probe-{run}"
    ready, failed = f"probe-{run}", f"probe-{run}-aws"
    metrics, health, log = ports.free_port(), ports.free_port(), tmp_path / "provisioner.log"
    args = operator_args("provisioner", hub, maestro, Identity.admin("provisioner"))
    args += [
        "--kafka", kafka_bootstrap, "--local-env", str(infra_env.root), "--topic-prefix",
        maestro.settings.topics.prefix, "--inventory-namespace", f"probes-inv-{run}",
        "--metrics-port", str(metrics), "--health-port", str(health),
    ]  # fmt: skip

    def clusters(samples: probing.Samples) -> dict[str, float]:
        return {
            dict(labels)["state"]: value
            for (name, labels), value in samples.items()
            if name == "fleetplane_provisioner_clusters"
        }

    async def scraped(want: Mapping[str, float]) -> probing.Samples | None:
        found = await probing.answers(metrics, "/metrics")
        if found is None:
            return None
        samples = await probing.scrape(metrics)
        return samples if clusters(samples) == want else None

    async def applied() -> bool:
        """The definition, its Composition and two composites, once the provisioner serves their
        kinds (its own CRDs at its start, the composite kind once it took the definition)."""
        try:
            kubectl.apply(
                hub.kubeconfig,
                [
                    definition(group, made),
                    composition(group, made),
                    composite(group, ready, "local"),
                    composite(group, failed, "aws", deletionPolicy="Orphan"),
                ],
                field_manager=FIELD_MANAGER,
            )
        except InfraError:
            return False
        return True

    try:
        async with probing.fleetplane(infra_env, f"probes/provisioner-{run}", args, log):
            await probing.eventually(
                lambda: probing.ready(health), "the provisioner ready", timeout=30, log=log
            )
            await probing.eventually(applied, "the composites created", timeout=30, log=log)
            both = {"provisioning": 0, "ready": 1, "failed": 1, "deleting": 0}
            served = await probing.eventually(
                lambda: scraped(both), "one ready, one failed", timeout=60, log=log
            )
            delete(hub, "probeclusters." + group, ready, failed)
            none = dict.fromkeys(both, 0)
            deleted = {"kind": "composite", "operation": "delete", "outcome": "done"}

            async def both_deleted() -> probing.Samples | None:
                found = await scraped(none)
                done = found and probing.value(found, "fleetplane_provisioner_reconciles_total", **deleted)
                return found if done and done >= 2 else None

            gone = await probing.eventually(
                both_deleted, "no cluster left, both deletions done", timeout=60, log=log
            )
    finally:
        delete(
            hub,
            f"compositions.fleetplane.io/{made}",
            f"compositeresourcedefinitions.fleetplane.io/probeclusters.{group}",
        )
    for kind in ("definition", "composition", "composite"):
        done = {"kind": kind, "operation": "reconcile", "outcome": "done"}
        assert probing.value(served, "fleetplane_provisioner_reconciles_total", **done) >= 1, kind
    requeued = {"kind": "composite", "operation": "reconcile", "outcome": "requeued"}
    assert probing.value(served, "fleetplane_provisioner_reconciles_total", **requeued) >= 1
    assert (
        "fleetplane_provisioner_reconcile_seconds_count",
        (("kind", "composite"), ("operation", "reconcile")),
    ) in served
    named = {v for v in probing.label_values(gone) if run in v}
    assert not named, named
