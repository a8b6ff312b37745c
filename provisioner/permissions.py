"""The Maestro agent's permissions on its cluster: the rules a claim may add, checked (pure).

The worker-cluster composition gives the agent only what the fleet deploys by default — Argo CD
``Applications`` in the ``argocd`` namespace — and what the agent needs for its own records (see
the template). A claim that wants the agent to apply more lists extra RBAC rules in
``spec.parameters.agentPermissions``::

    agentPermissions:
      - apiGroups: [""]                 # "" is the core group
        resources: [configmaps]
        verbs: [get, list, watch, create, update, patch, delete]
        namespace: default              # a Role in that namespace; without it, cluster-wide
      - nonResourceURLs: [/healthz]     # cluster-wide only
        verbs: [get]

A rule with ``namespace`` goes into a Role (and RoleBinding) in that namespace, which must exist;
one without into the agent's ClusterRole. The agent watches what it applied to report status, so
a rule should grant ``get``, ``list`` and ``watch`` besides the writes. Problems are reported with
the field path and the fix, before anything is applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PARAMETER = "agentPermissions"
FIELD = f"spec.parameters.{PARAMETER}"
RULE_FIELDS = ("apiGroups", "resources", "resourceNames", "nonResourceURLs", "verbs", "namespace")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_EXAMPLE_VERBS = "[get, list, watch, create, update, patch, delete]"


def problems(rules: Any, field: str = FIELD) -> list[str]:
    """Everything wrong with a list of extra agent rules, each naming its field and the fix."""
    if rules is None:
        return []
    if not isinstance(rules, list):
        return [f"{field}: is {type(rules).__name__}, not a list — give a list of RBAC rules"]
    out: list[str] = []
    for i, rule in enumerate(rules):
        out.extend(_rule_problems(rule, f"{field}[{i}]"))
    return out


def _strings(rule: Mapping[str, Any], key: str, where: str, out: list[str]) -> list[str]:
    value = rule.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        out.append(f"{where}.{key}: must be a list of strings")
        return []
    return list(value)


def _rule_problems(rule: Any, where: str) -> list[str]:
    if not isinstance(rule, Mapping):
        kind = type(rule).__name__
        return [f"{where}: is {kind}, not an object — write an RBAC rule (apiGroups, resources, verbs)"]
    out: list[str] = []
    unknown = sorted(set(rule) - set(RULE_FIELDS))
    if unknown:
        out.append(f"{where}: unknown field {', '.join(unknown)} — a rule has {', '.join(RULE_FIELDS)}")
    verbs = _strings(rule, "verbs", where, out)
    groups = _strings(rule, "apiGroups", where, out)
    resources = _strings(rule, "resources", where, out)
    _strings(rule, "resourceNames", where, out)
    urls = _strings(rule, "nonResourceURLs", where, out)
    if not verbs or any(not v for v in verbs):
        out.append(f"{where}.verbs: is empty — list what the agent may do, e.g. {_EXAMPLE_VERBS}")
    if resources and urls:
        out.append(f"{where}: has both resources and nonResourceURLs — split it into two rules")
    elif not resources and not urls:
        out.append(f"{where}: names no resources — give apiGroups and resources (or nonResourceURLs)")
    elif resources and not groups:
        out.append(f'{where}.apiGroups: is empty — name the resources\' group, "" for the core group')
    namespace = rule.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace):
            out.append(
                f"{where}.namespace: {namespace!r} is not a namespace name — a DNS label, or leave it "
                "out for a cluster-wide rule"
            )
        elif urls:
            out.append(f"{where}.namespace: nonResourceURLs are cluster-wide — remove namespace")
    return out
