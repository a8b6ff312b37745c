"""A team asks for a worker cluster with ``kubectl apply`` and gets one, with Argo CD and a Maestro agent.

On the real local infrastructure (a hub kube-apiserver, etcd, PostgreSQL, Kafka, a Maestro server),
``fleetplane provisioner install`` then ``fleetplane provisioner run`` as a subprocess. Cases:
- a ClusterClaim becomes Ready: a new kube-apiserver answers with the connection secret's
  kubeconfig; its Argo CD synced the ``worker-apps`` Application from a local git repository; the
  cluster is a Maestro consumer and in the hub inventory with the claim's labels; its agent holds
  a certificate of that registration, issued by the provisioner, and its Argo CD repo-server a
  serving certificate of the same CA, rolled onto it; its Redis a serving certificate and each
  Redis client one of its own; a ManifestWork sent through Maestro is applied on it by its agent;
- under the Manual update policy, the composite stays on its revision after the Composition
  changes, and moves (re-rendering the inventory labels) when the claim pins the new revision;
- a claim that sets a reserved inventory label (``fleetplane.io/...``) is refused naming it, and
  the inventory carries the platform's ``fleetplane.io/team`` (the claim's namespace);
- a claim that breaks the schema is refused by the API server naming the field; a composition
  whose template fails sets Synced=False with the template line, and creates nothing;
- deleting the claim removes the cluster's processes, its Maestro consumer and its inventory entry,
  and revokes the agent's certificate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import stat
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from kubeio import credentials, objects
from kubeio.rest import KubeRest
from localinfra import gitrepo, kube, kubectl, paths, process
from localinfra.environment import Environment
from maestro import client_errors
from maestro.api import bundles
from maestro.client import MaestroClient
from tests.e2e.conftest import INVENTORY_NAMESPACE, MaestroUnderTest, Subcommand, eventually, fleetplane
from trust import identity
from trust.identity import Identity

pytestmark = pytest.mark.e2e
#: Maestro drops a delete its agent did not confirm within this (the module's Maestro server's
#: --deletion-grace): long enough for a loaded machine's agent, short enough to wait for
MAESTRO_DELETION_GRACE = 60.0

GROUP = "platform.fleetplane.io/v1alpha1"
TEAM = "team-a"
# line 5 names a parameter no claim has
BROKEN_TEMPLATE = """name: cluster
target: provider
object:
  spec:
    provider: {{ parameters.nope.deeper }}
