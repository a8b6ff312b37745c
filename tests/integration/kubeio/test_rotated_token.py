"""A long-running client outlives its token: a ServiceAccount token rotated on disk (a kubeconfig's
``tokenFile``, as a projected token is) is read again when the real API server refuses the old
one, and the same client goes on without a restart.

The old token is bound to a Secret; deleting the Secret makes the API server refuse it (401), once
its authentication cache lets go of it, as it refuses an expired one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest
import yaml

from kubeio import credentials
from kubeio.errors import ClusterError
from kubeio.rest import KubeRest
from localinfra import kube, kubectl

pytestmark = pytest.mark.integration

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def _bound_token(hub: kube.Cluster, account: str, secret: str) -> str:
    kubectl.apply(
        hub.kubeconfig,
        [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": "default"}}],
    )
    return kubectl.run(
        hub.kubeconfig, "create", "token", account, "-n", "default",
        "--bound-object-kind", "Secret", "--bound-object-name", secret,
    ).strip()  # fmt: skip


async def _until_refused(client: KubeRest) -> None:
    """Until the API server refuses this client's token: it caches a token's authentication for
    a few seconds after the token's Secret is gone."""
    try:
        for _ in range(150):
            try:
                await client.request("GET", CONFIGMAPS)
            except ClusterError as exc:
                if exc.status == 401:
                    return
                raise
            await asyncio.sleep(0.2)
        raise AssertionError("the API server still takes a token whose Secret was deleted")
    finally:
        await client.close()


async def test_a_rotated_token_file_is_read_again_when_the_old_token_is_refused(
    hub: kube.Cluster, tmp_path: Path
) -> None:
    account = f"rotating-{uuid.uuid4().hex[:6]}"
    kube.service_account_kubeconfig(hub, "default", account, tmp_path / "unused")
    first, second = f"{account}-first", f"{account}-second"
    token_file = tmp_path / "token"
    token_file.write_text(_bound_token(hub, account, first))
    config = yaml.safe_load(hub.kubeconfig.read_text())
    config["users"] = [{"name": account, "user": {"tokenFile": str(token_file)}}]
    config["contexts"][0]["context"]["user"] = account
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    client = KubeRest.from_kubeconfig(kubeconfig)
    try:
        for _ in range(50):  # the account's binding reaches the API server's authorizer in a moment
            try:
                await client.request("GET", CONFIGMAPS)
                break
            except ClusterError as exc:
                assert exc.status == 403, exc
                await asyncio.sleep(0.2)
        old = KubeRest(dataclasses.replace(credentials.from_kubeconfig(kubeconfig), reload=None))
        token_file.write_text(_bound_token(hub, account, second))  # the kubelet rotates the file
        kubectl.run(hub.kubeconfig, "delete", "secret", first, "-n", "default")  # the old one dies
        await _until_refused(old)
        assert (await client.request("GET", CONFIGMAPS))["kind"] == "ConfigMapList"
        assert client.reloads == 1

        newer = KubeRest(dataclasses.replace(credentials.from_kubeconfig(kubeconfig), reload=None))
        kubectl.run(hub.kubeconfig, "delete", "secret", second, "-n", "default")  # and no new one comes
        await _until_refused(newer)
        with pytest.raises(ClusterError) as refused:
            await client.request("GET", CONFIGMAPS)
        assert refused.value.status == 401 and client.reloads == 1
    finally:
        await client.close()
