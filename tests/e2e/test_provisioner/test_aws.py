"""A team's claim drives the aws provider end to end, against moto's EKS over real HTTP.

``fleetplane provisioner run --aws-region ... --aws-endpoint <moto>`` on the real local hub and
Maestro. moto's cluster endpoint is no API server, so the claim selects a Composition of the cluster
and its inventory entry only (no workloads, agent or Maestro consumer). Cases, on one claim:
created (an EKS cluster and node group with our tags and the claim's node count; the claim Ready;
the node count and version in the composite's status); its node count changed (moto implements
``update_nodegroup_config``: the node group resized, the status follows); deleted (node group and
cluster gone from moto, the inventory entry gone). moto does not implement
``update_cluster_version``: the version change is covered with botocore's Stubber in
``tests/unit/provisioner/test_eks_updates.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from kubeio import objects
from kubeio.rest import KubeRest
from localinfra import kube, kubectl, process
from provisioner.providers.aws import CLUSTER_TAG, MANAGED_BY, MANAGED_BY_TAG
from tests.e2e.conftest import INVENTORY_NAMESPACE, MaestroUnderTest, Subcommand, eventually, fleetplane
from tests.integration.provisioner.conftest import (  # noqa: F401 (fixtures)
    FAKE_CREDENTIALS,
    REGION,
    aws_session,
    moto_endpoint,
    moto_server,
)
from trust.identity import Identity

pytestmark = pytest.mark.e2e

GROUP = "platform.fleetplane.io/v1alpha1"
TEAM = "team-aws"
NAME = "eks-1"
COMPOSITION = "eks-bare"
TEMPLATE = """name: cluster
target: provider
object:
  apiVersion: fleetplane.io/v1alpha1
  kind: ClusterConfig
  metadata: {name: {{ name | tojson }}}
  spec:
    provider: aws
    version: {{ parameters.version | tojson }}
    region: {{ parameters.region | tojson }}
    nodeCount: {{ parameters.nodeCount | tojson }}
    instanceType: {{ parameters.instanceType | tojson }}
    labels: {{ labels | tojson }}
    tags: {"fleetplane.io/composite-name": {{ name | tojson }}}
    settings: {{ parameters.settings | tojson }}
---
name: inventory
target: hub
object:
  apiVersion: v1
  kind: Secret
  type: Opaque
  metadata:
    name: {{ ("cluster-" ~ name) | tojson }}
    namespace: {{ platform.hub.inventoryNamespace | tojson }}
    labels: {{ labels | merge({"argocd.argoproj.io/secret-type": "cluster"}) | tojson }}
  data:
    name: {{ name | b64enc }}
    server: {{ ("https://" ~ name ~ ".clusters.fleetplane.local") | b64enc }}
