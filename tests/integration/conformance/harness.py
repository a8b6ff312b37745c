"""The differential conformance harness: fleetplane's plan for an ApplicationSet next to the
Applications Argo CD's own ApplicationSet controller generated for it, both normalised.

Used by ``test_corpus``. ``NORMALISED`` below is the complete list of what may differ between the
two and why; everything else of an Application (name, namespace, labels, annotations, finalizers
and the whole spec) must be equal.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from controllers import contract
from controllers.propagation import errors, generators, inventory, plan
from tests.integration.conformance import hub

CORPUS = Path(__file__).parent / "corpus"
PULL_LABELS = {contract.PULL_LABEL: contract.PULL_LABEL_VALUE}

#: Metadata each side sets for itself, never from the template: the API server's (uid,
#: resourceVersion, generation, creationTimestamp, managedFields) and the owner reference (Argo CD
#: points it at its ApplicationSet object, fleetplane at its own).
NORMALISED_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "ownerReferences",
)
#: fleetplane's bookkeeping on its hub mirrors: which ApplicationSet and cluster a mirror belongs
#: to, its work's name, the hash that spares unchanged writes, and skip-reconcile (a hub Argo CD
#: must leave mirrors alone).
NORMALISED_LABELS = (contract.LABEL_APPSET_NAMESPACE, contract.LABEL_APPSET_NAME, contract.LABEL_CLUSTER)
NORMALISED_ANNOTATIONS = (
    contract.ANNOTATION_APPSET,
    contract.ANNOTATION_CLUSTER,
    contract.ANNOTATION_WORK_NAME,
    contract.ANNOTATION_MIRROR_HASH,
    contract.ARGOCD_SKIP_RECONCILE,
)
#: Status is each side's own (Argo CD's application controller does not run on the comparison hub);
#: a RollingSync's sync operation is Argo CD's on its hub Application, fleetplane's on the cluster's
#: (its work), and each is set when the rollout reaches the Application's step.
NORMALISED_TOP = ("status", "operation")
NORMALISED = (NORMALISED_METADATA, NORMALISED_LABELS, NORMALISED_ANNOTATIONS, NORMALISED_TOP)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    about: str
    #: ``equal``: both render the same Applications; ``refuse``: both refuse (some of) it;
    #: ``reported``: the same Applications, and fleetplane reports what Argo CD skips silently
    expect: str
    spec: dict[str, Any]
    decisions: tuple[dict[str, Any], ...]
    #: the case makes no Application at all (otherwise an empty result on both sides is a failure)
    empty: bool = False

    @property
    def namespace(self) -> str:
        return f"cf-{self.name}"

    def appset(self) -> dict[str, Any]:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": "conformance", "namespace": self.namespace, "labels": dict(PULL_LABELS)},
            "spec": copy.deepcopy(self.spec),
        }

    def decision_objects(self, namespace: str) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": "cluster.open-cluster-management.io/v1beta1",
                "kind": "PlacementDecision",
                "metadata": {"name": d["name"], "namespace": namespace, "labels": d.get("labels") or {}},
                "status": {"decisions": d.get("decisions") or []},
            }
            for d in self.decisions
        ]


def load_corpus(repo_urls: Mapping[str, str]) -> list[Case]:
    """Every case of the corpus, ``${repo:NAME}`` replaced by that repository's URL."""
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        text = path.read_text()
        for name, url in repo_urls.items():
            text = text.replace(f"${{repo:{name}}}", url)
        for doc in yaml.safe_load_all(text):
            if doc:
                cases.append(
                    Case(
                        doc["name"],
                        doc.get("about", ""),
                        doc.get("expect", "equal"),
                        doc["spec"],
                        tuple(doc.get("placementDecisions") or ()),
                        bool(doc.get("empty")),
                    )
                )
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), f"case names must be unique: {sorted(names)}"
    bad = [n for n in names if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,56}[a-z0-9])?", n)]
    assert not bad, f"case names name namespaces (lower-case letters, digits and '-', at most 58): {bad}"
    decisions = [d["name"] for c in cases for d in c.decisions]
    assert len(decisions) == len(set(decisions)), (
        f"PlacementDecision names must be unique: {sorted(decisions)}"
    )
    return cases


@dataclasses.dataclass(frozen=True)
class Result:
    """What one side made of a case: its Applications by name, and whether it refused anything."""

    applications: dict[str, dict[str, Any]]
    refused: list[str]


def fleetplane(case: Case, git: Mapping[tuple[str, str], Any]) -> Result:
    """fleetplane's pure generation and plan for a case, as its hub mirrors would be written."""
    clusters = inventory.Inventory.from_secrets(hub.cluster_secrets())
    inputs = generators.GeneratorInputs(
        clusters,
        {hub.OCM_CONFIG_MAP_NAME: hub.OCM_CONFIG_MAP},
        {
            (hub.OCM_CONFIG_MAP["apiVersion"], hub.OCM_CONFIG_MAP["kind"]): case.decision_objects(
                case.namespace
            )
        },
        dict(git),
    )
    appset = case.appset()
    appset["metadata"]["uid"] = "conformance"
    try:
        generation = generators.generate(appset["spec"], inputs)
        planned = plan.plan_application_set(
            appset, generation.params, clusters, unmatched=generation.unmatched
        )
    except (errors.GeneratorError, errors.TemplateError, errors.PlanError) as exc:
        return Result({}, [str(exc)])
    apps = {}
    for work in planned.works:
        app = copy.deepcopy(work.hub_mirror(None))
        # the hub mirror has no finalizers (Argo CD must not act on it); the Application the user's
        # ApplicationSet means is the one sent to the cluster, whose finalizers are the template's
        finalizers = work.worker_application["metadata"].get("finalizers")
        if finalizers:
            app["metadata"]["finalizers"] = finalizers
        apps[work.application] = normalise(app)
    return Result(apps, [f"{e.reason}: {e.message}" for e in planned.errors])


def normalise(app: Mapping[str, Any]) -> dict[str, Any]:
    """An Application without what ``NORMALISED`` lists (and without empty label or annotation maps)."""
    out = {k: copy.deepcopy(v) for k, v in app.items() if k not in NORMALISED_TOP}
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in NORMALISED_METADATA}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in NORMALISED_LABELS}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in NORMALISED_ANNOTATIONS
    }
    meta.pop("labels", None)
    meta.pop("annotations", None)
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    out["metadata"] = meta
    return out


def argo_refused(appset: Mapping[str, Any]) -> list[str]:
    """The error conditions Argo CD set on its ApplicationSet."""
    conditions = (appset.get("status") or {}).get("conditions") or []
    return [
        f"{c.get('reason')}: {c.get('message')}"
        for c in conditions
        if c.get("type") == "ErrorOccurred" and c.get("status") == "True"
    ]


def differences(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Where two JSON-shaped values differ, one line per place (for a readable failure)."""
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
        found = []
        for key in sorted(set(ours) | set(theirs), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in theirs:
                found.append(f"{where}: only fleetplane has {ours[key]!r}")
            elif key not in ours:
                found.append(f"{where}: only Argo CD has {theirs[key]!r}")
            else:
                found += differences(ours[key], theirs[key], where)
        return found
    if ours != theirs:
        return [f"{path}: fleetplane {ours!r}, Argo CD {theirs!r}"]
    return []
