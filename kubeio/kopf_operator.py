"""What our kopf operators (the hub controllers, the provisioner) share: login, settings, running.

kopf's own ``login_via_client`` reads only the default kubeconfig; our operators are told which
cluster to serve (the hub, a management cluster) by a path.
"""

from __future__ import annotations

import asyncio
import logging

import kopf
from kubernetes import client, config


def connection(kubeconfig: str | None) -> kopf.ConnectionInfo:
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0] if parts else None)
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def settings(*, finalizer: str, prefix: str) -> kopf.OperatorSettings:
    """kopf keeps its bookkeeping in annotations under ``prefix`` (some CRDs' status schemas would
    prune kopf's usual ``status.kopf``), runs standalone (one replica, no peering objects), and
    posts only warnings as events (its INFO lines would become an event each)."""
    out = kopf.OperatorSettings()
    out.persistence.finalizer = finalizer
    out.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    out.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    out.peering.standalone = True
    out.posting.level = logging.WARNING
    return out


async def operate(
    registry: kopf.OperatorRegistry,
    operator_settings: kopf.OperatorSettings,
    *,
    liveness: str | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run the operator cluster-wide in the current event loop until ``stop_flag`` or a signal."""
    await kopf.operator(
        registry=registry,
        settings=operator_settings,
        clusterwide=True,
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
