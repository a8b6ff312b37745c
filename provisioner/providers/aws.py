"""The ``aws`` provider: a worker cluster is an EKS cluster with one managed node group.

The reconciler calls ``ensure`` and ``delete`` again until they report ``Ready`` or ``Deleted``, so
neither waits on AWS: each call observes, takes the next step if one is due, and reports the phase.
EKS takes minutes per step; holding a reconcile for that long would stall every other claim.

boto3 is synchronous, so every AWS call runs in a worker thread. Clients are thread-safe and
expensive to build (they load the service model), so each region's client is built once.

Everything this provider creates carries the tags ``fleetplane.io/cluster`` and
``fleetplane.io/managed-by``. A cluster of the same name without them belongs to someone else:
``ensure`` refuses it and ``delete`` leaves it alone.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from provisioner.providers import aws_errors, eks_updates
from provisioner.providers.base import ClusterProvider, ClusterSpec, ClusterState, Phase, ProviderError
from provisioner.providers.eks_access import eks_token, kubeconfig
from provisioner.providers.eks_settings import EksSettings

CLUSTER_TAG = "fleetplane.io/cluster"
MANAGED_BY_TAG = "fleetplane.io/managed-by"
MANAGED_BY = "fleetplane"

# A cluster in these states serves its API; UPDATING is a version or config change in progress.
_CLUSTER_SERVING = {"ACTIVE", "UPDATING"}
# DEGRADED node groups still run nodes; the health issues go into the message.
_NODEGROUP_SERVING = {"ACTIVE", "UPDATING", "DEGRADED"}


class AwsProvider(ClusterProvider):
    name = "aws"

    def __init__(
        self,
        session: boto3.Session | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.session = session if session is not None else boto3.Session(region_name=region)
        self.region = region or self.session.region_name or ""
        if not self.region:
            raise ValueError("the aws provider needs a region: pass --aws-region or set AWS_REGION")
        # Only for an AWS API stand-in (moto in tests); tokens still name the real STS host, which
        # is what a real API server would check them against.
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        # ensure and delete of one cluster never overlap: both decide from what they just observed
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def for_region(cls, region: str, *, endpoint_url: str | None = None) -> AwsProvider:
        """A provider with the default credential chain (profile, environment, instance role)."""
        return cls(boto3.Session(region_name=region), region=region, endpoint_url=endpoint_url)

    def eks_client(self, region: str | None = None) -> Any:
        """The EKS client for ``region`` (the provider's own by default), built on first use."""
        region = region or self.region
        with self._clients_lock:
            client = self._clients.get(region)
            if client is None:
                # Bounded timeouts: a hung connection would otherwise hold a worker thread forever.
                config = Config(
                    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60
                )
                client = self.session.client(
                    "eks", region_name=region, endpoint_url=self.endpoint_url, config=config
                )
                self._clients[region] = client
            return client

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _region(self, spec: ClusterSpec) -> str:
        return spec.region or self.region

    # ---- ensure

    async def ensure(self, spec: ClusterSpec) -> ClusterState:
        settings = EksSettings.parse(spec.settings)
        region = self._region(spec)
        async with self._lock(spec.name):
            with aws_errors.as_provider_errors(spec.name, region):
                return await self._ensure(spec, settings, region)

    async def _ensure(self, spec: ClusterSpec, settings: EksSettings, region: str) -> ClusterState:
        name = spec.name
        cluster = await self._describe_cluster(region, name)
        if cluster is None:
            cluster = await self._create_cluster(spec, settings, region)
        if not _is_ours(cluster, name):
            raise _name_taken(cluster, name, region)
        details = _details(cluster, name, region)
        status = str(cluster.get("status", ""))
        if status == "FAILED":
            raise ProviderError(
                "ClusterFailed",
                f"EKS cluster {name} in {region} failed: {_issues(cluster)}; "
                "delete the claim to remove it, then create it again",
                retryable=False,
            )
        if status == "DELETING":
            return ClusterState(
                Phase.CREATING,
                f"EKS cluster {name} is still being deleted; it is created again once it is gone",
                details=details,
            )
        if status not in _CLUSTER_SERVING:
            return ClusterState(Phase.CREATING, f"EKS cluster {name} is {status}", details=details)

        nodegroup_name = _nodegroup_name(name)
        nodegroup = await self._describe_nodegroup(region, name, nodegroup_name)
        if nodegroup is None:
            nodegroup = await self._create_nodegroup(spec, settings, region)
        nodegroup_status = str(nodegroup.get("status", ""))
        if nodegroup_status == "CREATE_FAILED":
            raise ProviderError(
                "NodeGroupFailed",
                f"node group {nodegroup_name} of EKS cluster {name} failed: {_issues(nodegroup)}; "
                "delete the claim to remove it, then create it again",
                retryable=False,
            )
        if nodegroup_status not in _NODEGROUP_SERVING:
            return ClusterState(
                Phase.CREATING,
                f"EKS cluster {name} is {status}; its node group {nodegroup_name} is {nodegroup_status}",
                details=details,
            )

        endpoint = str(cluster.get("endpoint") or "")
        ca_data = str((cluster.get("certificateAuthority") or {}).get("data") or "")
        if not endpoint or not ca_data:
            return ClusterState(
                Phase.CREATING, f"EKS cluster {name} has no endpoint or CA yet", details=details
            )
        # A running cluster serves while it is upgraded or scaled: Ready, saying what is under way.
        updating = await eks_updates.converge(partial(self._call, region), spec, cluster, nodegroup)
        details |= eks_updates.details(cluster, nodegroup)
        token = await asyncio.to_thread(eks_token, self.session, name, region)
        message = f"EKS cluster {name} and node group {nodegroup_name} are active"
        if nodegroup_status == "DEGRADED":
            message = (
                f"EKS cluster {name} is active; node group {nodegroup_name} is DEGRADED: {_issues(nodegroup)}"
            )
        if updating:
            message += f"; {updating}"
        return ClusterState(
            Phase.READY,
            message,
            endpoint=endpoint,
            kubeconfig=kubeconfig(name, endpoint, ca_data, token),
            details=details,
        )

    async def _create_cluster(self, spec: ClusterSpec, settings: EksSettings, region: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "name": spec.name,
            "roleArn": settings.role_arn,
            "resourcesVpcConfig": {
                "subnetIds": settings.subnet_ids,
                "securityGroupIds": settings.security_group_ids,
            },
            "tags": _tags(spec),
        }
        if spec.version:
            params["version"] = spec.version
        try:
            response = await self._call(region, "create_cluster", **params)
            return dict(response["cluster"])
        except ClientError as exc:
            if aws_errors.code(exc) != "ResourceInUseException":
                raise
        # Someone created it between our describe and create: another provisioner replica, or our
        # own earlier create whose reply was lost. The tags tell whether it is ours.
        cluster = await self._describe_cluster(region, spec.name)
        if cluster is None:
            raise ProviderError("ClusterNameInUse", f"EKS cluster name {spec.name} is in use in {region}")
        return cluster

    async def _create_nodegroup(
        self, spec: ClusterSpec, settings: EksSettings, region: str
    ) -> dict[str, Any]:
        nodegroup_name = _nodegroup_name(spec.name)
        params: dict[str, Any] = {
            "clusterName": spec.name,
            "nodegroupName": nodegroup_name,
            "scalingConfig": {
                "minSize": spec.node_count,
                "maxSize": spec.node_count,
                "desiredSize": spec.node_count,
            },
            "subnets": settings.subnet_ids,
            "nodeRole": settings.node_role_arn,
            "tags": _tags(spec),
        }
        if spec.instance_type:
            params["instanceTypes"] = [spec.instance_type]
        try:
            response = await self._call(region, "create_nodegroup", **params)
            return dict(response["nodegroup"])
        except ClientError as exc:
            if aws_errors.code(exc) != "ResourceInUseException":
                raise
        nodegroup = await self._describe_nodegroup(region, spec.name, nodegroup_name)
        if nodegroup is None:
            raise ProviderError("NodeGroupNameInUse", f"node group {nodegroup_name} of {spec.name} is in use")
        return nodegroup

    # ---- delete

    async def delete(self, spec: ClusterSpec) -> ClusterState:
        region = self._region(spec)
        async with self._lock(spec.name):
            with aws_errors.as_provider_errors(spec.name, region):
                return await self._delete(spec.name, region)

    async def _delete(self, name: str, region: str) -> ClusterState:
        cluster = await self._describe_cluster(region, name)
        if cluster is None:
            return ClusterState(Phase.DELETED, f"EKS cluster {name} is gone", details={"region": region})
        if not _is_ours(cluster, name):
            # Most likely the claim was refused because of this very name clash: the claim can go,
            # the other cluster must stay.
            return ClusterState(
                Phase.DELETED,
                f"the EKS cluster named {name} in {region} was not created by fleetplane: left as it is",
                details={"region": region},
            )
        details = _details(cluster, name, region)
        if cluster.get("status") == "DELETING":
            return ClusterState(Phase.DELETING, f"EKS cluster {name} is being deleted", details=details)

        # EKS refuses to delete a cluster that still has node groups, so they go first.
        waiting: list[str] = []
        for nodegroup_name in await self._list_nodegroups(region, name):
            nodegroup = await self._describe_nodegroup(region, name, nodegroup_name)
            if nodegroup is None:
                continue
            if nodegroup.get("status") != "DELETING":
                try:
                    await self._call(
                        region, "delete_nodegroup", clusterName=name, nodegroupName=nodegroup_name
                    )
                except ClientError as exc:
                    if aws_errors.code(exc) == "ResourceNotFoundException":
                        continue
                    # A node group still creating or updating cannot be deleted yet: next call.
                    if aws_errors.code(exc) != "ResourceInUseException":
                        raise
            waiting.append(nodegroup_name)
        if waiting:
            return ClusterState(
                Phase.DELETING,
                f"deleting node groups {', '.join(waiting)} of EKS cluster {name}; "
                "the cluster goes after them",
                details=details,
            )

        try:
            await self._call(region, "delete_cluster", name=name)
        except ClientError as exc:
            if aws_errors.code(exc) == "ResourceNotFoundException":
                return ClusterState(Phase.DELETED, f"EKS cluster {name} is gone", details=details)
            if aws_errors.code(exc) != "ResourceInUseException":
                raise
            return ClusterState(
                Phase.DELETING,
                f"EKS cluster {name} cannot be deleted yet: {aws_errors.message(exc)}",
                details=details,
            )
        return ClusterState(Phase.DELETING, f"EKS cluster {name} is being deleted", details=details)

    # ---- AWS calls, each in a worker thread

    async def _call(self, region: str, operation: str, **params: Any) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            return dict(getattr(self.eks_client(region), operation)(**params))

        return await asyncio.to_thread(call)

    async def _describe_cluster(self, region: str, name: str) -> dict[str, Any] | None:
        try:
            response = await self._call(region, "describe_cluster", name=name)
        except ClientError as exc:
            if aws_errors.code(exc) == "ResourceNotFoundException":
                return None
            raise
        return dict(response["cluster"])

    async def _describe_nodegroup(self, region: str, name: str, nodegroup_name: str) -> dict[str, Any] | None:
        try:
            response = await self._call(
                region, "describe_nodegroup", clusterName=name, nodegroupName=nodegroup_name
            )
        except ClientError as exc:
            if aws_errors.code(exc) == "ResourceNotFoundException":
                return None
            raise
        return dict(response["nodegroup"])

    async def _list_nodegroups(self, region: str, name: str) -> list[str]:
        def call() -> list[str]:
            pages = self.eks_client(region).get_paginator("list_nodegroups").paginate(clusterName=name)
            return [str(nodegroup) for page in pages for nodegroup in page.get("nodegroups", [])]

        return await asyncio.to_thread(call)


def _nodegroup_name(cluster_name: str) -> str:
    return f"{cluster_name}-nodes"


def _tags(spec: ClusterSpec) -> dict[str, str]:
    # Ours last: a claim's tags must not be able to fake or drop the ownership marks.
    return {**spec.tags, CLUSTER_TAG: spec.name, MANAGED_BY_TAG: MANAGED_BY}


def _is_ours(cluster: dict[str, Any], name: str) -> bool:
    tags = cluster.get("tags") or {}
    return bool(tags.get(MANAGED_BY_TAG) == MANAGED_BY and tags.get(CLUSTER_TAG) == name)


def _name_taken(cluster: dict[str, Any], name: str, region: str) -> ProviderError:
    return ProviderError(
        "ClusterNameTaken",
        f"an EKS cluster named {name} already exists in {region} ({cluster.get('arn', 'no ARN')}) and "
        f"fleetplane did not create it (it lacks the tags {CLUSTER_TAG}={name} and "
        f"{MANAGED_BY_TAG}={MANAGED_BY}): "
        "give the claim another name, or add those tags to that cluster to have fleetplane adopt it",
        retryable=False,
    )


def _details(cluster: dict[str, Any], name: str, region: str) -> dict[str, str]:
    return {"clusterArn": str(cluster.get("arn", "")), "nodeGroup": _nodegroup_name(name), "region": region}


def _issues(resource: dict[str, Any]) -> str:
    issues = (resource.get("health") or {}).get("issues") or []
    described = [f"{issue.get('code', '?')}: {issue.get('message', '')}" for issue in issues]
    return "; ".join(described) or f"status {resource.get('status')} with no health issues reported"