"""
SETTINGS = {
    "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
    "nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes",
    "subnetIds": ["subnet-0a1", "subnet-0b2"],
    "securityGroupIds": ["sg-0c3"],
}


def _composition() -> dict[str, Any]:
    return {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Composition",
        "metadata": {"name": COMPOSITION},
        "spec": {
            "compositeTypeRef": {"apiVersion": GROUP, "kind": "WorkerCluster"},
            "template": {"inline": TEMPLATE},
            "defaults": {"version": "1.31", "nodeCount": 1, "instanceType": "t3.large", "settings": SETTINGS},
        },
    }


def _claim(node_count: int) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "ClusterClaim",
        "metadata": {"name": NAME, "namespace": TEAM},
        "spec": {
            "compositionRef": {"name": COMPOSITION},
            "parameters": {
                "provider": "aws",
                "region": REGION,
                "nodeCount": node_count,
                "labels": {"env": "eks"},
                "apps": {"repoURL": "https://git.example.com/team-aws/apps.git"},
            },
        },
    }


@pytest.fixture
async def aws_provisioner(
    hub: kube.Cluster,
    e2e_maestro: MaestroUnderTest,
    moto_endpoint: str,  # noqa: F811
    tmp_path: Any,
) -> AsyncIterator[tuple[Subcommand, objects.Objects]]:
    await asyncio.to_thread(fleetplane, "provisioner", "install", "--kubeconfig", str(hub.kubeconfig))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}
    await asyncio.to_thread(kubectl.apply, hub.kubeconfig, [namespace, _composition()])
    provisioner = Subcommand(
        [
            "provisioner", "run", "--kubeconfig", str(hub.kubeconfig),
            "--maestro", e2e_maestro.address,
            "--kafka", e2e_maestro.settings.kafka.bootstrap,
            "--topic-prefix", e2e_maestro.settings.topics.prefix,
            "--tls-dir", str(e2e_maestro.identity(Identity.admin("fleetplane-provisioner")).ca.parent),
            "--inventory-namespace", INVENTORY_NAMESPACE,
            "--aws-region", REGION, "--aws-endpoint", moto_endpoint,
            "--resync", "5", "--log-level", "info",
        ],
        tmp_path / "provisioner.log",
        # moto's fake credentials, for the provisioner's process only
        env=FAKE_CREDENTIALS,
    )  # fmt: skip
    provisioner.start()
    rest = KubeRest.from_kubeconfig(hub.kubeconfig)
    try:

        async def claim_kind_served() -> tuple[bool, Any]:
            crd = await rest.request("GET", f"{objects.CRD_PATH}/clusterclaims.platform.fleetplane.io")
            conditions = (crd.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions), conditions

        await eventually("the ClusterClaim kind served", claim_kind_served, provisioner.log, timeout=120)
        yield provisioner, objects.Objects(rest)
    finally:
        died = provisioner.died()
        provisioner.stop()
        await asyncio.to_thread(
            kubectl.run, hub.kubeconfig, "delete", "composition", COMPOSITION, "--ignore-not-found"
        )
        await rest.close()
    if died is not None:
        pytest.fail(f"the provisioner exited with {died}:\n{process.log_tail(provisioner.log, 60)}")


async def test_a_claim_creates_resizes_and_deletes_an_eks_cluster(
    hub: kube.Cluster,
    aws_provisioner: tuple[Subcommand, objects.Objects],
    aws_session: boto3.Session,  # noqa: F811
    moto_endpoint: str,  # noqa: F811
) -> None:
    provisioner, hub_api = aws_provisioner
    eks = aws_session.client("eks", endpoint_url=moto_endpoint)
    claim_ref = {"apiVersion": GROUP, "kind": "ClusterClaim", "metadata": {"name": NAME, "namespace": TEAM}}

    async def settled(what: str, check: Any, timeout: float = 240) -> Any:
        return await eventually(what, check, provisioner.log, timeout=timeout)

    async def composite() -> dict[str, Any]:
        claim = await hub_api.get(claim_ref) or {}
        ref = (claim.get("spec") or {}).get("resourceRef") or {}
        if not ref.get("name"):
            return {}
        return await hub_api.get({**ref, "metadata": {"name": ref["name"]}}) or {}

    async def ready() -> tuple[bool, Any]:
        conditions = ((await hub_api.get(claim_ref) or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions), conditions

    def nodes() -> int:
        group = eks.describe_nodegroup(clusterName=cluster, nodegroupName=f"{cluster}-nodes")["nodegroup"]
        return int(group["scalingConfig"]["desiredSize"])

    # Created: Ready, with our tags and the claim's node count.
    await asyncio.to_thread(kubectl.apply, hub.kubeconfig, [_claim(2)])
    await settled(f"claim {NAME} Ready", ready)
    cluster = str((await composite())["metadata"]["name"])
    described = (await asyncio.to_thread(eks.describe_cluster, name=cluster))["cluster"]
    assert described["tags"][CLUSTER_TAG] == cluster and described["tags"][MANAGED_BY_TAG] == MANAGED_BY
    assert described["version"] == "1.31"
    assert await asyncio.to_thread(nodes) == 2
    inventory = await hub_api.get(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"cluster-{cluster}", "namespace": INVENTORY_NAMESPACE},
        }
    )
    assert inventory is not None

    async def status_shows(count: int) -> tuple[bool, Any]:
        found = ((await composite()).get("status") or {}).get("cluster") or {}
        return found.get("nodeCount") == str(count) and found.get("version") == "1.31", found

    await settled("node count 2 in the composite's status", lambda: status_shows(2), timeout=60)

    # Resized: the node group follows the claim, and so does the status.
    patch = json.dumps({"spec": {"parameters": {"nodeCount": 4}}})
    await asyncio.to_thread(
        kubectl.run, hub.kubeconfig, "patch", "clusterclaim", NAME, "-n", TEAM, "--type", "merge", "-p", patch
    )

    async def resized() -> tuple[bool, Any]:
        count = await asyncio.to_thread(nodes)
        return count == 4, count

    await settled("the node group resized to 4", resized, timeout=120)
    await settled("node count 4 in the composite's status", lambda: status_shows(4), timeout=60)
    assert (await ready())[0]

    # Deleted: node group and cluster gone from EKS, and the inventory entry.
    await asyncio.to_thread(
        kubectl.run, hub.kubeconfig, "delete", "clusterclaim", NAME, "-n", TEAM, "--wait=false"
    )

    async def gone() -> tuple[bool, Any]:
        return await hub_api.get(claim_ref) is None, None

    await settled(f"claim {NAME} deleted", gone)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        await asyncio.to_thread(eks.describe_cluster, name=cluster)
    assert await hub_api.get(inventory) is None
