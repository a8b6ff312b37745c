"""Changing a running EKS cluster through the aws provider: its node count and its Kubernetes version.

moto implements ``update_nodegroup_config`` (the claim-driven case against moto's server is in
``tests/e2e/test_provisioner/test_aws.py``) but not ``update_cluster_version``, so these cases drive the
provider's own EKS client through botocore's ``Stubber``: each expected call with its exact
parameters, in order, and nothing else (``assert_no_pending_responses``).

Cases: a newer version asked of an ACTIVE cluster starts one upgrade and the cluster stays Ready,
saying so; a cluster already UPDATING gets no second call; a new node count on an ACTIVE node group
sets min, max and desired size; a node group UPDATING gets no second call; a version change goes
before a node-count change (one update at a time); a refused upgrade (more than one minor version)
is a ProviderError naming EKS's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from provisioner.providers.aws import CLUSTER_TAG, MANAGED_BY, MANAGED_BY_TAG, AwsProvider
from provisioner.providers.base import ClusterSpec, Phase, ProviderError

REGION = "eu-west-1"
NAME = "alpha"
NODEGROUP = f"{NAME}-nodes"
SETTINGS = {
    "roleArn": "arn:aws:iam::123456789012:role/eks-cluster",
    "nodeRoleArn": "arn:aws:iam::123456789012:role/eks-nodes",
    "subnetIds": ["subnet-0a1", "subnet-0b2"],
    "securityGroupIds": [],
}
CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="


@pytest.fixture
def provider() -> Iterator[tuple[AwsProvider, Stubber]]:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    aws = AwsProvider(session, region=REGION)
    stubber = Stubber(aws.eks_client())
    with stubber:
        yield aws, stubber
    stubber.assert_no_pending_responses()


def _spec(version: str = "1.31", nodes: int = 2) -> ClusterSpec:
    return ClusterSpec(name=NAME, version=version, region=REGION, node_count=nodes, settings=SETTINGS)


def _cluster(version: str, status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "cluster": {
            "name": NAME,
            "arn": f"arn:aws:eks:{REGION}:123456789012:cluster/{NAME}",
            "version": version,
            "status": status,
            "endpoint": "https://alpha.eks.example",
            "certificateAuthority": {"data": CA},
            "tags": {CLUSTER_TAG: NAME, MANAGED_BY_TAG: MANAGED_BY},
        }
    }


def _nodegroup(size: int, status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "nodegroup": {
            "nodegroupName": NODEGROUP,
            "clusterName": NAME,
            "status": status,
            "scalingConfig": {"minSize": size, "maxSize": size, "desiredSize": size},
        }
    }


def _observe(
    stubber: Stubber, version: str, size: int, *, cluster: str = "ACTIVE", nodes: str = "ACTIVE"
) -> None:
    stubber.add_response("describe_cluster", _cluster(version, cluster), {"name": NAME})
    stubber.add_response(
        "describe_nodegroup", _nodegroup(size, nodes), {"clusterName": NAME, "nodegroupName": NODEGROUP}
    )


def test_a_newer_version_starts_one_upgrade_and_the_cluster_stays_ready(
    provider: tuple[AwsProvider, Stubber],
) -> None:
    aws, stubber = provider
    _observe(stubber, "1.30", 2)
    stubber.add_response(
        "update_cluster_version",
        {"update": {"id": "u-1", "status": "InProgress", "type": "VersionUpdate"}},
        {"name": NAME, "version": "1.31"},
    )
    state = asyncio.run(aws.ensure(_spec("1.31")))
    assert state.phase is Phase.READY
    assert "upgrading EKS cluster alpha from Kubernetes 1.30 to 1.31" in state.message
    assert state.details["version"] == "1.30"


def test_an_upgrade_under_way_is_not_sent_again(provider: tuple[AwsProvider, Stubber]) -> None:
    aws, stubber = provider
    _observe(stubber, "1.30", 2, cluster="UPDATING")
    state = asyncio.run(aws.ensure(_spec("1.31")))
    assert state.phase is Phase.READY
    assert "upgrading" in state.message


def test_a_new_node_count_resizes_the_node_group(provider: tuple[AwsProvider, Stubber]) -> None:
    aws, stubber = provider
    _observe(stubber, "1.31", 2)
    stubber.add_response(
        "update_nodegroup_config",
        {"update": {"id": "u-2", "status": "InProgress", "type": "ConfigUpdate"}},
        {
            "clusterName": NAME,
            "nodegroupName": NODEGROUP,
            "scalingConfig": {"minSize": 5, "maxSize": 5, "desiredSize": 5},
        },
    )
    state = asyncio.run(aws.ensure(_spec(nodes=5)))
    assert state.phase is Phase.READY
    assert f"scaling node group {NODEGROUP} from 2 to 5 nodes" in state.message
    assert state.details["nodeCount"] == "2"


def test_a_resize_under_way_is_not_sent_again(provider: tuple[AwsProvider, Stubber]) -> None:
    aws, stubber = provider
    _observe(stubber, "1.31", 2, nodes="UPDATING")
    assert "scaling" in asyncio.run(aws.ensure(_spec(nodes=5))).message


def test_the_version_goes_first_one_update_at_a_time(provider: tuple[AwsProvider, Stubber]) -> None:
    aws, stubber = provider
    _observe(stubber, "1.30", 2)
    stubber.add_response(
        "update_cluster_version",
        {"update": {"id": "u-3", "status": "InProgress", "type": "VersionUpdate"}},
        {"name": NAME, "version": "1.31"},
    )
    message = asyncio.run(aws.ensure(_spec("1.31", nodes=5))).message
    assert "upgrading" in message and "scaling" not in message


def test_a_refused_upgrade_names_the_reason(provider: tuple[AwsProvider, Stubber]) -> None:
    aws, stubber = provider
    _observe(stubber, "1.29", 2)
    stubber.add_client_error(
        "update_cluster_version",
        service_error_code="InvalidParameterException",
        service_message="Unsupported Kubernetes minor version update from 1.29 to 1.31",
        expected_params={"name": NAME, "version": "1.31"},
    )
    with pytest.raises(ProviderError, match=r"Unsupported Kubernetes minor version update from 1\.29"):
        asyncio.run(aws.ensure(_spec("1.31")))
