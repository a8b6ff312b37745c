"""Argo CD's Redis over TLS on a worker cluster, as the worker-cluster composition renders it.

Read the way an operator would check a cluster: Redis listens on TLS alone, on the port its
Service targets, and requires a client certificate of the platform CA; each Redis client that is
rendered (the application controller and the repo-server; argocd-server when it is not skipped)
turns TLS on, verifies Redis against the CA and presents its own certificate, every file it names
being a key of a Secret that a certificate resource writes; the certificates are issued for the
right names and usages, before the workloads that mount them, and each renewal rolls the workload
that reads it. ``redisTLS: false`` leaves Redis and its clients as Argo CD releases them. Run on
the small install list and, once ``fleetplane local build`` has cached it, on the released one.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisioner import catalog, identity, render, xrd
from trust import authority
from trust.identity import Identity

from . import builders

CLIENT_FLAGS = {
    "--redis-ca-certificate": "ca",
    "--redis-client-certificate": "certificate",
    "--redis-client-key": "key",
}
REDIS_FLAGS = {"--tls-cert-file": "certificate", "--tls-key-file": "key", "--tls-ca-cert-file": "ca"}
CLIENTS = {"argocd-application-controller": "StatefulSet", "argocd-repo-server": "Deployment"}


def _released_install() -> list[dict[str, Any]]:
    from localinfra import build

    path = build.argocd_manifests_dir() / "install.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is not built yet")
    return catalog.load_documents(path)


INSTALLS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "small": lambda: catalog.load_documents(builders.ARGOCD_INSTALL),
    "released": _released_install,
}


@pytest.fixture(scope="module", params=sorted(INSTALLS))
def install(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return INSTALLS[request.param]()


@pytest.fixture(scope="module")
def rendered(install: list[dict[str, Any]]) -> list[render.ComposedResource]:
    return builders.compose(install)


def container(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    pod = obj["spec"]["template"]["spec"]
    found: dict[str, Any] = next(c for c in pod["containers"] if c["name"] == name)
    return found


def flag(args: list[str], name: str) -> str | None:
    """The value a flag ends up with: the last ``--name value`` (both Redis and Argo CD's flag
    parser let a later one win)."""
    values = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]
    return values[-1] if values else None


def secret_file(obj: Mapping[str, Any], container_name: str, path: str) -> tuple[str, str]:
    """(Secret, key) a file a container reads comes from, through its mounts and the pod's volumes,
    as the kubelet would project it."""
    pod = obj["spec"]["template"]["spec"]
    mounts = container(obj, container_name).get("volumeMounts") or []
    mount = max(
        (m for m in mounts if path.startswith(m["mountPath"].rstrip("/") + "/")),
        key=lambda m: len(m["mountPath"]),
    )
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    relative = posixpath.relpath(path, mount["mountPath"])
    items = {item["path"]: item["key"] for item in volume["secret"].get("items") or []}
    return volume["secret"]["secretName"], items.get(relative, relative) if items else relative


def certificates(resources: list[render.ComposedResource]) -> dict[str, tuple[int, identity.Request]]:
    """The identity resources by the Secret they write, with their place in the order."""
    return {
        wanted.secret_name: (r.index, wanted)
        for r in resources
        if r.target == "identity"
        for wanted in [identity.request(r.object)]
    }


def key_names(wanted: identity.Request, role: str) -> tuple[str, ...]:
    """The keys of its Secret a certificate resource writes ``role`` (certificate, key, ca) under."""
    names = getattr(wanted.keys, role)
    return tuple(names) if role == "ca" else (names,)


def index_of(resources: list[render.ComposedResource], kind: str, name: str) -> int:
    return next(
        r.index for r in resources if r.object.get("kind") == kind and r.object["metadata"]["name"] == name
    )


def test_redis_listens_on_tls_alone_and_requires_client_certificates(
    rendered: list[render.ComposedResource],
) -> None:
    redis = builders.workload(rendered, "Deployment", "argocd-redis")
    args = container(redis, "redis")["args"]
    assert flag(args, "--port") == "0"  # no plain TCP listener at all
    service = builders.workload(rendered, "Service", "argocd-redis")
    assert flag(args, "--tls-port") == str(service["spec"]["ports"][0]["targetPort"])
    assert flag(args, "--tls-auth-clients") == "yes"
    # Argo CD's own settings stay: its password, no persistence
    assert "--requirepass $(REDIS_PASSWORD)" in args and flag(args, "--appendonly") == "no"
    server = certificates(rendered)["argocd-redis-tls"][1]
    for name, key in REDIS_FLAGS.items():
        path = flag(args, name)
        assert path is not None, name
        secret, file = secret_file(redis, "redis", path)
        assert secret == "argocd-redis-tls"
        assert file in key_names(server, key), name


def test_each_client_verifies_redis_and_presents_its_own_certificate(
    rendered: list[render.ComposedResource],
) -> None:
    issued = certificates(rendered)
    secrets = set()
    for name, kind in CLIENTS.items():
        obj = builders.workload(rendered, kind, name)
        args = container(obj, name)["args"]
        assert "--redis-use-tls" in args, name
        assert "--redis-insecure-skip-tls-verify" not in args, name
        for option, key in CLIENT_FLAGS.items():
            path = flag(args, option)
            assert path is not None, (name, option)
            secret, file = secret_file(obj, name, path)
            wanted = issued[secret][1]
            assert (wanted.service, wanted.usage) == (name, "client")
            assert file in key_names(wanted, key), (name, option)
            secrets.add(secret)
    assert len(secrets) == len(CLIENTS)  # one certificate per client: each speaks for itself alone


def test_the_certificates_have_the_right_names_and_usages(rendered: list[render.ComposedResource]) -> None:
    ca = authority.CertificateAuthority.create()
    issued = certificates(rendered)
    server = issued["argocd-redis-tls"][1]
    assert server.service == "argocd-redis" and server.usage == "server"
    # the names the clients dial: Argo CD's default address is argocd-redis:6379
    assert set(server.dns_names) == {
        "argocd-redis",
        "argocd-redis.argocd",
        "argocd-redis.argocd.svc",
        "argocd-redis.argocd.svc.cluster.local",
    }
    cert = _issue(server, ca)
    assert _usages(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == set(server.dns_names)
    for name in CLIENTS:
        client = issued[f"{name}-redis-tls"][1]
        cert = _issue(client, ca)
        assert _usages(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert cert.subject == Identity.service(f"{client.consumer}.{name}").subject()


def test_certificates_come_before_the_workloads_and_renewals_roll_their_readers(
    rendered: list[render.ComposedResource],
) -> None:
    issued = certificates(rendered)
    readers = {"argocd-redis-tls": ("Deployment", "argocd-redis")}
    readers.update({f"{name}-redis-tls": (kind, name) for name, kind in CLIENTS.items()})
    for secret, reader in readers.items():
        index, wanted = issued[secret]
        assert wanted.secret_namespace == "argocd"
        assert wanted.restart == (reader,)
        assert index < index_of(rendered, *reader), secret
        assert wanted.lifetime.total_seconds() == 30 * 24 * 3600


def test_argocd_server_is_a_client_too_when_it_is_rendered(install: list[dict[str, Any]]) -> None:
    resources = builders.compose(install, skipComponents=["dex-server", "notifications-controller"])
    server = builders.workload(resources, "Deployment", "argocd-server")
    args = container(server, "argocd-server")["args"]
    assert "--redis-use-tls" in args
    secret, _ = secret_file(server, "argocd-server", str(flag(args, "--redis-client-certificate")))
    wanted = certificates(resources)[secret][1]
    assert (wanted.service, wanted.usage, wanted.restart) == (
        "argocd-server", "client", (("Deployment", "argocd-server"),),
    )  # fmt: skip


def test_redis_tls_off_leaves_redis_and_its_clients_as_released(install: list[dict[str, Any]]) -> None:
    resources = builders.compose(install, redisTLS=False)
    released = {(o["kind"], o["metadata"]["name"]): o for o in install}
    for kind, name in [("Deployment", "argocd-redis"), *((k, n) for n, k in CLIENTS.items())]:
        assert builders.workload(resources, kind, name)["spec"] == released[kind, name]["spec"], name
    assert not [s for s in certificates(resources) if "redis" in s]


def test_a_claim_may_turn_it_off_and_the_schema_says_the_default() -> None:
    schema = builders.definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    redis_tls = schema["properties"]["spec"]["properties"]["parameters"]["properties"]["argocd"][
        "properties"
    ]["redisTLS"]
    assert redis_tls["type"] == "boolean" and "default, true" in redis_tls["description"]
    assert builders.composition()["spec"]["defaults"]["argocd"]["redisTLS"] is True
    claim = builders.defaulted(builders.claim(argocd={"redisTLS": False}))
    composite = xrd.composite_from_claim(claim, builders.definition())
    values = render.composite_values(
        composite, claim, builders.composition()["spec"]["defaults"], builders.platform()
    )
    assert values["parameters"]["argocd"]["redisTLS"] is False
    assert values["parameters"]["argocd"]["certificateLifetimeSeconds"] == 2592000  # the rest stays
    resources = render.render(builders.template(), source=builders.TEMPLATE_SOURCE, values=values)
    assert "argocd-redis-tls" not in certificates(resources)


def _issue(wanted: identity.Request, ca: authority.CertificateAuthority) -> x509.Certificate:
    secret = identity.issued_secret(wanted, wanted.identity(""), ca)
    return x509.load_pem_x509_certificate(base64.b64decode(secret["data"][wanted.keys.certificate]))


def _usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
