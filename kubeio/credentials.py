"""Where a cluster is and how to prove who we are: read from a kubeconfig or the pod's account.

The ``kubernetes`` package's loaders do the parsing (contexts, embedded or file certificates,
exec plugins, in-cluster token files); we keep only what an HTTP client needs. Loading may block
(an exec plugin runs), so async callers load in a thread. Credentials remember how they were
loaded (``reload``): a token rotated on disk (a projected ServiceAccount token, a kubeconfig's
``tokenFile``) or an exec plugin's expired credential is read again when the server refuses the
old one.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config


@dataclass(frozen=True)
class Credentials:
    server: str
    ssl: ssl.SSLContext | None
    # "Bearer <token>" for token auth, "" for client certificates
    authorization: str = ""
    #: loads them again from where they came from (None: they were given, not loaded)
    reload: Callable[[], Credentials] | None = field(default=None, compare=False, repr=False)


def authorization_header(configuration: client.Configuration) -> str:
    """The ``Authorization`` header a loaded configuration asks for ("" for client certificates).

    The ``kubernetes`` package keeps a kubeconfig's or the pod's token under ``BearerToken``
    (``authorization`` in its older releases), prefix included.
    """
    for key in ("BearerToken", "authorization"):
        if header := configuration.get_api_key_with_prefix(key):
            return str(header)
    return ""


def _from_configuration(
    configuration: client.Configuration, reload: Callable[[], Credentials]
) -> Credentials:
    server = configuration.host.rstrip("/")
    context: ssl.SSLContext | None = None
    if server.startswith("https://"):
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return Credentials(server, context, authorization_header(configuration), reload)


def from_kubeconfig(path: str | Path, *, context: str | None = None) -> Credentials:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), context=context, client_configuration=configuration)
    return _from_configuration(configuration, functools.partial(from_kubeconfig, path, context=context))


def from_kubeconfig_dict(kubeconfig: dict[str, Any], *, context: str | None = None) -> Credentials:
    """Credentials from a kubeconfig held in memory (a provisioned cluster's, before any file)."""
    configuration = client.Configuration()
    config.load_kube_config_from_dict(kubeconfig, context=context, client_configuration=configuration)
    return _from_configuration(
        configuration, functools.partial(from_kubeconfig_dict, kubeconfig, context=context)
    )


def in_cluster() -> Credentials:
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)
    return _from_configuration(configuration, in_cluster)


def load(kubeconfig: str | Path | None, *, context: str | None = None) -> Credentials:
    """A kubeconfig's credentials, or the pod's service account when ``kubeconfig`` is None."""
    return in_cluster() if kubeconfig is None else from_kubeconfig(kubeconfig, context=context)
