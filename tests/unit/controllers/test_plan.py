"""The plan turns a pull ApplicationSet into per-cluster works and hub mirrors.

Cases: opt-in label; ApplicationSet-level errors (not opted in, no uid, bad applicationsSync,
bad goTemplateOptions); the worker Application, ManifestBundle and hub mirror in
full; finalizers with and without preserveResourcesOnDeletion; destination by name and by server,
unknown/ambiguous/in-cluster destinations as per-target errors that do not stop the others;
validation and render errors (one set that cannot render stops every create); duplicate names
(neither deployed); unmatched decisions; stable work names and
upstream-compatible ids; properties of names and label values.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers import contract
from controllers.propagation import errors, generators, identities, inventory, plan

from .builders import GO_TEMPLATE, INVENTORY, PARAMS, TEMPLATE, appset, cluster_secret, make

# --- opt-in and ApplicationSet-level errors --------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "want"),
    [({"fleetplane.io/pull": "true"}, True), ({"fleetplane.io/pull": "false"}, False), ({}, False)],
    ids=["opted in", "false", "absent"],
)
def test_is_pull_enabled(labels: dict[str, str], want: bool) -> None:
    assert plan.is_pull_enabled({"metadata": {"labels": labels}}) is want


def _without_uid() -> dict[str, Any]:
    a = appset()
    del a["metadata"]["uid"]
    return a


APPSET_ERRORS = [
    ("not opted in", appset(pull=False), 'does not carry label fleetplane.io/pull: "true"'),
    ("no uid", _without_uid(), "needs namespace, name and uid"),
    (
        "bad applicationsSync",
        appset(syncPolicy={"applicationsSync": "sometimes"}),
        "applicationsSync: 'sometimes'",
    ),
    ("goTemplate option", appset(go_template=True, goTemplateOptions=["missingkey=zero"]), "missingkey=zero"),
]


@pytest.mark.parametrize(("a", "words"), [c[1:] for c in APPSET_ERRORS], ids=[c[0] for c in APPSET_ERRORS])
def test_appset_level_errors(a: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.PlanError, match=re.escape(words)):
        plan.plan_application_set(a, PARAMS, INVENTORY)


# --- the planned objects ---------------------------------------------------------------------------


def test_worker_application_bundle_and_hub_mirror() -> None:
    p = make()
    assert [w.key for w in p.works] == [
        plan.TargetKey("c1", "c1-guestbook"),
        plan.TargetKey("c2", "c2-guestbook"),
    ]
    assert p.errors == ()
    work = p.works[0]
    owner_labels = {"fleetplane.io/appset-namespace": "apps", "fleetplane.io/appset-name": "guestbook"}
    worker: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "c1-guestbook",
            "namespace": "argocd",
            "labels": {"env": "prod", **owner_labels},
            "annotations": {
                "fleetplane.io/applicationset": "apps/guestbook",
                "fleetplane.io/hub-application": "apps/c1-guestbook",
            },
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example/apps.git",
                "targetRevision": "main",
                "path": "guestbook",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }
    assert work.worker_application == worker
    assert work.bundle == {
        "manifests": [worker],
        "deleteOption": {"propagationPolicy": "Foreground"},
        "manifestConfigs": [
            {
                "resourceIdentifier": {
                    "group": "argoproj.io",
                    "resource": "applications",
                    "name": "c1-guestbook",
                    "namespace": "argocd",
                },
                "feedbackRules": [
                    {
                        "type": "JSONPaths",
                        "jsonPaths": [{"name": n, "path": q} for n, q in contract.FEEDBACK_PATHS],
                    }
                ],
                "updateStrategy": {
                    "type": "ServerSideApply",
                    "serverSideApply": {"fieldManager": "fleetplane", "force": True},
                },
            }
        ],
    }
    assert work.hub_application == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "c1-guestbook",
            "namespace": "apps",
            "labels": {"env": "prod", **owner_labels, "fleetplane.io/cluster": "c1"},
            "annotations": {
                "argocd.argoproj.io/skip-reconcile": "true",
                "fleetplane.io/applicationset": "apps/guestbook",
                "fleetplane.io/cluster": "c1",
                "fleetplane.io/work-name": work.work_name,
            },
            "ownerReferences": [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "ApplicationSet",
                    "name": "guestbook",
                    "uid": "0b3c-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {**worker["spec"], "destination": {"name": "c1", "namespace": "guestbook"}},
    }
    assert work.metadata == {
        "name": work.work_name,
        "namespace": "c1",
        "labels": {**owner_labels, "fleetplane.io/cluster": "c1"},
        "annotations": {
            "fleetplane.io/applicationset": "apps/guestbook",
            "fleetplane.io/hub-application": "apps/c1-guestbook",
            "fleetplane.io/cluster": "c1",
            "fleetplane.io/spec-hash": work.spec_hash,
        },
    }
    assert work.labels == {"env": "prod", **owner_labels}
    assert work.target_revisions == ("main",)


FINALIZERS = [
    ("default adds the resources finalizer", False, None, ["resources-finalizer.argocd.argoproj.io"]),
    ("template finalizers kept", False, ["example.com/keep"], ["example.com/keep"]),
    (
        "background variant kept",
        False,
        ["resources-finalizer.argocd.argoproj.io/background"],
        ["resources-finalizer.argocd.argoproj.io/background"],
    ),
    ("preserve: none added", True, None, None),
    (
        "preserve keeps the template's own finalizers, as Argo CD does",
        True,
        ["resources-finalizer.argocd.argoproj.io", "example.com/keep"],
        ["resources-finalizer.argocd.argoproj.io", "example.com/keep"],
    ),
]


@pytest.mark.parametrize(
    ("preserve", "template_finalizers", "want"), [c[1:] for c in FINALIZERS], ids=[c[0] for c in FINALIZERS]
)
def test_finalizers_and_preserve_resources_on_deletion(
    preserve: bool, template_finalizers: list[str] | None, want: list[str] | None
) -> None:
    template = copy.deepcopy(TEMPLATE)
    if template_finalizers is not None:
        template["metadata"]["finalizers"] = template_finalizers
    p = make(template=template, syncPolicy={"preserveResourcesOnDeletion": preserve})
    work = p.works[0]
    assert work.worker_application["metadata"].get("finalizers") == want
    assert work.bundle["deleteOption"] == {"propagationPolicy": "Foreground"}
    assert "finalizers" not in work.hub_application["metadata"]


def test_skip_reconcile_is_only_on_the_hub_mirror() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["metadata"]["annotations"] = {contract.ARGOCD_SKIP_RECONCILE: "true", "team": "web"}
    work = make(template=template).works[0]
    assert work.worker_application["metadata"]["annotations"]["team"] == "web"
    assert contract.ARGOCD_SKIP_RECONCILE not in work.worker_application["metadata"]["annotations"]
    assert work.hub_application["metadata"]["annotations"][contract.ARGOCD_SKIP_RECONCILE] == "true"


def test_destination_by_server() -> None:
    template = copy.deepcopy(TEMPLATE)
    template["spec"]["destination"] = {"server": "https://c2.example:6443/", "namespace": "gb"}
    p = make(template=template, params=[{"name": "x"}])
    assert [w.cluster for w in p.works] == ["c2"]
    assert p.works[0].worker_application["spec"]["destination"] == {
        "server": "https://kubernetes.default.svc",
        "namespace": "gb",
    }


def test_go_template_and_multiple_sources() -> None:
    template = copy.deepcopy(GO_TEMPLATE)
    template["spec"]["sources"] = [{"repoURL": "a", "targetRevision": "v1"}, {"repoURL": "b"}]
    del template["spec"]["source"]
    params = [{"name": "c1", "metadata": {"labels": {"env": "prod"}}}]
    p = make(template=template, params=params, go_template=True)
    assert p.works[0].application == "c1-guestbook"
    assert p.works[0].labels["env"] == "prod"
    assert p.works[0].target_revisions == ("v1", "HEAD")


# --- per-target errors -----------------------------------------------------------------------------

GOOD = {"name": "c2", "app": "c2-ok", "project": "default", "server": "", "ns": ""}
TARGET_ERRORS = [
    (
        "unknown cluster",
        {"name": "c9"},
        None,
        "UnknownCluster",
        "destination cluster 'c9' is not registered on the hub; registered clusters: c1, c2",
        False,
    ),
    ("in-cluster", {"name": "in-cluster"}, None, "UnknownCluster", "'in-cluster' is the hub itself", False),
    (
        "upper-case application name",
        {"app": "Guestbook"},
        {"metadata": {"name": "{{app}}"}},
        "ApplicationValidationError",
        "not a valid Kubernetes name",
        True,
    ),
    (
        "empty name",
        {"app": ""},
        {"metadata": {"name": "{{app}}"}},
        "ApplicationValidationError",
        "template.metadata.name is empty",
        True,
    ),
    (
        "no project",
        {"project": ""},
        {"spec": {"project": "{{project}}"}},
        "ApplicationValidationError",
        "spec.project is required",
        True,
    ),
    (
        "name and server",
        {"server": "https://c1.example:6443"},
        {"spec": {"destination": {"name": "{{name}}", "server": "{{server}}"}}},
        "ApplicationValidationError",
        "both name and server",
        True,
    ),
    (
        "foreign namespace",
        {"ns": "other"},
        {"metadata": {"namespace": "{{ns}}"}},
        "ApplicationValidationError",
        "template.metadata.namespace 'other'",
        True,
    ),
]


def _patched(changes: dict[str, Any] | None) -> dict[str, Any]:
    template = copy.deepcopy(TEMPLATE)
    for section, fields in (changes or {}).items():
        for key, value in fields.items():
            if value is None:
                template[section].pop(key, None)
            else:
                template[section][key] = value
    return template


@pytest.mark.parametrize(
    ("params", "changes", "reason", "words", "blocks"),
    [c[1:] for c in TARGET_ERRORS],
    ids=[c[0] for c in TARGET_ERRORS],
)
def test_per_target_errors_do_not_stop_the_others(
    params: dict[str, Any], changes: dict[str, Any] | None, reason: str, words: str, blocks: bool
) -> None:
    p = make(template=_patched(changes), params=[{**GOOD, "name": "c1", "app": "c1-ok", **params}, GOOD])
    assert [w.cluster for w in p.works] == ["c2"]
    assert [(e.reason, e.blocks_deletes) for e in p.errors] == [(reason, blocks)]
    assert words in p.errors[0].message


def test_an_application_needs_a_source() -> None:
    p = make(template=_patched({"spec": {"source": None}}), params=[GOOD])
    assert "template.spec needs source or sources" in p.errors[0].message


def test_ambiguous_server() -> None:
    clusters = inventory.Inventory.from_secrets(
        [cluster_secret("a", server="https://same"), cluster_secret("b", server="https://same")]
    )
    template = _patched({"spec": {"destination": {"server": "https://same"}}})
    p = plan.plan_application_set(appset(template=template), [{"name": "x"}], clusters)
    assert "registered by several clusters (a, b); use destination.name" in p.errors[0].message


def test_render_errors_block_deletes() -> None:
    template = copy.deepcopy(GO_TEMPLATE)
    template["spec"]["source"]["path"] = "{{ .missing.deeper }}"
    p = make(
        template=template,
        params=[{"name": "c1", "metadata": {"labels": {}}, "missing": None}],
        go_template=True,
    )
    assert p.works == ()
    (error,) = p.errors
    assert error.reason == "RenderTemplateParamsError" and error.blocks_deletes
    assert error.message.startswith(
        "parameter set 0 (name=c1): spec.source.path: .missing.deeper: nil pointer"
    )


def test_duplicate_application_names() -> None:
    template = _patched({"metadata": {"name": "guestbook"}})
    p = make(template=template)
    assert p.works == ()  # as in Argo CD: neither target is deployed
    later, first = p.errors
    assert {later.reason, first.reason} == {"DuplicateApplication"}
    assert not later.blocks_deletes and not first.blocks_deletes
    assert "'guestbook' for cluster 'c2', a name already rendered for cluster 'c1'" in later.message
    assert (first.cluster, first.application) == ("c1", "guestbook")


def test_unmatched_decisions_become_errors() -> None:
    unmatched = [
        generators.Unmatched(
            "ghost", "decision names cluster 'ghost'", "spec.generators[0].clusterDecisionResource"
        )
    ]
    p = plan.plan_application_set(appset(), PARAMS, INVENTORY, unmatched=unmatched)
    assert len(p.works) == 2
    assert [(e.reason, e.cluster) for e in p.errors] == [("UnknownCluster", "ghost")]


# --- identities ------------------------------------------------------------------------------------


def test_work_names_are_stable_and_distinct_per_appset() -> None:
    name = identities.work_name("apps", "guestbook", "c1", "c1-guestbook")
    assert name == identities.work_name("apps", "guestbook", "c1", "c1-guestbook")
    assert name.startswith("c1-guestbook-")
    assert name != identities.work_name("apps", "other", "c1", "c1-guestbook")
    assert make().works[0].work_name == name


def test_work_id_is_upstream_maestros_uuid5() -> None:
    work = make().works[0]
    expected = uuid.uuid5(
        uuid.NAMESPACE_OID, f"fleetplane-manifestworks.work.open-cluster-management.io-c1-{work.work_name}"
    )
    assert work.work_id == str(expected)


def test_spec_hash_follows_the_bundle() -> None:
    first = make().works[0]
    changed = make(template=_patched({"spec": {"project": "other"}})).works[0]
    assert first.spec_hash == make().works[0].spec_hash
    assert first.spec_hash != changed.spec_hash


@settings(max_examples=80, deadline=None)
@given(
    st.from_regex(r"[a-z0-9]([-a-z0-9]{0,250}[a-z0-9])?", fullmatch=True), st.text(min_size=1, max_size=80)
)
def test_work_names_are_valid_kubernetes_names(app: str, cluster: str) -> None:
    name = identities.work_name("ns", "appset", cluster, app)
    assert len(name) <= 253
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=120))
def test_label_values_are_always_valid(text: str) -> None:
    value = identities.label_value(text)
    assert len(value) <= 63
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value)
    if len(text) <= 63 and re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", text):
        assert value == text


def test_the_hub_mirror_as_written_carries_its_hash_and_status_and_leaves_the_plan_alone() -> None:
    work = plan.plan_application_set(appset(), PARAMS, INVENTORY).works[0]
    planned = copy.deepcopy(work.hub_application)
    status = {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}

    mirror = work.hub_mirror(status)

    assert mirror["metadata"]["annotations"][contract.ANNOTATION_MIRROR_HASH] == work.mirror_hash
    assert mirror["status"] == status and mirror["spec"] == planned["spec"]
    assert "status" not in work.hub_mirror(None)
    assert work.hub_application == planned  # a later pass may write the same plan again


def test_one_set_that_cannot_render_stops_every_create() -> None:
    template = copy.deepcopy(GO_TEMPLATE)
    template["spec"]["source"]["path"] = "{{ .app.path }}"
    good = {"name": "c1", "metadata": {"labels": {"env": "prod"}}, "app": {"path": "guestbook"}}
    bad = {"name": "c2", "metadata": {"labels": {"env": "dev"}}, "app": None}
    p = make(template=template, params=[good, bad], go_template=True)
    assert p.works == ()  # as in Argo CD, the whole generation fails
    (error,) = p.errors
    assert error.reason == "RenderTemplateParamsError" and error.blocks_deletes
