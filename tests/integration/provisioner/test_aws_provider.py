"""The aws provider against moto's server mode, over real HTTP.

moto's cluster endpoint is no API server, so these tests assert the EKS calls the provider makes,
in order (recorded by a botocore ``before-call`` hook on the provider's own client), and what moto
holds afterwards. moto makes clusters and node groups ACTIVE at once and deletes them at once; the
phases a real EKS goes through (CREATING, FAILED, DELETING) are played by an ``after-call`` hook that
rewrites the status in moto's real replies, so the provider still talks HTTP to moto throughout.

Cases: the create flow (calls, tags, settings, READY with endpoint and an EKS-token kubeconfig);
ensure again creates nothing; CREATING clusters and node groups are reported and never re-created; a
create race (ResourceInUse) adopts our cluster and refuses a foreign one; a same-named cluster
without our tags is refused and left alone by delete; invalid settings fail before any call; an AWS
error is a non-retryable ProviderError; FAILED cluster and CREATE_FAILED node group; delete removes
node groups first, then the cluster, then reports Deleted; a node group still deleting holds the
cluster; deleting a missing cluster; AWS calls run off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from provisioner.providers.aws import CLUSTER_TAG, MANAGED_BY_TAG, AwsProvider
from provisioner.providers.base import ClusterSpec, Phase, ProviderError
from provisioner.providers.eks_access import TOKEN_PREFIX
from tests.integration.provisioner.conftest import REGION

pytestmark = pytest.mark.integration

SETTINGS: dict[str, Any] = {
    "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
    "nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes",
    "subnetIds": ["subnet-0a1", "subnet-0b2"],
    "securityGroupIds": ["sg-0c3"],
}
SPEC = ClusterSpec(
    name="alpha",
    version="1.37",
    region=REGION,
    node_count=2,
    instance_type="t3.large",
    labels={"env": "test"},
    tags={"team": "payments"},
    settings=SETTINGS,
)
OUR_TAGS = {CLUSTER_TAG: "alpha", MANAGED_BY_TAG: "fleetplane"}

CREATE_FLOW = ["DescribeCluster", "CreateCluster", "DescribeNodegroup", "CreateNodegroup"]
OBSERVE = ["DescribeCluster", "DescribeNodegroup"]


class Calls:
    """The EKS operations a client sends, in order; ``take`` returns and forgets them."""

    def __init__(self, client: Any) -> None:
        self._names: list[str] = []
        client.meta.events.register("before-call.eks.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self._names.append(model.name)

    def take(self) -> list[str]:
        taken, self._names = self._names, []
        return taken


class Statuses:
    """Rewrites the status moto reports for a cluster or node group, as a slower EKS would report it."""

    def __init__(self, client: Any) -> None:
        self.cluster: str | None = None
        self.nodegroup: str | None = None
        self.issues: list[dict[str, str]] = []
        for operation in ("DescribeCluster", "CreateCluster"):
            client.meta.events.register(f"after-call.eks.{operation}", self._cluster)
        for operation in ("DescribeNodegroup", "CreateNodegroup"):
            client.meta.events.register(f"after-call.eks.{operation}", self._nodegroup)

    def _cluster(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.cluster and "cluster" in parsed:
            parsed["cluster"]["status"] = self.cluster
            parsed["cluster"]["health"] = {"issues": self.issues}

    def _nodegroup(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.nodegroup and "nodegroup" in parsed:
            parsed["nodegroup"]["status"] = self.nodegroup
            parsed["nodegroup"]["health"] = {"issues": self.issues}


@pytest.fixture
def provider(moto_endpoint: str, aws_session: boto3.Session) -> AwsProvider:
    return AwsProvider(aws_session, region=REGION, endpoint_url=moto_endpoint)


@pytest.fixture
def calls(provider: AwsProvider) -> Calls:
    return Calls(provider.eks_client())


@pytest.fixture
def statuses(provider: AwsProvider) -> Statuses:
    return Statuses(provider.eks_client())


@pytest.fixture
def outside(moto_endpoint: str, aws_session: boto3.Session) -> Any:
    """A plain EKS client, not the provider's: someone else's view of the account."""
    return aws_session.client("eks", endpoint_url=moto_endpoint)


def _create_directly(outside: Any, tags: dict[str, str]) -> None:
    outside.create_cluster(
        name="alpha",
        # the version the claim asks for: a cluster on another one would be upgraded when adopted
        version=SPEC.version,
        roleArn=SETTINGS["roleArn"],
        resourcesVpcConfig={"subnetIds": SETTINGS["subnetIds"]},
        tags=tags,
    )


async def test_create_flow_reports_ready_with_an_eks_kubeconfig(
    provider: AwsProvider, calls: Calls, outside: Any
) -> None:
    state = await provider.ensure(SPEC)

    assert calls.take() == CREATE_FLOW
    assert state.phase is Phase.READY, state.message
    cluster = outside.describe_cluster(name="alpha")["cluster"]
    assert cluster["version"] == "1.37"
    assert cluster["roleArn"] == SETTINGS["roleArn"]
    assert cluster["resourcesVpcConfig"]["subnetIds"] == SETTINGS["subnetIds"]
    assert cluster["resourcesVpcConfig"]["securityGroupIds"] == SETTINGS["securityGroupIds"]
    assert cluster["tags"] == {"team": "payments", **OUR_TAGS}
    nodegroup = outside.describe_nodegroup(clusterName="alpha", nodegroupName="alpha-nodes")["nodegroup"]
    assert nodegroup["scalingConfig"] == {"minSize": 2, "maxSize": 2, "desiredSize": 2}
    assert nodegroup["instanceTypes"] == ["t3.large"]
    assert nodegroup["subnets"] == SETTINGS["subnetIds"]
    assert nodegroup["nodeRole"] == SETTINGS["nodeRoleArn"]
    assert nodegroup["tags"] == {"team": "payments", **OUR_TAGS}

    assert state.endpoint == cluster["endpoint"]
    assert state.details == {
        "clusterArn": cluster["arn"],
        "nodeGroup": "alpha-nodes",
        "region": REGION,
        "version": "1.37",
        "nodeCount": "2",
    }
    kubeconfig = state.kubeconfig
    assert kubeconfig is not None
    assert kubeconfig["current-context"] == "alpha"
    [context] = kubeconfig["contexts"]
    [kube_cluster] = kubeconfig["clusters"]
    [user] = kubeconfig["users"]
    assert context["context"] == {"cluster": kube_cluster["name"], "user": user["name"]}
    assert kube_cluster["cluster"] == {
        "server": cluster["endpoint"],
        "certificate-authority-data": cluster["certificateAuthority"]["data"],
    }
    assert user["user"]["token"].startswith(TOKEN_PREFIX)


async def test_a_spec_without_region_uses_the_providers(provider: AwsProvider, calls: Calls) -> None:
    state = await provider.ensure(dataclasses.replace(SPEC, region=""))

    assert state.ready
    assert state.details["region"] == REGION
    assert calls.take() == CREATE_FLOW


async def test_ensure_again_creates_nothing(provider: AwsProvider, calls: Calls, outside: Any) -> None:
    first = await provider.ensure(SPEC)
    calls.take()

    again = [await provider.ensure(SPEC) for _ in range(2)]

    assert calls.take() == OBSERVE * 2
    assert all(state.ready and state.endpoint == first.endpoint for state in again)
    assert outside.list_clusters()["clusters"] == ["alpha"]
    assert outside.list_nodegroups(clusterName="alpha")["nodegroups"] == ["alpha-nodes"]


async def test_creating_cluster_and_node_group_are_waited_for_not_recreated(
    provider: AwsProvider, calls: Calls, statuses: Statuses, outside: Any
) -> None:
    statuses.cluster = "CREATING"
    first = await provider.ensure(SPEC)
    second = await provider.ensure(SPEC)

    assert [first.phase, second.phase] == [Phase.CREATING, Phase.CREATING]
    assert "CREATING" in second.message
    assert first.kubeconfig is None
    assert first.details["clusterArn"].endswith(":cluster/alpha")
    assert calls.take() == ["DescribeCluster", "CreateCluster", "DescribeCluster"]

    statuses.cluster = None
    statuses.nodegroup = "CREATING"
    third = await provider.ensure(SPEC)
    fourth = await provider.ensure(SPEC)

    assert [third.phase, fourth.phase] == [Phase.CREATING, Phase.CREATING]
    assert "node group alpha-nodes is CREATING" in fourth.message
    assert calls.take() == ["DescribeCluster", "DescribeNodegroup", "CreateNodegroup", *OBSERVE]

    statuses.nodegroup = None
    assert (await provider.ensure(SPEC)).ready
    assert calls.take() == OBSERVE
    assert outside.list_clusters()["clusters"] == ["alpha"]
    assert outside.list_nodegroups(clusterName="alpha")["nodegroups"] == ["alpha-nodes"]


@pytest.mark.parametrize(("tags", "ours"), [(OUR_TAGS, True), ({"owner": "someone-else"}, False)])
async def test_a_create_race_adopts_our_cluster_and_refuses_a_foreign_one(
    provider: AwsProvider, calls: Calls, outside: Any, tags: dict[str, str], ours: bool
) -> None:
    """Between our describe and our create, the cluster appears (another replica, or someone else)."""
    appeared = False

    def create_it_first(**_: Any) -> None:
        nonlocal appeared
        if not appeared:
            appeared = True
            _create_directly(outside, tags)

    provider.eks_client().meta.events.register("after-call.eks.DescribeCluster", create_it_first)

    if ours:
        assert (await provider.ensure(SPEC)).ready
        assert calls.take() == ["DescribeCluster", "CreateCluster", "DescribeCluster", *CREATE_FLOW[2:]]
    else:
        with pytest.raises(ProviderError) as failed:
            await provider.ensure(SPEC)
        assert (failed.value.reason, failed.value.retryable) == ("ClusterNameTaken", False)
        assert calls.take() == ["DescribeCluster", "CreateCluster", "DescribeCluster"]
    assert outside.list_clusters()["clusters"] == ["alpha"]


async def test_a_cluster_not_created_by_fleetplane_is_refused_and_left_alone(
    provider: AwsProvider, calls: Calls, outside: Any
) -> None:
    _create_directly(outside, {"owner": "someone-else", MANAGED_BY_TAG: "fleetplane"})

    with pytest.raises(ProviderError) as failed:
        await provider.ensure(SPEC)
    assert (failed.value.reason, failed.value.retryable) == ("ClusterNameTaken", False)
    assert "an EKS cluster named alpha already exists" in failed.value.message
    assert f"{CLUSTER_TAG}=alpha" in failed.value.message
    assert calls.take() == ["DescribeCluster"]

    # deleting the refused claim must not delete the other cluster
    state = await provider.delete(SPEC)
    assert state.phase is Phase.DELETED
    assert "not created by fleetplane" in state.message
    assert calls.take() == ["DescribeCluster"]
    assert outside.describe_cluster(name="alpha")["cluster"]["tags"]["owner"] == "someone-else"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({k: v for k, v in SETTINGS.items() if k != "roleArn"}, "roleArn"),
        ({k: v for k, v in SETTINGS.items() if k != "nodeRoleArn"}, "nodeRoleArn"),
        ({**SETTINGS, "subnetIds": "subnet-0a1"}, "subnetIds"),
        ({**SETTINGS, "subnetIds": []}, "subnetIds"),
        ({k: v for k, v in SETTINGS.items() if k != "securityGroupIds"}, "securityGroupIds"),
    ],
)
async def test_invalid_settings_fail_before_any_call(
    provider: AwsProvider, calls: Calls, settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(ProviderError) as failed:
        await provider.ensure(dataclasses.replace(SPEC, settings=settings))

    assert (failed.value.reason, failed.value.retryable) == ("InvalidSettings", False)
    assert f"spec.parameters.settings.{named}: set {named} to " in failed.value.message
    assert calls.take() == []


async def test_an_aws_error_on_create_is_a_provider_error(provider: AwsProvider, calls: Calls) -> None:
    with pytest.raises(ProviderError) as failed:
        await provider.ensure(dataclasses.replace(SPEC, settings={**SETTINGS, "roleArn": "not-an-arn"}))

    assert (failed.value.reason, failed.value.retryable) == ("InvalidParameter", False)
    assert "CreateCluster for EKS cluster alpha in us-east-1: Invalid Role Arn" in failed.value.message
    assert calls.take() == ["DescribeCluster", "CreateCluster"]


async def test_a_node_count_below_one_is_refused_before_sending(provider: AwsProvider) -> None:
    with pytest.raises(ProviderError) as failed:
        await provider.ensure(dataclasses.replace(SPEC, node_count=0))

    assert (failed.value.reason, failed.value.retryable) == ("InvalidParameter", False)
    assert "scalingConfig" in failed.value.message


@pytest.mark.parametrize(
    ("set_status", "reason"),
    [
        (lambda s: setattr(s, "cluster", "FAILED"), "ClusterFailed"),
        (lambda s: setattr(s, "nodegroup", "CREATE_FAILED"), "NodeGroupFailed"),
    ],
)
async def test_a_failed_cluster_or_node_group_is_a_provider_error(
    provider: AwsProvider, statuses: Statuses, set_status: Callable[[Statuses], None], reason: str
) -> None:
    set_status(statuses)
    statuses.issues = [{"code": "Ec2SubnetInvalidConfiguration", "message": "subnet-0a1 has no route"}]

    with pytest.raises(ProviderError) as failed:
        await provider.ensure(SPEC)

    assert (failed.value.reason, failed.value.retryable) == (reason, False)
    assert "Ec2SubnetInvalidConfiguration: subnet-0a1 has no route" in failed.value.message


async def test_delete_removes_node_groups_then_the_cluster(
    provider: AwsProvider, calls: Calls, outside: Any
) -> None:
    assert (await provider.ensure(SPEC)).ready
    calls.take()

    phases = []
    for _ in range(5):
        state = await provider.delete(SPEC)
        phases.append(state.phase)
        if state.phase is Phase.DELETED:
            break

    assert phases == [Phase.DELETING, Phase.DELETING, Phase.DELETED]
    assert calls.take() == [
        "DescribeCluster",
        "ListNodegroups",
        "DescribeNodegroup",
        "DeleteNodegroup",
        "DescribeCluster",
        "ListNodegroups",
        "DeleteCluster",
        "DescribeCluster",
    ]
    assert outside.list_clusters()["clusters"] == []
    # once gone, deleting again is a no-op
    assert (await provider.delete(SPEC)).phase is Phase.DELETED
    assert calls.take() == ["DescribeCluster"]


async def test_a_node_group_still_deleting_holds_the_cluster(
    provider: AwsProvider, calls: Calls, statuses: Statuses
) -> None:
    assert (await provider.ensure(SPEC)).ready
    calls.take()
    statuses.nodegroup = "DELETING"

    state = await provider.delete(SPEC)

    assert state.phase is Phase.DELETING
    assert "deleting node groups alpha-nodes" in state.message
    assert calls.take() == ["DescribeCluster", "ListNodegroups", "DescribeNodegroup"]


async def test_deleting_a_missing_cluster_is_done_at_once(provider: AwsProvider, calls: Calls) -> None:
    state = await provider.delete(SPEC)

    assert state.phase is Phase.DELETED
    assert calls.take() == ["DescribeCluster"]


async def test_aws_calls_run_off_the_event_loop(provider: AwsProvider) -> None:
    def slow(**_: Any) -> None:
        time.sleep(0.3)

    provider.eks_client().meta.events.register("before-call.eks.DescribeCluster", slow)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        assert (await provider.delete(SPEC)).phase is Phase.DELETED
    finally:
        ticker.cancel()
    assert ticks >= 10
