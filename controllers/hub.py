"""The hub cluster as the controllers see it: ApplicationSets, mirror Applications, cluster Secrets.

Called by the propagation and status controllers (``controllers.propagation``,
``controllers.status``). Every request is plain JSON in and out through ``kubeio.rest.KubeRest``
(the project's one raw-JSON Kubernetes client: asyncio over a pooled aiohttp session, retried
with backoff while the API server is away). kopf's own API is not used here because these calls
also run outside kopf handlers (the status controller's writer loop).

Errors are the ones ``KubeRest`` raises: ``NotFoundError`` (404), ``ConflictError`` (409),
``ClusterError`` (other refusals, with ``status``) and ``ClusterUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from kubeio import errors as kube_errors
from kubeio import rest as kuberest
from kubeio import watch

JsonObject = dict[str, Any]

ARGOCD_GROUP, ARGOCD_VERSION = "argoproj.io", "v1alpha1"
APPLICATIONS, APPLICATION_SETS = "applications", "applicationsets"

NotFoundError = kube_errors.NotFoundError
ConflictError = kube_errors.ConflictError
ClusterError = kube_errors.ClusterError
ClusterUnavailableError = kube_errors.ClusterUnavailableError

_PAGE = 500
# Every write of the controllers is built by them, from parsed JSON: it has no duplicate fields,
# and unknown ones are pruned by the CRD's schema whatever the setting. The default ("Warn") has the
# API server decode each apply body a second time, strictly, only to word warnings nobody reads:
# 6% of the hub API server's CPU while mirrors are created.
WRITE_QUERY = (("fieldValidation", "Ignore"),)
# A mirror written whole (POST, PUT) with a field the CRD does not declare would lose it silently
# under "Ignore" (the schema prunes it); the hub refuses it instead (400, naming the field), as
# server-side apply does, so that the template is fixed rather than its field dropped unseen.
WHOLE_WRITE_QUERY = (("fieldValidation", "Strict"),)


def selector(labels: Mapping[str, str]) -> str:
    """A label selector string for equality on every pair."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _argocd_path(namespace: str, plural: str, name: str | None = None, sub: str | None = None) -> str:
    path = f"/apis/{ARGOCD_GROUP}/{ARGOCD_VERSION}/namespaces/{quote(namespace)}/{plural}"
    if name is not None:
        path += f"/{quote(name)}"
    if sub is not None:
        path += f"/{sub}"
    return path


def _replace_status(status: Mapping[str, Any]) -> list[JsonObject]:
    # JSON Patch "add" replaces the member when it exists: the whole status is swapped, so fields a
    # newer report no longer carries disappear (a merge patch would keep them).
    return [{"op": "add", "path": "/status", "value": status}]


