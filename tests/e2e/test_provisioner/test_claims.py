"""A team asks for a worker cluster with ``kubectl apply`` and gets one, with Argo CD and a Maestro agent.

On the module's provisioner (``kit.platform``: the real hub, etcd, PostgreSQL, Kafka, a Maestro
server whose deletion grace leaves a loaded machine's agents time to confirm). Cases:
- a ClusterClaim becomes Ready: a new kube-apiserver answers with the connection secret's
  kubeconfig; its Argo CD synced the ``worker-apps`` Application from a local git repository; the
  cluster is a Maestro consumer and in the hub inventory with the claim's labels; its agent holds
  a certificate of that registration, issued by the provisioner, and its Argo CD repo-server a
  serving certificate of the same CA, rolled onto it; its Redis a serving certificate and each
  Redis client one of its own; a ManifestWork sent through Maestro is applied on it by its agent;
  deleting the claim removes, in order, the inventory entry, the live work, the Application, the
  agent, the consumer, Argo CD and the cluster, and revokes the agent's certificate;
- a claim that sets a reserved inventory label (``fleetplane.io/...``) is refused naming it, and
  the inventory carries the platform's ``fleetplane.io/team`` (the claim's namespace);
- a claim that breaks the schema is refused by the API server naming the field; a composition
  whose template fails sets Synced=False with the template line, and creates nothing;
- under the Manual update policy, a provisioner restart adopts the running cluster, the composite
  stays on its revision after the Composition changes (a pass has run since: the provisioner's
  metrics say so), and moves (re-rendering the inventory labels) when the claim pins the new one;
- under ``deletionPolicy: Orphan`` the cluster keeps running, and the composite's last status and
  an Event say what was kept.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import stat
import uuid
from typing import Any

import pytest
import yaml
from cryptography import x509

from kubeio.rest import KubeRest
from localinfra import kube, kubectl, process
from localinfra.environment import Environment
from maestro import client_errors
from maestro.api import bundles
from tests.e2e.conftest import INVENTORY_NAMESPACE, fleetplane
from tests.e2e.test_provisioner.deletion_order import deletion_order
from tests.e2e.test_provisioner.kit import (
    CONFIGMAPS_IN_DEFAULT,
    GROUP,
    TEAM,
    Platform,
    certificate,
    claim,
    configmap,
    events,
    inventory_entry,
    last_state,
    maestro_client,
    patch,
    revision_of,
    secret_ref,
    watch_composite,
    worker_api,
)
from trust import identity
from trust.identity import Identity

pytestmark = pytest.mark.e2e
#: Maestro drops a delete its agent did not confirm within this (the module's Maestro server's
#: --deletion-grace): long enough for a loaded machine's agent to confirm
MAESTRO_DELETION_GRACE = 60.0

# line 5 names a parameter no claim has
BROKEN_TEMPLATE = """name: cluster
target: provider
object:
  spec:
    provider: {{ parameters.nope.deeper }}
