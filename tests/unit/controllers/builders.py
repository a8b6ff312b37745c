"""Small builders for the controllers' unit tests: cluster Secrets, ApplicationSets, bundle statuses."""

from __future__ import annotations

import base64
import copy
from typing import Any

from controllers.propagation import inventory, plan

#: a clusters selector every registered cluster matches (an empty one adds the hub's in-cluster)
EVERY_CLUSTER = {"selector": {"matchLabels": {inventory.SECRET_TYPE_LABEL: inventory.SECRET_TYPE_CLUSTER}}}


def cluster_secret(
    name: str,
    server: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    plain: bool = False,
) -> dict[str, Any]:
    """An Argo CD cluster Secret as the API server returns it (``data`` base64) or as written (``plain``)."""
    fields = {"name": name, "server": server or f"https://{name}.example:6443"}
    secret: dict[str, Any] = {
        "metadata": {
            "name": f"cluster-{name}",
            "labels": {inventory.SECRET_TYPE_LABEL: inventory.SECRET_TYPE_CLUSTER, **(labels or {})},
            "annotations": dict(annotations or {}),
        }
    }
    if plain:
        secret["stringData"] = fields
    else:
        secret["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()}
    return secret


def fleet(*specs: tuple[str, dict[str, str]]) -> inventory.Inventory:
    return inventory.Inventory.from_secrets([cluster_secret(n, labels=labels) for n, labels in specs])


TEMPLATE: dict[str, Any] = {
    "metadata": {"name": "{{name}}-guestbook", "labels": {"env": "{{metadata.labels.env}}"}},
    "spec": {
        "project": "default",
        "source": {"repoURL": "https://git.example/apps.git", "targetRevision": "main", "path": "guestbook"},
        "destination": {"name": "{{name}}", "namespace": "guestbook"},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
    },
}

GO_TEMPLATE: dict[str, Any] = {
    "metadata": {"name": "{{ .name }}-guestbook", "labels": {"env": '{{ index .metadata.labels "env" }}'}},
    "spec": {
        "project": "default",
        "source": {"repoURL": "https://git.example/apps.git", "targetRevision": "main", "path": "guestbook"},
        "destination": {"name": "{{ .name }}", "namespace": "guestbook"},
    },
}


def appset(
    generators: list[dict[str, Any]] | None = None,
    *,
    template: dict[str, Any] | None = None,
    go_template: bool = False,
    pull: bool = True,
    **spec_extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "generators": generators if generators is not None else [{"clusters": EVERY_CLUSTER}],
        "template": copy.deepcopy(
            template if template is not None else (GO_TEMPLATE if go_template else TEMPLATE)
        ),
        **spec_extra,
    }
    if go_template:
        spec["goTemplate"] = True
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": "guestbook",
            "namespace": "apps",
            "uid": "0b3c-uid",
            "labels": {"fleetplane.io/pull": "true"} if pull else {},
        },
        "spec": spec,
    }


def feedback(**values: Any) -> list[dict[str, Any]]:
    """Status feedback values in OCM's wire shape; dicts and lists become JsonRaw."""
    import json

    out = []
    for name, value in values.items():
        if isinstance(value, bool):
            field = {"type": "Boolean", "boolean": value}
        elif isinstance(value, int):
            field = {"type": "Integer", "integer": value}
        elif isinstance(value, str):
            field = {"type": "String", "string": value}
        else:
            field = {"type": "JsonRaw", "jsonRaw": json.dumps(value)}
        out.append({"name": name, "fieldValue": field})
    return out


def bundle_status(
    values: list[dict[str, Any]] | None = None,
    *,
    applied: str = "True",
    extra_conditions: list[dict[str, Any]] | None = None,
    resource_conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "conditions": [
            {
                "type": "Applied",
                "status": applied,
                "reason": "AppliedManifestWorkComplete" if applied == "True" else "AppliedManifestWorkFailed",
                "message": "Apply manifest work complete"
                if applied == "True"
                else "Failed to apply manifest work",
                "lastTransitionTime": "2026-11-20T10:00:00Z",
            },
            *(extra_conditions or []),
        ],
        "resourceStatus": [
            {
                "resourceMeta": {
                    "ordinal": 0,
                    "group": "argoproj.io",
                    "version": "v1alpha1",
                    "kind": "Application",
                    "resource": "applications",
                    "name": "c1-guestbook",
                    "namespace": "argocd",
                },
                "statusFeedback": {"values": values or []},
                "conditions": resource_conditions or [],
            }
        ],
    }


INVENTORY = fleet(("c1", {"env": "prod"}), ("c2", {"env": "dev"}))
PARAMS = [{"name": "c1", "metadata.labels.env": "prod"}, {"name": "c2", "metadata.labels.env": "dev"}]


def make(
    spec_changes: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None, **kw: Any
) -> plan.Plan:
    """The plan of ``appset(**kw)`` over ``INVENTORY`` (two clusters) for ``params`` (default ``PARAMS``)."""
    a = appset(**kw)
    a["spec"].update(spec_changes or {})
    return plan.plan_application_set(a, PARAMS if params is None else params, INVENTORY)
