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
import base64
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from provisioner.providers.base import ClusterSpec, ClusterState, Phase, ProviderError

CLUSTER_TAG = "fleetplane.io/cluster"
MANAGED_BY_TAG = "fleetplane.io/managed-by"
MANAGED_BY = "fleetplane"

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
TOKEN_EXPIRES_SECONDS = 60

# Bad input: retrying the same request cannot succeed until the claim changes.
_NOT_RETRYABLE = {
    "InvalidParameterException",
    "InvalidRequestException",
    "UnsupportedAvailabilityZoneException",
}
# A cluster in these states serves its API; UPDATING is a version or config change in progress.
_CLUSTER_SERVING = {"ACTIVE", "UPDATING"}
# DEGRADED node groups still run nodes; the health issues go into the message.
_NODEGROUP_SERVING = {"ACTIVE", "UPDATING", "DEGRADED"}

_SETTINGS_HELP = {
    "roleArn": "the ARN of the IAM role the EKS control plane assumes (arn:aws:iam::ACCOUNT:role/NAME)",
    "nodeRoleArn": "the ARN of the IAM role the worker nodes assume (arn:aws:iam::ACCOUNT:role/NAME)",
    "subnetIds": "a list of subnet IDs, in at least two availability zones",
    "securityGroupIds": "a list of security group IDs for the control plane ([] for only the one EKS makes)",
}


