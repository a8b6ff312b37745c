"""kopf's connection from an explicit kubeconfig file (or the in-cluster service account).

kopf's own ``login_via_client`` reads only the default kubeconfig; our operators are told which
cluster to serve (the hub, a management cluster) by a path.
"""

from __future__ import annotations

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
