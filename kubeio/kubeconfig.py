"""Which kubeconfig a command uses, found and merged the way kubectl finds and merges it.

The order: an explicit file, else the files of ``KUBECONFIG`` (a list separated by ``os.pathsep``,
merged: the first file that names a cluster, user or context wins it, and the first file that sets
``current-context`` sets it), else ``~/.kube/config``, else the pod's service account when running
in a pod. Relative paths in a file (certificates, keys, token files, exec commands) are relative to
that file's folder, as kubectl reads them.

The ``kubernetes`` package's own merger lets the last file's ``current-context`` win, and its
single-file loaders (kopf's login, the operators) read one file only: hence this module.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubeio import credentials

_SECTIONS = ("clusters", "users", "contexts")
# Fields holding a path, per section and inner key, that kubectl resolves against the file's folder.
_PATH_FIELDS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}
_IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
#: the namespace of the pod's service account, mounted in every pod that has one
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubeconfigError(Exception):
    """No usable kubeconfig; the message says which option or variable fixes it."""


@dataclass(frozen=True)
class Kubeconfig:
    """A merged kubeconfig and the context chosen in it; no files means the pod's service account."""

    files: tuple[Path, ...] = ()
    merged: Mapping[str, Any] = field(default_factory=dict)
    context: str | None = None

    @property
    def in_cluster(self) -> bool:
        return not self.files

    def credentials(self) -> credentials.Credentials:
        if self.in_cluster:
            return credentials.in_cluster()
        return credentials.from_kubeconfig_dict(dict(self.merged), context=self.context)

    @property
    def namespace(self) -> str:
        """The namespace kubectl would use: the chosen context's, else (in a pod) the pod's, else
        ``default``."""
        if self.in_cluster:
            try:
                return POD_NAMESPACE_FILE.read_text().strip() or "default"
            except OSError:
                return "default"
        inner = _named(self.merged, "contexts", self.context or "").get("context") or {}
        return str(inner.get("namespace") or "default")

    def minified(self) -> dict[str, Any]:
        """The chosen context alone, with its cluster and user, as its ``current-context``: what
        ``kubectl config view --minify`` prints (file references kept, made absolute)."""
        context = _named(self.merged, "contexts", self.context or "")
        inner = context.get("context") or {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [_named(self.merged, "clusters", str(inner.get("cluster") or ""))],
            "users": [_named(self.merged, "users", str(inner.get("user") or ""))],
            "contexts": [context],
            "current-context": context["name"],
        }


def _named(config: Mapping[str, Any], section: str, name: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return dict(entry)
    return {"name": name}


def _absolute(entry: dict[str, Any], section: str, folder: Path) -> dict[str, Any]:
    inner_key, keys = _PATH_FIELDS.get(section, ("", ()))
    inner = entry.get(inner_key)
    if not isinstance(inner, dict):
        return entry
    inner = dict(inner)
    for key in keys:
        value = inner.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            inner[key] = str(folder / value)
    command = (inner.get("exec") or {}).get("command")
    # kubectl resolves an exec command only when it is a relative path, not a name looked up on PATH.
    if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
        inner["exec"] = {**inner["exec"], "command": str(folder / command)}
    return {**entry, inner_key: inner}


def merge(files: Sequence[Path]) -> dict[str, Any]:
    """The files merged as kubectl merges them; files that do not exist are skipped (kubectl too)."""
    merged: dict[str, Any] = {section: [] for section in _SECTIONS}
    for path in files:
        if not path.is_file():
            continue
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise KubeconfigError(f"kubeconfig {path} cannot be read: {exc}") from None
        if not isinstance(loaded, dict):
            raise KubeconfigError(f"kubeconfig {path} is not a kubeconfig (a YAML mapping)")
        folder = path.resolve().parent
        for section in _SECTIONS:
            known = {entry.get("name") for entry in merged[section]}
            for entry in loaded.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in known:
                    merged[section].append(_absolute(copy.deepcopy(entry), section, folder))
                    known.add(entry.get("name"))
        if loaded.get("current-context") and not merged.get("current-context"):
            merged["current-context"] = loaded["current-context"]
    return merged


def _candidates(explicit: str | None, env: Mapping[str, str]) -> tuple[tuple[Path, ...], str]:
    """The files to merge and where they came from (for messages)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise KubeconfigError(f"--kubeconfig {explicit}: no such file")
        return (path,), f"--kubeconfig {explicit}"
    listed = env.get("KUBECONFIG", "")
    if listed:
        files = tuple(Path(p).expanduser() for p in listed.split(os.pathsep) if p)
        return tuple(p for p in files if p.is_file()), f"KUBECONFIG={listed}"
    home = Path("~/.kube/config").expanduser()
    return ((home,) if home.is_file() else ()), str(home)


def load(
    explicit: str | None = None, context: str | None = None, env: Mapping[str, str] | None = None
) -> Kubeconfig:
    """The kubeconfig a command uses (see the module's doc), with ``context`` (or the merged
    ``current-context``) checked to exist."""
    env = os.environ if env is None else env
    files, origin = _candidates(explicit, env)
    if not files:
        if env.get(_IN_CLUSTER_ENV) and context:
            raise KubeconfigError(
                f"--context {context}: no kubeconfig to choose it from (looked in {origin}): "
                "pass --kubeconfig FILE or set KUBECONFIG"
            )
        if env.get(_IN_CLUSTER_ENV):
            return Kubeconfig()
        raise KubeconfigError(
            f"no kubeconfig found (looked in {origin}, and this is not a pod): "
            "pass --kubeconfig FILE or set KUBECONFIG"
        )
    merged = merge(files)
    chosen = context or merged.get("current-context")
    names = [str(entry.get("name")) for entry in merged["contexts"]]
    if not chosen:
        raise KubeconfigError(
            f"the kubeconfig ({origin}) sets no current-context: pass --context "
            f"(one of: {', '.join(names) or 'none'})"
        )
    if chosen not in names:
        raise KubeconfigError(
            f"context {chosen!r} is not in the kubeconfig ({origin}): pass --context with one of: "
            f"{', '.join(names) or 'none'}"
        )
    return Kubeconfig(files, merged, str(chosen))
