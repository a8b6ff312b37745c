"""One container of a rendered workload, prepared to run as a host process the way a kubelet would
run it in its pod, for tests on a machine without a kubelet.

What a kubelet does and this does too: each Secret volume the container mounts is projected into a
folder of its own (the Secret's keys, or its ``items``, as 0600 files), each ``emptyDir`` is an
empty folder, the container's ``env`` is resolved from values and Secret keys, ``$(VAR)`` in its
args is expanded from that env, and a path under a mount, in an arg or an env value, names the
folder instead. What it leaves out: ConfigMap volumes and optional ConfigMap keys (a process sees
its defaults instead), and the image's entrypoint (``argv`` is the container's command and args).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trust import files

#: Secrets as a kubelet reads them from the API: name -> data (base64, as in the object)
Secrets = Mapping[str, Mapping[str, str]]

_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass(frozen=True)
class HostContainer:
    #: the container's command and args, with mount paths replaced and ``$(VAR)`` expanded
    argv: list[str]
    env: dict[str, str]
    #: each mount path and the folder that stands for it
    folders: dict[str, Path]


def prepare(obj: Mapping[str, Any], container: str, root: Path, secrets: Secrets) -> HostContainer:
    """``container`` of workload ``obj`` with its volumes projected under ``root``."""
    pod = obj["spec"]["template"]["spec"]
    spec = next(c for c in pod["containers"] if c["name"] == container)
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    folders: dict[str, Path] = {}
    for mount in spec.get("volumeMounts") or []:
        folder = _project(volumes[mount["name"]], root / mount["name"], secrets)
        if folder is not None:
            folders[mount["mountPath"].rstrip("/")] = folder
    env = {e["name"]: value for e in spec.get("env") or [] for value in _resolve(e, secrets, folders)}
    args = [*(spec.get("command") or []), *(spec.get("args") or [])]
    argv = [_on_host(_VARIABLE.sub(lambda m: env.get(m[1], m[0]), arg), folders) for arg in args]
    return HostContainer(argv, env, folders)


def _project(volume: Mapping[str, Any], folder: Path, secrets: Secrets) -> Path | None:
    if "emptyDir" in volume:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    source = volume.get("secret")
    if source is None:
        return None  # a ConfigMap or another kind: not projected
    data = secrets.get(source["secretName"])
    if data is None and not source.get("optional"):
        raise ValueError(f"volume {volume['name']}: no Secret {source['secretName']} to mount")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    items = {i["key"]: i["path"] for i in source.get("items") or []} or {k: k for k in data or {}}
    for key, path in items.items():
        if data is not None and key in data:
            files.write_private(folder / path, base64.b64decode(data[key]))
    return folder


def _resolve(entry: Mapping[str, Any], secrets: Secrets, folders: Mapping[str, Path]) -> list[str]:
    """The value of one ``env`` entry, as a list of none or one."""
    if "value" in entry:
        return [_on_host(str(entry["value"]), folders)]
    source = entry.get("valueFrom") or {}
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        data = secrets.get(ref["name"]) or {}
        if ref["key"] in data:
            return [base64.b64decode(data[ref["key"]]).decode()]
        if ref.get("optional"):
            return []
        raise ValueError(f"env {entry['name']}: no key {ref['key']} in Secret {ref['name']}")
    if (source.get("configMapKeyRef") or {}).get("optional"):
        return []
    raise ValueError(f"env {entry['name']}: {sorted(source)} is not emulated here")


def _on_host(value: str, folders: Mapping[str, Path]) -> str:
    for path in sorted(folders, key=len, reverse=True):
        if value == path or value.startswith(path + "/"):
            return str(folders[path]) + value[len(path) :]
    return value