def eks_token(session: boto3.Session, cluster_name: str, region: str) -> str:
    """A bearer token for an EKS cluster's API server, as ``aws eks get-token`` makes it.

    The token is a presigned STS GetCallerIdentity URL: the API server calls it to learn who the
    caller is. The signed ``x-k8s-aws-id`` header binds the token to one cluster, so it cannot be
    replayed against another. No request is sent from here; signing needs only the credentials.
    """
    credentials = session.get_credentials()
    if credentials is None:
        raise ProviderError(
            "NoCredentials",
            "no AWS credentials for the EKS token: "
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    request = AWSRequest(
        method="GET",
        url=f"https://{_sts_host(region)}/?Action=GetCallerIdentity&Version=2011-06-15",
        headers={CLUSTER_ID_HEADER: cluster_name},
    )
    # Frozen: refreshable credentials could rotate between reading the key and the token.
    signer = SigV4QueryAuth(
        credentials.get_frozen_credentials(), "sts", region, expires=TOKEN_EXPIRES_SECONDS
    )
    signer.add_auth(request)
    encoded = base64.urlsafe_b64encode(str(request.url).encode()).decode().rstrip("=")
    return TOKEN_PREFIX + encoded


def _sts_host(region: str) -> str:
    # The API server's authenticator accepts only STS hosts it knows: the regional one of the
    # cluster's partition.
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"sts.{region}.{suffix}"


@dataclass(frozen=True)
class EksSettings:
    """``spec.parameters.settings`` of an aws claim: what EKS needs that a composition cannot guess."""

    role_arn: str
    node_role_arn: str
    subnet_ids: list[str]
    security_group_ids: list[str]

    @classmethod
    def parse(cls, settings: dict[str, Any]) -> EksSettings:
        problems: list[str] = []

        def text(key: str) -> str:
            value = settings.get(key)
            if isinstance(value, str) and value:
                return value
            problems.append(_settings_problem(key, value))
            return ""

        def strings(key: str, *, may_be_empty: bool) -> list[str]:
            value = settings.get(key)
            if (
                isinstance(value, list)
                and all(isinstance(item, str) and item for item in value)
                and (value or may_be_empty)
            ):
                return list(value)
            problems.append(_settings_problem(key, value))
            return []

        parsed = cls(
            role_arn=text("roleArn"),
            node_role_arn=text("nodeRoleArn"),
            subnet_ids=strings("subnetIds", may_be_empty=False),
            security_group_ids=strings("securityGroupIds", may_be_empty=True),
        )
        if problems:
            raise ProviderError("InvalidSettings", "; ".join(problems), retryable=False)
        return parsed


def _settings_problem(key: str, value: Any) -> str:
    found = "it is missing" if value is None else f"it is {value!r}"
    return f"spec.parameters.settings.{key}: set {key} to {_SETTINGS_HELP[key]} ({found})"


class AwsProvider:
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
            with _aws_errors(spec.name, region):
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
        token = await asyncio.to_thread(eks_token, self.session, name, region)
        message = f"EKS cluster {name} and node group {nodegroup_name} are active"
        if nodegroup_status == "DEGRADED":
            message = (
                f"EKS cluster {name} is active; node group {nodegroup_name} is DEGRADED: {_issues(nodegroup)}"
            )
        return ClusterState(
            Phase.READY,
            message,
            endpoint=endpoint,
            kubeconfig=_kubeconfig(name, endpoint, ca_data, token),
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
            if _code(exc) != "ResourceInUseException":
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
            if _code(exc) != "ResourceInUseException":
                raise
        nodegroup = await self._describe_nodegroup(region, spec.name, nodegroup_name)
        if nodegroup is None:
            raise ProviderError("NodeGroupNameInUse", f"node group {nodegroup_name} of {spec.name} is in use")
        return nodegroup

    # ---- delete

    async def delete(self, spec: ClusterSpec) -> ClusterState:
        region = self._region(spec)
        async with self._lock(spec.name):
            with _aws_errors(spec.name, region):
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
                    if _code(exc) == "ResourceNotFoundException":
                        continue
                    # A node group still creating or updating cannot be deleted yet: next call.
                    if _code(exc) != "ResourceInUseException":
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
            if _code(exc) == "ResourceNotFoundException":
                return ClusterState(Phase.DELETED, f"EKS cluster {name} is gone", details=details)
            if _code(exc) != "ResourceInUseException":
                raise
            return ClusterState(
                Phase.DELETING, f"EKS cluster {name} cannot be deleted yet: {_message(exc)}", details=details
            )
        return ClusterState(Phase.DELETING, f"EKS cluster {name} is being deleted", details=details)

    # ---- waiting, for callers outside the reconciler (CLI, tests)

    async def wait_ready(
        self, spec: ClusterSpec, timeout: float = 1800.0, poll: float = 15.0
    ) -> ClusterState:
        """``ensure`` until the cluster is Ready; ``TimeoutError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await self.ensure(spec)
            if state.ready:
                return state
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"EKS cluster {spec.name} not ready after {timeout:g}s: {state.message}")
            await asyncio.sleep(min(poll, remaining))

    # ---- AWS calls, each in a worker thread

    async def _call(self, region: str, operation: str, **params: Any) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            return dict(getattr(self.eks_client(region), operation)(**params))

        return await asyncio.to_thread(call)

    async def _describe_cluster(self, region: str, name: str) -> dict[str, Any] | None:
        try:
            response = await self._call(region, "describe_cluster", name=name)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
        return dict(response["cluster"])

    async def _describe_nodegroup(self, region: str, name: str, nodegroup_name: str) -> dict[str, Any] | None:
        try:
            response = await self._call(
                region, "describe_nodegroup", clusterName=name, nodegroupName=nodegroup_name
            )
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
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


def _kubeconfig(name: str, endpoint: str, ca_data: str, token: str) -> dict[str, Any]:
    user = f"{name}-fleetplane"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


@contextlib.contextmanager
def _aws_errors(name: str, region: str) -> Iterator[None]:
    """AWS failures as :class:`ProviderError`, so the reconciler turns them into conditions."""
    try:
        yield
    except ClientError as exc:
        code = _code(exc) or "AwsError"
        raise ProviderError(
            code.removesuffix("Exception"),
            f"{exc.operation_name} for EKS cluster {name} in {region}: {_message(exc)}",
            retryable=code not in _NOT_RETRYABLE,
        ) from exc
    except ParamValidationError as exc:
        # botocore checks values against the API model before sending (e.g. a node count below 1)
        raise ProviderError(
            "InvalidParameter", f"EKS cluster {name} in {region}: {exc}", retryable=False
        ) from exc
    except NoCredentialsError as exc:
        raise ProviderError(
            "NoCredentials",
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "for the provisioner",
        ) from exc
    except BotoCoreError as exc:
        raise ProviderError("AwsRequestFailed", f"EKS cluster {name} in {region}: {exc}") from exc