"""


@dataclasses.dataclass
class Platform:
    hub: kube.Cluster
    hub_api: objects.Objects
    maestro: MaestroUnderTest
    provisioner: Subcommand
    clusters: Environment
    apps_repo: str

    async def eventually(
        self, what: str, check: Callable[[], Awaitable[tuple[bool, Any]]], timeout: float = 240
    ) -> Any:
        return await eventually(what, check, self.provisioner.log, timeout=timeout)

    async def claim(self, name: str) -> dict[str, Any] | None:
        return await self.hub_api.get(_claim_ref(name))

    async def ready(self, name: str) -> tuple[bool, Any]:
        claim = await self.claim(name)
        conditions = ((claim or {}).get("status") or {}).get("conditions") or []
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return ok, conditions or (claim or {}).get("status")


def _claim_ref(name: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "ClusterClaim", "metadata": {"name": name, "namespace": TEAM}}


#: what the main case's works apply besides Argo CD Applications: ConfigMaps in default
CONFIGMAPS_IN_DEFAULT = [
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        "namespace": "default",
    }
]


def claim(
    name: str, repo: str, labels: dict[str, str], agent: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    extra = {"agentPermissions": agent} if agent else {}
    return {
        **_claim_ref(name),
        "spec": {
            "parameters": {
                "provider": "local",
                "labels": labels,
                "apps": {"repoURL": repo, "path": "apps/configmap1"},
                **extra,
            },
            "writeConnectionSecretToRef": {"name": f"{name}-kubeconfig"},
            **spec,
        },
    }


@pytest.fixture(scope="module")
def provisioner_args() -> list[str]:
    """More options for ``fleetplane provisioner run``: a module using ``platform`` may override it."""
    return []


@pytest.fixture(scope="module")
async def platform(
    hub: kube.Cluster,
    infra_env: Environment,
    e2e_maestro: MaestroUnderTest,
    tmp_path_factory: pytest.TempPathFactory,
    provisioner_args: list[str],
) -> AsyncIterator[Platform]:
    folder = tmp_path_factory.mktemp("provisioner")
    repo = await asyncio.to_thread(gitrepo.demo_apps_repo, folder / "apps")
    await asyncio.to_thread(fleetplane, "provisioner", "install", "--kubeconfig", str(hub.kubeconfig))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}
    await asyncio.to_thread(kubectl.apply, hub.kubeconfig, [namespace])
    provisioner = Subcommand(
        [
            "provisioner",
            "run",
            "--kubeconfig",
            str(hub.kubeconfig),
            "--maestro",
            e2e_maestro.address,
            "--kafka",
            e2e_maestro.settings.kafka.bootstrap,
            "--topic-prefix",
            e2e_maestro.settings.topics.prefix,
            "--local-env",
            str(infra_env.root),
            # an admin: it registers and deletes clusters (its local agents' identities come from
            # the same CA, the environment's)
            "--tls-dir",
            str(e2e_maestro.identity(Identity.admin("fleetplane-provisioner")).ca.parent),
            "--inventory-namespace",
            INVENTORY_NAMESPACE,
            "--resync",
            "10",
            # the deletion-order case waits for the agent and Argo CD: ample on a loaded machine
            "--drain",
            "180",
            "--log-level",
            "info",
            *provisioner_args,
        ],
        folder / "provisioner.log",
    )
    provisioner.start()
    rest = KubeRest.from_kubeconfig(hub.kubeconfig)
    try:
        served = Platform(
            hub, objects.Objects(rest), e2e_maestro, provisioner, infra_env.child("provisioned"), repo
        )

        async def claim_kind_served() -> tuple[bool, Any]:
            crd = await rest.request("GET", f"{objects.CRD_PATH}/clusterclaims.platform.fleetplane.io")
            conditions = (crd.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions), conditions

        await served.eventually(
            "the provisioner serving the ClusterClaim kind", claim_kind_served, timeout=60
        )
        yield served
    finally:
        died = provisioner.died()
        provisioner.stop()
        await rest.close()
    if died is not None:
        pytest.fail(f"the provisioner exited with {died}:\n{process.log_tail(provisioner.log, 60)}")


async def _worker_api(platform: Platform, secret_name: str, namespace: str = TEAM) -> objects.Objects:
    secret = await platform.hub_api.get(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name, "namespace": namespace}}
    )
    assert secret is not None, f"connection secret {namespace}/{secret_name} missing"
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    return objects.Objects(KubeRest(await asyncio.to_thread(credentials.from_kubeconfig_dict, kubeconfig)))


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
    worker = await _worker_api(platform, f"{name}-kubeconfig")
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
            cm = await worker.get(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "configmap1", "namespace": "default"},
                }
            )
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
        async with _maestro(platform) as client:
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
            redis_tls = await worker.get(_secret_ref("argocd", "argocd-redis-tls"))
            assert redis_tls is not None
            redis_cert = _certificate(redis_tls, "tls.crt")
            assert redis_cert.issuer == agent_cert.issuer
            names = redis_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            assert "argocd-redis.argocd.svc" in names.get_values_for_type(x509.DNSName)
            for redis_client in ("argocd-application-controller", "argocd-repo-server"):
                held = await worker.get(_secret_ref("argocd", f"{redis_client}-redis-tls"))
                assert held is not None, redis_client
                assert identity.from_certificate(_certificate(held, "tls.crt")) == Identity.service(
                    f"{cluster}.{redis_client}"
                )
            inventory = await _inventory(platform, cluster)
            assert inventory is not None
            wanted = {"env": "e2e", "team": "a", "fleetplane.io/team": TEAM}
            assert wanted.items() <= inventory["metadata"]["labels"].items()

            # A ManifestWork sent through Maestro is applied by the cluster's agent.
            work = uuid.uuid4()
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "from-maestro", "namespace": "default"},
                "data": {"sent": "through maestro"},
            }
            await client.apply(cluster, work, bundles.ManifestBundle(manifests=[manifest]))
            cm_ref = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": manifest["metadata"]}

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
    async with _maestro(platform) as client:
        try:
            order = await _deletion_order(platform, name, cluster, worker, client, cm_ref, app_ref)
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
    assert await _inventory(platform, cluster) is None
    async with _maestro(platform) as client:
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


async def _deletion_order(
    platform: Platform,
    name: str,
    cluster: str,
    worker: objects.Objects,
    client: MaestroClient,
    work_object: dict[str, Any],
    application: dict[str, Any],
) -> dict[str, int]:
    """Delete the claim and poll what it had until the claim is gone: for each thing, the first poll
    round that found it gone."""
    clusters = Environment(platform.clusters.root)
    configmap1 = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "configmap1", "namespace": "default"},
    }

    async def absent(obj: dict[str, Any]) -> bool:
        try:
            return await worker.get(obj) is None
        except Exception:  # its API server is gone: so is the object
            return True

    async def works_gone() -> bool:
        records, _ = await client.list()
        return not [r for r in records if r.bundle.consumer == cluster]

    async def consumer_gone() -> bool:
        try:
            await client.get_consumer(cluster)
        except client_errors.NotFound:
            return True
        return False

    def stopped(prefix: str) -> bool:
        running = Environment(clusters.root).processes
        return not any(n.startswith(prefix) and process.is_alive(r) for n, r in running.items())

    async def inventory_gone() -> bool:
        return await _inventory(platform, cluster) is None

    checks: dict[str, Callable[[], Awaitable[bool]]] = {
        "inventory entry": inventory_gone,
        "work's ConfigMap": lambda: absent(work_object),
        "work in Maestro": works_gone,
        "configmap1 (from worker-apps)": lambda: absent(configmap1),
        "worker-apps Application": lambda: absent(application),
        "agent": lambda: asyncio.to_thread(stopped, f"{cluster}/maestro-agent"),
        "consumer": consumer_gone,
        "Argo CD": lambda: asyncio.to_thread(stopped, f"{cluster}/argocd-"),
        "kube-apiserver": lambda: asyncio.to_thread(stopped, f"{cluster}/kube-apiserver"),
    }
    for what, check in checks.items():
        assert not await check(), f"{what} is gone before the claim is deleted"
    await asyncio.to_thread(
        kubectl.run, platform.hub.kubeconfig, "delete", "clusterclaim", name, "-n", TEAM, "--wait=false"
    )
    order: dict[str, int] = {}
    deadline = asyncio.get_running_loop().time() + 300
    claim_gone = False
    for poll in range(1_000_000):
        for what, check in checks.items():
            if what not in order and await check():
                order[what] = poll
        if claim_gone:
            break
        # one more round once the claim is gone, for what went during this one
        claim_gone = await platform.claim(name) is None
        assert asyncio.get_running_loop().time() < deadline, f"claim {name} not deleted; gone so far: {order}"
        await asyncio.sleep(0.1)
    assert set(order) == set(checks), f"left behind: {set(checks) - set(order)}"
    return order


def _secret_ref(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}}


def _certificate(secret: dict[str, Any], key: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(secret["data"][key]))


async def _inventory(platform: Platform, cluster: str) -> dict[str, Any] | None:
    reply = await platform.hub_api.rest.request(
        "GET",
        f"/api/v1/namespaces/{INVENTORY_NAMESPACE}/secrets",
        query=[("labelSelector", f"fleetplane.io/composite-name={cluster}")],
    )
    items = reply.get("items") or []
    return items[0] if items else None


@contextlib.asynccontextmanager
async def _maestro(platform: Platform) -> AsyncIterator[MaestroClient]:
    credentials = platform.maestro.credentials()
    async with MaestroClient(
        platform.maestro.address, source="e2e-provisioner", credentials=credentials
    ) as client:
        yield client


async def _revision_of(platform: Platform, name: str) -> str:
    found = await platform.claim(name) or {}
    return str((found.get("status") or {}).get("compositionRevision") or "")


async def _patch(platform: Platform, *args: str) -> None:
    await asyncio.to_thread(kubectl.run, platform.hub.kubeconfig, "patch", *args)


async def test_a_manual_composite_stays_on_its_revision_until_moved(platform: Platform) -> None:
    name = f"manual-{uuid.uuid4().hex[:5]}"
    await asyncio.to_thread(
        kubectl.apply,
        platform.hub.kubeconfig,
        [claim(name, platform.apps_repo, {"env": "manual"}, compositionUpdatePolicy="Manual")],
    )
    await platform.eventually(f"claim {name} Ready", lambda: platform.ready(name))
    first = await _revision_of(platform, name)
    assert first
    cluster = (await platform.claim(name) or {})["spec"]["resourceRef"]["name"]

    # A provisioner restart adopts the running cluster: the same API server process serves it.
    apiserver = Environment(platform.clusters.root).processes[f"{cluster}/kube-apiserver"]
    platform.provisioner.stop()
    platform.provisioner.start()
    await asyncio.sleep(15)  # its daemons have made their first pass
    again = Environment(platform.clusters.root).processes[f"{cluster}/kube-apiserver"]
    assert (again.pid, again.start_ticks) == (apiserver.pid, apiserver.start_ticks)
    assert process.is_alive(again)
    assert (await platform.ready(name))[0]
    gold = json.dumps({"spec": {"defaults": {"labels": {"tier": "gold"}}}})
    await _patch(platform, "composition", "worker-cluster", "--type", "merge", "-p", gold)
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
        await asyncio.sleep(15)  # more than a resync: a pass that would move it has run
        assert await _revision_of(platform, name) == first
        labels = ((await _inventory(platform, cluster)) or {})["metadata"]["labels"]
        assert "tier" not in labels

        pin = json.dumps({"spec": {"compositionRevisionRef": {"name": second}}})
        await _patch(platform, "clusterclaim", name, "-n", TEAM, "--type", "merge", "-p", pin)

        async def moved() -> tuple[bool, Any]:
            inventory = await _inventory(platform, cluster) or {}
            tier = ((inventory.get("metadata") or {}).get("labels") or {}).get("tier")
            revision = await _revision_of(platform, name)
            return revision == second and tier == "gold", {"revision": revision, "tier": tier}

        await platform.eventually("the composite on the pinned revision", moved, timeout=120)
    finally:
        plain = json.dumps({"spec": {"defaults": {"labels": None}}})
        await _patch(platform, "composition", "worker-cluster", "--type", "merge", "-p", plain)
        await asyncio.to_thread(
            kubectl.run, platform.hub.kubeconfig, "delete", "clusterclaim", name, "-n", TEAM, "--wait=false"
        )

    async def gone() -> tuple[bool, Any]:
        return await platform.claim(name) is None, None

    await platform.eventually(f"claim {name} deleted", gone, timeout=240)


def _events(platform: Platform, reason: str) -> Callable[[], Awaitable[tuple[bool, Any]]]:
    """A check: the Events with ``reason`` in the claims' namespace (what `kubectl get events` shows)."""

    async def found() -> tuple[bool, Any]:
        reply = await platform.hub_api.rest.request("GET", f"/api/v1/namespaces/{TEAM}/events")
        messages = [e.get("message", "") for e in reply.get("items") or [] if e.get("reason") == reason]
        return bool(messages), messages

    return found


