"""The ``extend_pod`` filter: one container of a workload patched, everything else as it was.

Cases: args are appended after the container's own, mounts and volumes after the ones the workload
has (and created where it has none), the other containers and the input are untouched; a missing
container, a taken mount or volume name and an object with no pod template are errors naming the
workload and what is wrong (as is anything but an object), also when raised from a template (at
its line).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from provisioner import render, template_env

from .test_render import PROVIDER

WORKLOAD: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "argocd-redis"},
    "spec": {
        "template": {
            "spec": {
                "initContainers": [{"name": "secret-init", "image": "argocd"}],
                "containers": [
                    {
                        "name": "redis",
                        "args": ["--save", ""],
                        "volumeMounts": [{"name": "a", "mountPath": "/a"}],
                    },
                    {"name": "sidecar", "args": ["--x"]},
                ],
                "volumes": [{"name": "a", "emptyDir": {}}],
            }
        }
    },
}
MOUNT = {"name": "tls", "mountPath": "/tls", "readOnly": True}
VOLUME = {"name": "tls", "secret": {"secretName": "argocd-redis-tls"}}


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = obj["spec"]["template"]["spec"]
    return pod


def test_one_container_grows_and_the_rest_is_as_it_was() -> None:
    before = copy.deepcopy(WORKLOAD)
    out = template_env.extend_pod(WORKLOAD, "redis", args=["--port", "0"], mounts=[MOUNT], volumes=[VOLUME])
    redis, sidecar = _pod(out)["containers"]
    assert redis["args"] == ["--save", "", "--port", "0"]
    assert redis["volumeMounts"] == [{"name": "a", "mountPath": "/a"}, MOUNT]
    assert _pod(out)["volumes"] == [{"name": "a", "emptyDir": {}}, VOLUME]
    assert sidecar == {"name": "sidecar", "args": ["--x"]}
    assert _pod(out)["initContainers"] == before["spec"]["template"]["spec"]["initContainers"]
    assert before == WORKLOAD  # a copy: the platform's objects are shared between renders


def test_lists_the_workload_lacks_are_created() -> None:
    out = template_env.extend_pod(WORKLOAD, "sidecar", args=["--y"], mounts=[MOUNT])
    sidecar = _pod(out)["containers"][1]
    assert sidecar == {"name": "sidecar", "args": ["--x", "--y"], "volumeMounts": [MOUNT]}
    bare = {"kind": "StatefulSet", "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
    out = template_env.extend_pod(bare, "c", volumes=[VOLUME])
    assert _pod(out) == {"containers": [{"name": "c"}], "volumes": [VOLUME]}


NO_CONTAINER = "Deployment argocd-redis has no container 'redis-server' — its containers are redis, sidecar"
MOUNT_TAKEN = "Deployment argocd-redis already has a mount named 'a' — pick another name"
NOT_A_WORKLOAD = {"kind": "Service", "metadata": {"name": "argocd-redis"}}


@pytest.mark.parametrize(
    ("obj", "container", "change", "message"),
    [
        (WORKLOAD, "redis-server", {}, NO_CONTAINER),
        (WORKLOAD, "redis", {"mounts": [{"name": "a", "mountPath": "/b"}]}, MOUNT_TAKEN),
        (
            WORKLOAD,
            "redis",
            {"volumes": [VOLUME, VOLUME]},
            "Deployment argocd-redis already has a volume named 'tls'",
        ),
        (NOT_A_WORKLOAD, "redis", {}, "Service argocd-redis has no pod template (spec.template.spec)"),
        ("argocd-redis", "redis", {}, "extend_pod takes a workload object, not str"),
    ],
    ids=["no such container", "mount taken", "volume twice", "not a workload", "not an object"],
)
def test_mistakes_name_the_workload(obj: Any, container: str, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        template_env.extend_pod(obj, container, **change)


def test_a_template_mistake_names_its_line() -> None:
    template = (
        PROVIDER + "---\nname: x\ntarget: workload\nobject: {{ w | extend_pod('redis-server') | tojson }}\n"
    )
    with pytest.raises(render.RenderError) as failed:
        render.render(template, source="t.j2", values={"w": WORKLOAD})
    assert str(failed.value).startswith(
        "t.j2:11: ValueError: Deployment argocd-redis has no container 'redis-server'"
    )
