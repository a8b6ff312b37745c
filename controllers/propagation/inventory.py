"""The hub's cluster inventory: Argo CD cluster Secrets, read as plain dicts.

The kopf handler lists the Secrets labelled ``argocd.argoproj.io/secret-type: cluster`` on the hub
and hands them to ``Inventory.from_secrets``; generators select from it and the plan resolves each
Application's destination against it. In the pull model the Secrets carry no credentials, only
``name``, ``server`` and labels.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
SECRET_TYPE_CLUSTER = "cluster"

_INVALID_DNS_CHARS = re.compile(r"[^-a-z0-9.]")


def normalize_name(name: str) -> str:
    """A DNS-1123-subdomain-safe form of ``name``, as Argo CD's ``nameNormalized`` / ``normalize``:
    lower-case, every character outside ``[-a-z0-9.]`` replaced by ``-``, at most 253 characters,
    no leading or trailing ``-`` or ``.``."""
    lowered = _INVALID_DNS_CHARS.sub("-", name.lower())[:253]
    return lowered.strip("-.")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """One registered cluster: ``name`` is also its Maestro consumer name."""

    name: str
    server: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    secret_name: str = ""
    project: str = ""


@dataclasses.dataclass(frozen=True)
class Inventory:
    """The registered clusters, in Secret order, and what was wrong with the Secrets that were skipped."""

    clusters: tuple[Cluster, ...] = ()
    problems: tuple[str, ...] = ()

    @classmethod
    def from_secrets(cls, secrets: Iterable[Mapping[str, Any]]) -> Inventory:
        """Read cluster Secrets; Secrets of another type are ignored, broken ones become ``problems``
        (one bad Secret must not take the whole fleet down)."""
        clusters: list[Cluster] = []
        problems: list[str] = []
        seen: dict[str, str] = {}
        for secret in secrets:
            metadata = secret.get("metadata") or {}
            labels = dict(metadata.get("labels") or {})
            if labels.get(SECRET_TYPE_LABEL) != SECRET_TYPE_CLUSTER:
                continue
            secret_name = str(metadata.get("name", ""))
            try:
                fields = _secret_fields(secret)
            except ValueError as exc:
                problems.append(f"cluster Secret {secret_name!r}: {exc}")
                continue
            name, server = fields.get("name", ""), fields.get("server", "")
            if not name or not server:
                missing = " and ".join(k for k in ("name", "server") if not fields.get(k))
                problems.append(
                    f"cluster Secret {secret_name!r}: no {missing} in data/stringData; "
                    "add it (the cluster's Argo CD name and API server URL)"
                )
                continue
            if name in seen:
                problems.append(
                    f"cluster Secret {secret_name!r}: cluster name {name!r} is already registered by "
                    f"Secret {seen[name]!r}; cluster names must be unique"
                )
                continue
            seen[name] = secret_name
            clusters.append(
                Cluster(
                    name=name,
                    server=server,
                    labels=labels,
                    annotations=dict(metadata.get("annotations") or {}),
                    secret_name=secret_name,
                    project=fields.get("project", ""),
                )
            )
        return cls(clusters=tuple(clusters), problems=tuple(problems))

    @functools.cached_property
    def _by_name(self) -> dict[str, Cluster]:
        return {c.name: c for c in self.clusters}

    def by_name(self, name: str) -> Cluster | None:
        return self._by_name.get(name)

    def by_server(self, server: str) -> list[Cluster]:
        """All clusters registered with this server URL (more than one means the URL is ambiguous)."""
        wanted = server.rstrip("/")
        return [c for c in self.clusters if c.server.rstrip("/") == wanted]

    def names(self) -> list[str]:
        return [c.name for c in self.clusters]


def _secret_fields(secret: Mapping[str, Any]) -> dict[str, str]:
    """``data`` (base64, as the API server returns it) overlaid with ``stringData`` (as written)."""
    fields: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            fields[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(
                f"data.{key} is not base64-encoded UTF-8 ({exc}); use stringData for plain text"
            ) from exc
    for key, value in (secret.get("stringData") or {}).items():
        fields[key] = str(value)
    return fields
