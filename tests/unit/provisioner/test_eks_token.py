"""The EKS bearer token: the shape ``aws eks get-token`` gives it and an API server's authenticator checks.

Cases: the prefix and unpadded base64url; the decoded URL is a presigned STS GetCallerIdentity on
the region's STS host, valid 60 s, with the cluster-id header signed; the signature, recomputed here
from the SigV4 rules, covers the cluster name (so a token for one cluster fails on another); the
session token travels along; the China partition's host; no credentials is a ProviderError.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import pytest

from provisioner.providers.base import ProviderError
from provisioner.providers.eks_access import eks_token

SECRET = "secret-key-for-tests"


def _session(token: str | None = None) -> boto3.Session:
    return boto3.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key=SECRET, aws_session_token=token)


def _decode(token: str) -> str:
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    assert "=" not in body and "+" not in body and "/" not in body
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def _expected_signature(url: str, cluster_name: str) -> str:
    """SigV4 for a presigned GET, computed from the published algorithm rather than botocore's."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature_free = sorted((k, v) for k, v in query.items() if k != "X-Amz-Signature")
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in signature_free)
    canonical_request = "\n".join(
        [
            "GET",
            parts.path or "/",
            canonical_query,
            f"host:{parts.netloc}\nx-k8s-aws-id:{cluster_name}\n",
            query["X-Amz-SignedHeaders"],
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    _, date, region, service, terminator = query["X-Amz-Credential"].split("/")
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            f"{date}/{region}/{service}/{terminator}",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{SECRET}".encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_token_is_a_presigned_get_caller_identity_url_for_the_cluster() -> None:
    url = _decode(eks_token(_session(), "alpha", "eu-west-1"))

    parts = urlsplit(url)
    assert url.startswith("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&")
    query = dict(parse_qsl(parts.query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert query["X-Amz-Credential"].startswith("AKIDTEST/")
    assert query["X-Amz-Credential"].endswith("/eu-west-1/sts/aws4_request")
    assert "X-Amz-Security-Token" not in query
    assert query["X-Amz-Signature"] == _expected_signature(url, "alpha")
    assert query["X-Amz-Signature"] != _expected_signature(url, "beta")


def test_a_session_token_is_carried_in_the_url() -> None:
    query = dict(
        parse_qsl(urlsplit(_decode(eks_token(_session("sess/token+1"), "alpha", "us-east-1"))).query)
    )

    assert query["X-Amz-Security-Token"] == "sess/token+1"


def test_the_china_partition_has_its_own_sts_host() -> None:
    url = _decode(eks_token(_session(), "alpha", "cn-north-1"))

    assert urlsplit(url).netloc == "sts.cn-north-1.amazonaws.com.cn"


def test_no_credentials_is_a_provider_error(monkeypatch: pytest.MonkeyPatch) -> None:
    session = boto3.Session(region_name="us-east-1")
    monkeypatch.setattr(session, "get_credentials", lambda: None)

    with pytest.raises(ProviderError) as failed:
        eks_token(session, "alpha", "us-east-1")

    assert failed.value.reason == "NoCredentials"