def _watch_composite(platform: Platform, cluster: str, out: Path) -> subprocess.Popen[bytes]:
    """``kubectl get --watch`` on the composite, into ``out`` (a pipe would fill and stall it): its
    DELETED event carries the composite's last status."""
    with out.open("wb") as sink:
        return subprocess.Popen(
            [
                str(paths.bin_dir() / "kubectl"), "--kubeconfig", str(platform.hub.kubeconfig),
                "get", "workerclusters", "--watch", "--output-watch-events", "-o", "json",
                "--field-selector", f"metadata.name={cluster}",
            ],
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip


def _last_state(watch: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    """The object of the watch's DELETED event (the watch is stopped; a last event it was writing
    when stopped is cut short and left out)."""
    watch.terminate()
    watch.wait(timeout=30)
    text = out.read_text()
    decoder, events, at = json.JSONDecoder(), [], 0
    with contextlib.suppress(json.JSONDecodeError):
        while text[at:].strip():
            at += len(text[at:]) - len(text[at:].lstrip())
            event, at = decoder.raw_decode(text, at)
            events.append(event)
    deleted = [e["object"] for e in events if e.get("type") == "DELETED"]
    assert deleted, [e.get("type") for e in events]
    return dict(deleted[-1])


async def test_an_orphaned_cluster_keeps_running_and_says_what_was_kept(platform: Platform) -> None:
    name = f"orphan-{uuid.uuid4().hex[:5]}"
    await asyncio.to_thread(
        kubectl.apply, platform.hub.kubeconfig, [claim(name, platform.apps_repo, {"env": "orphan"})]
    )
    await platform.eventually(f"claim {name} Ready", lambda: platform.ready(name))
    cluster = (await platform.claim(name) or {})["spec"]["resourceRef"]["name"]
    # The policy is the composite's (as in Crossplane, a claim has none).
    orphan = json.dumps({"spec": {"deletionPolicy": "Orphan"}})
    await _patch(platform, "workercluster", cluster, "--type", "merge", "-p", orphan)
    watched = platform.clusters.root / f"{cluster}.watch.json"
    watch = _watch_composite(platform, cluster, watched)
    try:
        await asyncio.sleep(2)  # the watch has listed the composite
        await asyncio.to_thread(
            kubectl.run, platform.hub.kubeconfig, "delete", "clusterclaim", name, "-n", TEAM, "--wait=false"
        )

        async def gone() -> tuple[bool, Any]:
            return await platform.claim(name) is None, None

        await platform.eventually(f"claim {name} deleted", gone, timeout=240)
        last = _last_state(watch, watched)
        ready = next(c for c in last["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "Orphaned", ready
        assert ready["message"].startswith(
            f"deletionPolicy Orphan: kept cluster {cluster} (local, https://"
        ), ready
        assert f"inventory entry {INVENTORY_NAMESPACE}/cluster-{cluster}" in ready["message"], ready
        # The same words in an Event in the claim's namespace.
        messages = await platform.eventually("an Orphaned event", _events(platform, "Orphaned"), timeout=60)
        assert ready["message"] in messages, messages

        # The cluster, its agent and consumer run on; its inventory entry stays, marked orphaned.
        running = Environment(platform.clusters.root).processes
        for component in ("kube-apiserver", "maestro-agent", "argocd-repo-server"):
            assert process.is_alive(running[f"{cluster}/{component}"]), component
        inventory = await _inventory(platform, cluster)
        assert inventory is not None and inventory["metadata"]["labels"]["fleetplane.io/orphaned"] == "true"
        async with _maestro(platform) as client:
            assert (await client.get_consumer(cluster)).name == cluster
    finally:
        if watch.poll() is None:
            watch.kill()
        # What the platform left running is the test's to remove.
        clusters = Environment(platform.clusters.root)
        etcd_url = Environment(platform.clusters.root.parent).endpoint("etcd")["url"]
        await asyncio.to_thread(kube.delete, clusters, cluster, etcd_url)
        async with _maestro(platform) as client:
            with contextlib.suppress(client_errors.NotFound):
                await client.delete_consumer(cluster)
        await platform.hub_api.delete(_secret_ref(INVENTORY_NAMESPACE, f"cluster-{cluster}"))


async def test_a_deletion_whose_agent_is_gone_completes_and_names_the_orphaned_works(
    platform: Platform,
) -> None:
    name = f"agentless-{uuid.uuid4().hex[:5]}"
    await asyncio.to_thread(
        kubectl.apply,
        platform.hub.kubeconfig,
        [claim(name, platform.apps_repo, {"env": "agentless"}, CONFIGMAPS_IN_DEFAULT)],
    )
    await platform.eventually(f"claim {name} Ready", lambda: platform.ready(name))
    cluster = (await platform.claim(name) or {})["spec"]["resourceRef"]["name"]
    work = uuid.uuid4()
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "left-behind", "namespace": "default"},
        "data": {"sent": "through maestro"},
    }
    async with _maestro(platform) as client:
        await client.apply(cluster, work, bundles.ManifestBundle(manifests=[manifest]))

        async def applied() -> tuple[bool, Any]:
            summary = await client.get_summary(work)
            status = summary.record().status
            return status is not None, status

        await platform.eventually("the work applied by the agent", applied, timeout=120)

    # The agent dies while the provisioner is down, and the claim is deleted meanwhile (its
    # composite too, so no pass on restart starts the agent again).
    platform.provisioner.stop()
    Environment(platform.clusters.root).stop_processes(f"{cluster}/maestro-agent")
    for kind, *where in (("clusterclaim", name, "-n", TEAM), ("workercluster", cluster)):
        await asyncio.to_thread(kubectl.run, platform.hub.kubeconfig, "delete", kind, *where, "--wait=false")
    platform.provisioner.start()

    async def gone() -> tuple[bool, Any]:
        return await platform.claim(name) is None, None

    # Maestro drops the unconfirmed delete after its grace period; the deletion then completes.
    await platform.eventually(f"claim {name} deleted", gone, timeout=MAESTRO_DELETION_GRACE + 240)
    messages = await platform.eventually("an Orphaned event", _events(platform, "Orphaned"), timeout=60)
    mine = [m for m in messages if cluster in m and "without its Maestro agent" in m]
    assert mine and str(work) in mine[0], messages
    assert not [
        n
        for n, r in Environment(platform.clusters.root).processes.items()
        if n.startswith(f"{cluster}/") and process.is_alive(r)
    ]
