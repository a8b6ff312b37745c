"""Reaching an EKS cluster's API server: the bearer token ``aws eks get-token`` makes, and the
kubeconfig the provider hands the reconciler with it."""

from __future__ import annotations

import base64
from typing import Any

import boto3
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest

from provisioner.providers.base import ProviderError

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
TOKEN_EXPIRES_SECONDS = 60


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


def kubeconfig(name: str, endpoint: str, ca_data: str, token: str) -> dict[str, Any]:
    user = f"{name}-fleetplane"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }
