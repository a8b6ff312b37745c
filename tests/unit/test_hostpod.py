"""The host stand-in for a kubelet that integration tests run rendered containers with.

Cases: a Secret volume becomes a private folder of its keys (or its items), an emptyDir an empty
folder, a ConfigMap volume nothing; args and env values under a mount name the folder; ``$(VAR)``
is expanded from the resolved env; a missing Secret or key is an error unless optional, and an env
source it does not emulate is an error naming the variable.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest

from localinfra import hostpod


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRETS = {"tls": {"tls.crt": _b64("CERT"), "tls.key": _b64("KEY")}, "pw": {"auth": _b64("s3cret")}}


def _workload(container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [container], "volumes": volumes}}}}


def test_a_container_on_the_host(tmp_path: Path) -> None:
    obj = _workload(
        {
            "name": "c",
            "args": ["--cert", "/etc/tls/tls.crt", "--pass $(PASSWORD)", "--keep", "$(UNSET)", "/etc/tlsx"],
            "env": [
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "auth"}}},
                {"name": "CACHE", "value": "/tmp/cache"},
                {
                    "name": "OPT",
                    "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": True}},
                },
            ],
            "volumeMounts": [
                {"name": "tls", "mountPath": "/etc/tls"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "config", "mountPath": "/etc/config"},
            ],
        },
        [
            {"name": "tls", "secret": {"secretName": "tls"}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "config", "configMap": {"name": "cm"}},
        ],
    )
    pod = hostpod.prepare(obj, "c", tmp_path, SECRETS)
    tls = tmp_path / "tls"
    assert pod.argv == ["--cert", f"{tls}/tls.crt", "--pass s3cret", "--keep", "$(UNSET)", "/etc/tlsx"]
    assert pod.env == {"PASSWORD": "s3cret", "CACHE": f"{tmp_path / 'tmp'}/cache"}
    assert pod.folders == {"/etc/tls": tls, "/tmp": tmp_path / "tmp"}
    assert (tls / "tls.key").read_text() == "KEY"
    assert stat.S_IMODE((tls / "tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700


def test_items_pick_and_rename_keys(tmp_path: Path) -> None:
    volume = {"name": "v", "secret": {"secretName": "tls", "items": [{"key": "tls.crt", "path": "cert.pem"}]}}
    obj = _workload({"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/x"}]}, [volume])
    hostpod.prepare(obj, "c", tmp_path, SECRETS)
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["cert.pem"]


@pytest.mark.parametrize(
    ("container", "volumes", "message"),
    [
        (
            {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/x"}]},
            [{"name": "v", "secret": {"secretName": "absent"}}],
            "volume v: no Secret absent to mount",
        ),
        (
            {
                "name": "c",
                "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "nope"}}}],
            },
            [],
            "env P: no key nope in Secret pw",
        ),
        (
            {"name": "c", "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
            [],
            "env N: ['fieldRef'] is not emulated here",
        ),
    ],
    ids=["missing secret", "missing key", "field ref"],
)
def test_what_it_cannot_give_is_an_error(
    tmp_path: Path, container: dict[str, Any], volumes: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ValueError) as failed:
        hostpod.prepare(_workload(container, volumes), "c", tmp_path, SECRETS)
    assert str(failed.value) == message


def test_optional_secrets_may_be_missing(tmp_path: Path) -> None:
    obj = _workload(
        {
            "name": "c",
            "env": [
                {"name": "P", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k", "optional": True}}}
            ],
            "volumeMounts": [{"name": "v", "mountPath": "/x"}],
        },
        [{"name": "v", "secret": {"secretName": "absent", "optional": True}}],
    )
    pod = hostpod.prepare(obj, "c", tmp_path, SECRETS)
    assert pod.env == {} and list((tmp_path / "v").iterdir()) == []


def test_config_maps_init_containers_pod_fields_and_paths_inside_values(tmp_path: Path) -> None:
    """Given the ConfigMaps and the pod's fields, an init container's ConfigMap volume is a folder of
    its keys, a path inside a DSN names it, and the downward API's pod name is its env."""
    obj = _workload({"name": "main"}, [{"name": "ca", "configMap": {"name": "pg-ca"}}])
    obj["spec"]["template"]["spec"]["initContainers"] = [
        {
            "name": "migrate",
            "args": ["--dsn", "postgresql://db/x?sslrootcert=/etc/ca/ca.pem&sslmode=verify-full"],
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "ca", "mountPath": "/etc/ca"}],
        }
    ]
    pod = hostpod.prepare(
        obj, "migrate", tmp_path, SECRETS, {"pg-ca": {"ca.pem": "PEM"}}, {"metadata.name": "p-1"}
    )
    assert (tmp_path / "ca" / "ca.pem").read_text() == "PEM"
    assert pod.argv[1] == f"postgresql://db/x?sslrootcert={tmp_path / 'ca'}/ca.pem&sslmode=verify-full"
    assert pod.env == {"POD": "p-1"}
