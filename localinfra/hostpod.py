"""One container of a rendered workload, prepared to run as a host process the way a kubelet would
run it in its pod, on a machine without a kubelet (the tests, ``fleetplane local install``).

What a kubelet does and this does too: each Secret volume the container mounts is projected into a
folder of its own (the Secret's keys, or its ``items``, as 0600 files), and so is each ConfigMap
volume when the ConfigMaps are given; each ``emptyDir`` is an empty folder, the container's
``env`` is resolved from values, Secret keys and (when the pod's ``fields`` are given) the
downward API's ``metadata.name`` and ``metadata.namespace``, ``$(VAR)`` in its args is expanded
from that env, and a path under a mount, in an arg or an env value (also inside one, as a DSN's
``sslrootcert=``), names the folder instead. What it leaves out: ConfigMap volumes when no
ConfigMaps are given, optional ConfigMap keys (a process sees its defaults instead), and the
image's entrypoint (``argv`` is the container's command and args). Init containers are found by
name as the others are.
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
#: ConfigMaps as a kubelet reads them: name -> data (text)
ConfigMaps = Mapping[str, Mapping[str, str]]

_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass(frozen=True)
class HostContainer:
    #: the container's command and args, with mount paths replaced and ``$(VAR)`` expanded
    argv: list[str]
    env: dict[str, str]
    #: each mount path and the folder that stands for it
    folders: dict[str, Path]


def prepare(
    obj: Mapping[str, Any],
    container: str,
    root: Path,
    secrets: Secrets,
    config_maps: ConfigMaps | None = None,
    fields: Mapping[str, str] | None = None,
) -> HostContainer:
    """``container`` (or init container) of workload ``obj`` with its volumes projected under
    ``root``; ``fields`` are the pod's downward API fields (``metadata.name``, ...)."""
    pod = obj["spec"]["template"]["spec"]
    every = [*(pod.get("initContainers") or []), *pod["containers"]]
    spec = next(c for c in every if c["name"] == container)
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    folders: dict[str, Path] = {}
    for mount in spec.get("volumeMounts") or []:
        folder = _project(volumes[mount["name"]], root / mount["name"], secrets, config_maps)
        if folder is not None:
            folders[mount["mountPath"].rstrip("/")] = folder
    env = {e["name"]: value for e in spec.get("env") or [] for value in _resolve(e, secrets, folders, fields)}
    args = [*(spec.get("command") or []), *(spec.get("args") or [])]
    argv = [_on_host(_VARIABLE.sub(lambda m: env.get(m[1], m[0]), arg), folders) for arg in args]
    return HostContainer(argv, env, folders)


def _project(
    volume: Mapping[str, Any], folder: Path, secrets: Secrets, config_maps: ConfigMaps | None
) -> Path | None:
    if "emptyDir" in volume:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    if "configMap" in volume and config_maps is not None:
        return _project_config_map(volume, folder, config_maps)
    source = volume.get("secret")
    if source is None:
        return None  # a ConfigMap (none given) or another kind: not projected
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


def _project_config_map(volume: Mapping[str, Any], folder: Path, config_maps: ConfigMaps) -> Path:
    source = volume["configMap"]
    data = config_maps.get(source["name"])
    if data is None and not source.get("optional"):
        raise ValueError(f"volume {volume['name']}: no ConfigMap {source['name']} to mount")
    folder.mkdir(parents=True, exist_ok=True)
    items = {i["key"]: i["path"] for i in source.get("items") or []} or {k: k for k in data or {}}
    for key, path in items.items():
        if data is not None and key in data:
            (folder / path).write_text(data[key])
    return folder


def _resolve(
    entry: Mapping[str, Any],
    secrets: Secrets,
    folders: Mapping[str, Path],
    fields: Mapping[str, str] | None,
) -> list[str]:
    """The value of one ``env`` entry, as a list of none or one."""
    if "value" in entry:
        return [_on_host(str(entry["value"]), folders)]
    source = entry.get("valueFrom") or {}
    path = str((source.get("fieldRef") or {}).get("fieldPath"))
    if fields is not None and path in fields:
        return [fields[path]]
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        data = secrets.get(ref["name"]) or {}
        if ref["key"] in data:
            return [_on_host(base64.b64decode(data[ref["key"]]).decode(), folders)]
        if ref.get("optional"):
            return []
        raise ValueError(f"env {entry['name']}: no key {ref['key']} in Secret {ref['name']}")
    if (source.get("configMapKeyRef") or {}).get("optional"):
        return []
    raise ValueError(f"env {entry['name']}: {sorted(source)} is not emulated here")


def _on_host(value: str, folders: Mapping[str, Path]) -> str:
    """``value`` with each mount path in it (a whole path, not a prefix of a longer name) naming
    its folder."""
    if not folders:
        return value
    # one pass, longest first: a folder just put in must not be rewritten by a shorter mount
    paths = "|".join(re.escape(p) for p in sorted(folders, key=len, reverse=True))
    pattern = rf"(?<![\w./-])({paths})(?=/|$|[^\w.-])"
    return re.sub(pattern, lambda m: str(folders[m[1]]), value)