"""


async def test_a_claim_becomes_a_working_cluster_and_deleting_it_leaves_nothing(platform: Platform) -> None:
    name = f"e2e-{uuid.uuid4().hex[:5]}"
    await asyncio.to_thread(
        kubectl.apply,
        platform.hub.kubeconfig,
        [claim(name, platform.apps_repo, {"env": "e2e", "team": "a"}, CONFIGMAPS_IN_DEFAULT)],
    )
    await platform.eventually(f"claim {name} Ready", lambda: platform.ready(name))
    bound = await platform.claim(name)
    assert bound is not None
    cluster = bound["spec"]["resourceRef"]["name"]
    assert {c["type"]: c["status"] for c in bound["status"]["conditions"]} == {
        "Synced": "True",
        "Ready": "True",
    }
    # `kubectl get clusterclaims` shows the composition revision in use.
    listed = await asyncio.to_thread(
        kubectl.run, platform.hub.kubeconfig, "get", "clusterclaims", name, "-n", TEAM
    )
    header, row = listed.splitlines()
    assert header.split() == ["NAME", "SYNCED", "READY", "COMPOSITION-REVISION", "AGE"]
    assert row.split()[:4] == [name, "True", "True", bound["status"]["compositionRevision"]]

    # The connection secret's kubeconfig reaches the new cluster's own API server.
    worker = await worker_api(platform, f"{name}-kubeconfig")
    try:
        namespace = await worker.rest.request("GET", "/api/v1/namespaces/argocd")
        assert namespace["status"]["phase"] == "Active"

        # Its Argo CD synced the worker-apps Application from git: configmap1 exists.
        app_ref = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "worker-apps", "namespace": "argocd"},
        }

        async def synced() -> tuple[bool, Any]:
            app = await worker.get(app_ref) or {}
            status = app.get("status") or {}
            cm = await worker.get(configmap("configmap1"))
            ok = (status.get("sync") or {}).get("status") == "Synced" and cm is not None
            return ok, {
                "sync": status.get("sync"),
                "health": status.get("health"),
                "configmap1": cm is not None,
            }

        await platform.eventually("worker-apps Synced and configmap1 on the new cluster", synced, timeout=180)

        # The agent runs as its ServiceAccount (a token only it can read), not as the cluster's admin.
        agent_kubeconfig = platform.clusters.root / "clusters" / cluster / "maestro-agent.kubeconfig"
        assert stat.S_IMODE(agent_kubeconfig.stat().st_mode) == 0o600
        agent_rest = KubeRest.from_kubeconfig(agent_kubeconfig)
        try:
            review = await agent_rest.request(
                "POST",
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
            user = review["status"]["userInfo"]
            assert user["username"] == "system:serviceaccount:open-cluster-management-agent:maestro-agent"
            assert "system:masters" not in user.get("groups", [])
        finally:
            await agent_rest.close()

        # It is a Maestro consumer, and in the hub inventory with the claim's labels.
        async with maestro_client(platform) as client:
            consumer = await client.get_consumer(cluster)
            assert consumer.name == cluster
            # Its agent holds a certificate of this registration of the cluster, issued by the
            # provisioner into the Secret the agent mounts.
            identity_ref = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "maestro-agent-tls", "namespace": "open-cluster-management-agent"},
            }
            secret = await worker.get(identity_ref)
            assert secret is not None and secret["type"] == "kubernetes.io/tls"
            agent_cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
            assert identity.from_certificate(agent_cert) == Identity.cluster(cluster, consumer.placement_slot)
            # Its Argo CD repo-server serves with a certificate of the same CA for its Service's
            # names (server authentication only), and its Deployment was rolled onto it.
            repo_tls = await worker.get(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "argocd-repo-server-tls", "namespace": "argocd"},
                }
            )
            assert repo_tls is not None
            repo_cert = x509.load_pem_x509_certificate(base64.b64decode(repo_tls["data"]["tls.crt"]))
            assert repo_cert.issuer == agent_cert.issuer
            names = repo_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert "argocd-repo-server.argocd.svc" in names.get_values_for_type(x509.DNSName)
            usages = list(repo_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
            assert usages == [x509.ExtendedKeyUsageOID.SERVER_AUTH]
            repo_server = await worker.get(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "argocd-repo-server", "namespace": "argocd"},
                }
            )
            assert repo_server is not None
            rolled = repo_server["spec"]["template"]["metadata"]["annotations"]
            assert rolled["rollout.fleetplane.io/argocd-repo-server-tls"] == str(repo_cert.serial_number)
            # ... and takes the application controller's client certificate (Argo CD's mTLS Secret).
            mtls = await worker.get(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "argocd-repo-server-mtls", "namespace": "argocd"},
                }
            )
            assert mtls is not None and mtls["data"]["client-ca.crt"] == repo_tls["data"]["ca.crt"]
            client_cert = x509.load_pem_x509_certificate(base64.b64decode(mtls["data"]["client.crt"]))
            assert identity.from_certificate(client_cert) == Identity.service(
                f"{cluster}.argocd-application-controller"
            )
            assert rolled["rollout.fleetplane.io/argocd-repo-server-mtls"] == str(client_cert.serial_number)
            # Its Redis serves with a certificate of the same CA for its Service's names, and each
            # of its clients holds a client certificate of its own.
            redis_tls = await worker.get(secret_ref("argocd", "argocd-redis-tls"))
            assert redis_tls is not None
            redis_cert = certificate(redis_tls, "tls.crt")
            assert redis_cert.issuer == agent_cert.issuer
            names = redis_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert "argocd-redis.argocd.svc" in names.get_values_for_type(x509.DNSName)
            for redis_client in ("argocd-application-controller", "argocd-repo-server"):
                held = await worker.get(secret_ref("argocd", f"{redis_client}-redis-tls"))
                assert held is not None, redis_client
                assert identity.from_certificate(certificate(held, "tls.crt")) == Identity.service(
                    f"{cluster}.{redis_client}"
                )
            inventory = await inventory_entry(platform, cluster)
            assert inventory is not None
            wanted = {"env": "e2e", "team": "a", "fleetplane.io/team": TEAM}
            assert wanted.items() <= inventory["metadata"]["labels"].items()

            # A ManifestWork sent through Maestro is applied by the cluster's agent.
            work = uuid.uuid4()
            manifest = configmap("from-maestro", {"sent": "through maestro"})
            await client.apply(cluster, work, bundles.ManifestBundle(manifests=[manifest]))
            cm_ref = configmap("from-maestro")

            async def applied() -> tuple[bool, Any]:
                found = await worker.get(cm_ref)
                return found is not None and found.get("data") == manifest["data"], found

            await platform.eventually("the work's ConfigMap applied by the agent", applied, timeout=120)
            # The work stays: deleting the claim drains it through Maestro (below).
    except BaseException:
        await worker.rest.close()
        raise

    # trace shows the chain down to the agent's works; diff shows what a changed claim would do.
    hub_kubeconfig = str(platform.hub.kubeconfig)
    traced = await asyncio.to_thread(
        fleetplane,
        "trace",
        f"clusterclaim/{name}",
        "-n",
        TEAM,
        "--kubeconfig",
        hub_kubeconfig,
        "--maestro",
        platform.maestro.address,
        "--tls-dir",
        str(platform.maestro.identity(Identity.admin("e2e-trace")).ca.parent),
    )
    assert f"ClusterClaim {TEAM}/{name}  [Synced=True Ready=True]" in traced.stdout
    assert f"WorkerCluster {cluster}  [Synced=True Ready=True  revision worker-cluster-" in traced.stdout
    assert f"cluster {cluster} (local)  [Ready]" in traced.stdout
    assert "agent: workload Deployment open-cluster-management-agent/maestro-agent  [Ready]" in traced.stdout
    claim_file = platform.clusters.root / f"{name}.yaml"
    unchanged = claim(name, platform.apps_repo, {"env": "e2e", "team": "a"}, CONFIGMAPS_IN_DEFAULT)
    claim_file.write_text(yaml.safe_dump(unchanged))
    same = await asyncio.to_thread(fleetplane, "diff", str(claim_file), "--kubeconfig", hub_kubeconfig)
    assert f"ClusterClaim {TEAM}/{name}: no changes" in same.stdout
    changed_claim = claim(name, platform.apps_repo, {"env": "e2e", "team": "b"}, CONFIGMAPS_IN_DEFAULT)
    claim_file.write_text(yaml.safe_dump(changed_claim))
    changed = await asyncio.to_thread(
        fleetplane, "diff", str(claim_file), "--kubeconfig", hub_kubeconfig, check=False
    )
    assert changed.returncode == 1, changed.stderr
    lines = changed.stdout.splitlines()
    assert any(line.startswith("-") and line.endswith("team: a") for line in lines), changed.stdout
    assert any(line.startswith("+") and line.endswith("team: b") for line in lines), changed.stdout

    # Deleting the claim removes, in order: the inventory entry; the live work's objects (its agent
    # deletes them and confirms to Maestro) and the worker-apps Application with what Argo CD
    # deployed from it; the agent and the consumer; Argo CD; the cluster.
    async with maestro_client(platform) as client:
        try:
            order = await deletion_order(platform, name, cluster, worker, client, cm_ref, app_ref)
        finally:
            await worker.rest.close()
    drained = max(order["inventory entry"], order["work's ConfigMap"], order["work in Maestro"])
    assert order["inventory entry"] <= order["work in Maestro"], order
    assert order["work's ConfigMap"] <= order["work in Maestro"], order
    assert drained <= order["worker-apps Application"], order
    assert order["configmap1 (from worker-apps)"] <= order["worker-apps Application"], order
    # The agent is stopped only once Maestro has its confirmation: a step (a requeue) later at least.
    assert drained < order["agent"], order
    # The rest follow each other within one deletion step: the same or a later poll each.
    assert order["worker-apps Application"] <= order["agent"] <= order["consumer"], order
    assert order["consumer"] <= order["Argo CD"] <= order["kube-apiserver"], order
    clusters = Environment(platform.clusters.root)
    alive = [n for n, r in clusters.processes.items() if n.startswith(f"{cluster}/") and process.is_alive(r)]
    assert alive == []
    assert f"cluster/{cluster}" not in clusters.endpoints
    assert await inventory_entry(platform, cluster) is None
    async with maestro_client(platform) as client:
        with pytest.raises(client_errors.NotFound):
            await client.get_consumer(cluster)
        # The agent's certificate was revoked with the cluster: a copy kept elsewhere is refused.
        revoked = {r.serial for r in await client.revoked_certificates()}
        assert agent_cert.serial_number in revoked


async def test_a_claim_that_breaks_the_schema_is_refused_naming_the_field(platform: Platform) -> None:
    bad = claim("no-repo", platform.apps_repo, {})
    del bad["spec"]["parameters"]["apps"]["repoURL"]
    with pytest.raises(Exception, match=r"spec\.parameters\.apps\.repoURL"):
        await asyncio.to_thread(kubectl.apply, platform.hub.kubeconfig, [bad])
    assert await platform.claim("no-repo") is None


async def test_a_claim_setting_a_reserved_label_is_refused_naming_it(platform: Platform) -> None:
    name = "forged-team"
    forged = claim(name, platform.apps_repo, {"env": "e2e", "fleetplane.io/team": "team-b"})
    await asyncio.to_thread(kubectl.apply, platform.hub.kubeconfig, [forged])

    async def refused() -> tuple[bool, Any]:
        found = await platform.claim(name)
        conditions = ((found or {}).get("status") or {}).get("conditions") or []
        synced = next((c for c in conditions if c["type"] == "Synced"), None)
        return synced is not None and synced["status"] == "False", conditions

    seen = await platform.eventually("Synced=False on the claim", refused, timeout=60)
    synced = next(c for c in seen if c["type"] == "Synced")
    assert synced["reason"] == "ReservedLabel"
    assert synced["message"].startswith("spec.parameters.labels: fleetplane.io/team is reserved")
    bound = await platform.claim(name) or {}
    assert not (bound.get("spec") or {}).get("resourceRef"), "no composite is made for a refused claim"
    await asyncio.to_thread(kubectl.run, platform.hub.kubeconfig, "delete", "clusterclaim", name, "-n", TEAM)


async def test_a_template_error_sets_synced_false_with_the_line_and_creates_nothing(
    platform: Platform,
) -> None:
    broken = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Composition",
        "metadata": {"name": "broken"},
        "spec": {
            "compositeTypeRef": {"apiVersion": GROUP, "kind": "WorkerCluster"},
            "template": {"inline": BROKEN_TEMPLATE},
        },
    }
    await asyncio.to_thread(kubectl.apply, platform.hub.kubeconfig, [broken])
    name = "broken-template"
    await asyncio.to_thread(
        kubectl.apply,
        platform.hub.kubeconfig,
        [claim(name, platform.apps_repo, {}, compositionRef={"name": "broken"})],
    )

    async def not_synced() -> tuple[bool, Any]:
        found = await platform.claim(name)
        conditions = ((found or {}).get("status") or {}).get("conditions") or []
        synced = next((c for c in conditions if c["type"] == "Synced"), None)
        return synced is not None and synced["status"] == "False", conditions

    seen = await platform.eventually("Synced=False on the claim", not_synced, timeout=120)
    synced = next(c for c in seen if c["type"] == "Synced")
    assert synced["reason"] == "RenderFailed"
    assert ":5:" in synced["message"] and "nope" in synced["message"], synced["message"]
    bound = await platform.claim(name)
    cluster = ((bound or {}).get("spec") or {}).get("resourceRef", {}).get("name", "")
    assert not any(n.startswith(f"{cluster}/") for n in Environment(platform.clusters.root).processes)
    await asyncio.to_thread(kubectl.run, platform.hub.kubeconfig, "delete", "clusterclaim", name, "-n", TEAM)


async def test_a_manual_composite_stays_on_its_revision_until_moved(platform: Platform) -> None:
    name = f"manual-{uuid.uuid4().hex[:5]}"
    await asyncio.to_thread(
        kubectl.apply,
        platform.hub.kubeconfig,
        [claim(name, platform.apps_repo, {"env": "manual"}, compositionUpdatePolicy="Manual")],
    )
    await platform.eventually(f"claim {name} Ready", lambda: platform.ready(name))
    first = await revision_of(platform, name)
    assert first
    cluster = (await platform.claim(name) or {})["spec"]["resourceRef"]["name"]

    # A provisioner restart adopts the running cluster: the same API server process serves it.
    apiserver = Environment(platform.clusters.root).processes[f"{cluster}/kube-apiserver"]
    platform.provisioner.stop()
    platform.provisioner.start()

    async def first_pass_done() -> tuple[bool, Any]:
        # this composite is the platform's only one: Ready once the new provisioner's pass is done
        ready = await platform.metric("fleetplane_provisioner_clusters", state="ready")
        return ready >= 1, {"clusters ready": ready}

    await platform.eventually("the restarted provisioner's first pass", first_pass_done, timeout=120)
    again = Environment(platform.clusters.root).processes[f"{cluster}/kube-apiserver"]
    assert (again.pid, again.start_ticks) == (apiserver.pid, apiserver.start_ticks)
    assert process.is_alive(again)
    assert (await platform.ready(name))[0]
    gold = json.dumps({"spec": {"defaults": {"labels": {"tier": "gold"}}}})
    await patch(platform, "composition", "worker-cluster", "--type", "merge", "-p", gold)
    try:

        async def new_revision() -> tuple[bool, Any]:
            reply = await platform.hub_api.rest.request(
                "GET",
                "/apis/fleetplane.io/v1alpha1/compositionrevisions",
                query=[("labelSelector", "fleetplane.io/composition-name=worker-cluster")],
            )
            latest = max(reply.get("items") or [], key=lambda r: r["spec"]["revision"])
            return latest["metadata"]["name"] != first, latest["metadata"]["name"]

        second = await platform.eventually("a new CompositionRevision", new_revision, timeout=60)

        async def synced_at_new_generation() -> tuple[bool, Any]:
            # what Argo CD's health of a Composition synced from Git waits for
            found = await platform.hub_api.rest.request(
                "GET", "/apis/fleetplane.io/v1alpha1/compositions/worker-cluster"
            )
            conditions = (found.get("status") or {}).get("conditions") or []
            synced = next((c for c in conditions if c.get("type") == "Synced"), {})
            return synced.get("observedGeneration") == found["metadata"]["generation"], synced

        await platform.eventually(
            "the Composition Synced at its new generation", synced_at_new_generation, timeout=60
        )
        # A pass done since: the new revision wakes every composite at once (a pass under way
        # when it came is followed by another), the one that would move an Automatic composite.
        before = await platform.composite_passes()

        async def passed() -> tuple[bool, Any]:
            done = await platform.composite_passes()
            return done > before, {"composite passes": done, "before": before}

        await platform.eventually("a composite pass since the new revision", passed, timeout=60)
        assert await revision_of(platform, name) == first
        labels = ((await inventory_entry(platform, cluster)) or {})["metadata"]["labels"]
        assert "tier" not in labels

        pin = json.dumps({"spec": {"compositionRevisionRef": {"name": second}}})
        await patch(platform, "clusterclaim", name, "-n", TEAM, "--type", "merge", "-p", pin)

        async def moved() -> tuple[bool, Any]:
            entry = await inventory_entry(platform, cluster) or {}
            tier = ((entry.get("metadata") or {}).get("labels") or {}).get("tier")
            revision = await revision_of(platform, name)
            return revision == second and tier == "gold", {"revision": revision, "tier": tier}

        await platform.eventually("the composite on the pinned revision", moved, timeout=120)
    finally:
        plain = json.dumps({"spec": {"defaults": {"labels": None}}})
        await patch(platform, "composition", "worker-cluster", "--type", "merge", "-p", plain)
        await asyncio.to_thread(
            kubectl.run, platform.hub.kubeconfig, "delete", "clusterclaim", name, "-n", TEAM, "--wait=false"
        )

    async def gone() -> tuple[bool, Any]:
        return await platform.claim(name) is None, None

    await platform.eventually(f"claim {name} deleted", gone, timeout=240)


async def test_an_orphaned_cluster_keeps_running_and_says_what_was_kept(platform: Platform) -> None:
    name = f"orphan-{uuid.uuid4().hex[:5]}"
    await asyncio.to_thread(
        kubectl.apply, platform.hub.kubeconfig, [claim(name, platform.apps_repo, {"env": "orphan"})]
    )
    await platform.eventually(f"claim {name} Ready", lambda: platform.ready(name))
    cluster = (await platform.claim(name) or {})["spec"]["resourceRef"]["name"]
    # The policy is the composite's (as in Crossplane, a claim has none).
    orphan = json.dumps({"spec": {"deletionPolicy": "Orphan"}})
    await patch(platform, "workercluster", cluster, "--type", "merge", "-p", orphan)
    watched = platform.clusters.root / f"{cluster}.watch.json"
    watch = watch_composite(platform, cluster, watched)
    try:

        async def listed() -> tuple[bool, Any]:
            return b'"ADDED"' in watched.read_bytes(), None

        await platform.eventually("the watch listing the composite", listed, timeout=30)
        await asyncio.to_thread(
            kubectl.run, platform.hub.kubeconfig, "delete", "clusterclaim", name, "-n", TEAM, "--wait=false"
        )

        async def gone() -> tuple[bool, Any]:
            return await platform.claim(name) is None, None

        await platform.eventually(f"claim {name} deleted", gone, timeout=240)
        last = last_state(watch, watched)
        ready = next(c for c in last["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "Orphaned", ready
        assert ready["message"].startswith(
            f"deletionPolicy Orphan: kept cluster {cluster} (local, https://"
        ), ready
        assert f"inventory entry {INVENTORY_NAMESPACE}/cluster-{cluster}" in ready["message"], ready
        # The same words in an Event in the claim's namespace.
        messages = await platform.eventually("an Orphaned event", events(platform, "Orphaned"), timeout=60)
        assert ready["message"] in messages, messages

        # The cluster, its agent and consumer run on; its inventory entry stays, marked orphaned.
        running = Environment(platform.clusters.root).processes
        for component in ("kube-apiserver", "maestro-agent", "argocd-repo-server"):
            assert process.is_alive(running[f"{cluster}/{component}"]), component
        inventory = await inventory_entry(platform, cluster)
        assert inventory is not None and inventory["metadata"]["labels"]["fleetplane.io/orphaned"] == "true"
        async with maestro_client(platform) as client:
            assert (await client.get_consumer(cluster)).name == cluster
    finally:
        if watch.poll() is None:
            watch.kill()
        # What the platform left running is the test's to remove.
        clusters = Environment(platform.clusters.root)
        etcd_url = Environment(platform.clusters.root.parent).endpoint("etcd")["url"]
        await asyncio.to_thread(kube.delete, clusters, cluster, etcd_url)
        async with maestro_client(platform) as client:
            with contextlib.suppress(client_errors.NotFound):
                await client.delete_consumer(cluster)
        await platform.hub_api.delete(secret_ref(INVENTORY_NAMESPACE, f"cluster-{cluster}"))