class HubClient:
    """The hub API server over a connection pool of its own: ``max_connections`` requests in
    flight at once, more wait for a free connection."""

    def __init__(self, kubeconfig: str | Path | None, *, max_connections: int = 64) -> None:
        self._rest = kuberest.KubeRest.from_kubeconfig(
            kubeconfig, retry=kuberest.RetrySettings(budget=20.0, max_connections=max_connections)
        )

    @property
    def rest(self) -> kuberest.KubeRest:
        """The connection pool's client (its ``answered_at`` tells when the hub last answered)."""
        return self._rest

    @property
    def max_connections(self) -> int:
        return self._rest.retry.max_connections

    async def close(self) -> None:
        await self._rest.close()

    async def _get(self, path: str) -> JsonObject | None:
        try:
            return await self._rest.request("GET", path)
        except NotFoundError:
            return None

    async def _list(
        self, path: str, labels: Mapping[str, str] | str | None = None, *, accept: str = kuberest.JSON
    ) -> list[JsonObject]:
        query = []
        if labels:
            query.append(("labelSelector", labels if isinstance(labels, str) else selector(labels)))
        items, _ = await self._rest.list_all(path, query=query, page=_PAGE, accept=accept)
        return items

    # --- ApplicationSets -------------------------------------------------------------------------

    async def get_application_set(self, namespace: str, name: str) -> JsonObject | None:
        return await self._get(_argocd_path(namespace, APPLICATION_SETS, name))

    async def replace_application_set_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        # The ApplicationSet CRD has a status subresource.
        await self._rest.request(
            "PATCH",
            _argocd_path(namespace, APPLICATION_SETS, name, "status"),
            query=WRITE_QUERY,
            body=_replace_status(status),
            content_type=kuberest.JSON_PATCH,
            accept=kuberest.METADATA,
        )

    # --- Applications (the hub mirrors) ----------------------------------------------------------

    async def get_application(self, namespace: str, name: str) -> JsonObject | None:
        return await self._get(_argocd_path(namespace, APPLICATIONS, name))

    async def list_application_metadata(self, namespace: str, labels: Mapping[str, str]) -> list[JsonObject]:
        """The matching Applications as ``{"metadata": ...}`` alone: a pass over 3,000 mirrors needs
        their names and annotations, not their specs and statuses."""
        return await self._list(_argocd_path(namespace, APPLICATIONS), labels, accept=kuberest.METADATA_LIST)

    async def follow_application_metadata(
        self,
        label_selector: str,
        on_list: watch.OnList,
        on_event: watch.OnEvent,
        *,
        on_error: Callable[[Exception], None] | None = None,
    ) -> NoReturn:
        """List, then watch, the metadata of the Applications of every namespace matching a raw
        label selector, until cancelled (``kubeio.watch.follow``)."""
        await watch.follow(
            self._rest,
            f"/apis/{ARGOCD_GROUP}/{ARGOCD_VERSION}/{APPLICATIONS}",
            on_list,
            on_event,
            label_selector=label_selector,
            metadata_only=True,
            on_error=on_error,
        )

    async def list_all_applications(self, label_selector: str) -> list[JsonObject]:
        """Applications of every namespace matching a raw label selector (``key``, ``key=value``...)."""
        return await self._list(f"/apis/{ARGOCD_GROUP}/{ARGOCD_VERSION}/{APPLICATIONS}", label_selector)

    async def apply_application(
        self, application: Mapping[str, Any], *, field_manager: str, force: bool = True
    ) -> JsonObject:
        """Server-side apply of a mirror (its metadata, spec and the status known when it is
        written); returns the mirror's metadata. Without ``force``, fields another manager set differently
        are a ``ConflictError``."""
        meta = application["metadata"]
        return await self._rest.request(
            "PATCH",
            _argocd_path(meta["namespace"], APPLICATIONS, meta["name"]),
            query=[*WRITE_QUERY, ("fieldManager", field_manager), ("force", "true" if force else "false")],
            body=application,
            content_type=kuberest.APPLY_PATCH,
            accept=kuberest.METADATA,
        )

    async def create_application(self, application: Mapping[str, Any], *, field_manager: str) -> JsonObject:
        """A new mirror by POST (its status in the same write: the CRD has no status subresource);
        returns its metadata. A name already taken is a ``ConflictError``."""
        meta = application["metadata"]
        return await self._rest.request(
            "POST",
            _argocd_path(meta["namespace"], APPLICATIONS),
            query=[*WHOLE_WRITE_QUERY, ("fieldManager", field_manager)],
            body=application,
            accept=kuberest.METADATA,
        )

    async def replace_application(self, application: Mapping[str, Any], *, field_manager: str) -> JsonObject:
        """A whole mirror by PUT, at the ``metadata.resourceVersion`` it carries: what it leaves out
        is gone, and a mirror changed since that version is a ``ConflictError``."""
        meta = application["metadata"]
        return await self._rest.request(
            "PUT",
            _argocd_path(meta["namespace"], APPLICATIONS, meta["name"]),
            query=[*WHOLE_WRITE_QUERY, ("fieldManager", field_manager)],
            body=application,
            accept=kuberest.METADATA,
        )

    async def delete_application(self, namespace: str, name: str) -> bool:
        """``False`` when it was already gone."""
        try:
            await self._rest.request("DELETE", _argocd_path(namespace, APPLICATIONS, name))
        except NotFoundError:
            return False
        return True

    async def replace_application_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        # Argo CD's Application CRD has no status subresource (`subresources: {}`): status is written
        # on the object itself. A JSON patch touches only /status, never the propagation's fields.
        await self._rest.request(
            "PATCH",
            _argocd_path(namespace, APPLICATIONS, name),
            query=WRITE_QUERY,
            body=_replace_status(status),
            content_type=kuberest.JSON_PATCH,
            accept=kuberest.METADATA,
        )

    async def clear_annotations(self, namespace: str, name: str, keys: Sequence[str]) -> None:
        """Remove these annotations of an Application (nothing else of it is touched)."""
        await self._rest.request(
            "PATCH",
            _argocd_path(namespace, APPLICATIONS, name),
            query=WRITE_QUERY,
            body={"metadata": {"annotations": dict.fromkeys(keys)}},
            content_type=kuberest.MERGE_PATCH,
            accept=kuberest.METADATA,
        )

    # --- inventory and generator inputs ----------------------------------------------------------

    async def list_secrets(self, namespace: str, labels: Mapping[str, str]) -> list[JsonObject]:
        return await self._list(f"/api/v1/namespaces/{quote(namespace)}/secrets", labels)

    async def get_config_map(self, namespace: str, name: str) -> JsonObject | None:
        return await self._get(f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}")

    async def list_namespaced(self, api_version: str, plural: str, namespace: str) -> list[JsonObject]:
        """Every object of a resource (``group/version`` + plural) in ``namespace``; ``[]`` when the
        hub does not serve that resource."""
        try:
            return await self._list(f"/apis/{api_version}/namespaces/{quote(namespace)}/{quote(plural)}")
        except NotFoundError:
            return []
