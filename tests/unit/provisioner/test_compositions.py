"""Composition revisions, selection and update policies.

Cases: the first revision; none when nothing changed; a new one when the template or the defaults
change, numbered above the latest and owned by the Composition; a rollback renumbers the older
revision; selection by compositionRef, by label selector (first by name), by the definition's
default, each refused with the field named (missing, wrong kind, no match, nothing to go on);
Automatic follows the latest revision, Manual stays on the pinned one and pins the latest on first
bind, a missing pinned revision names the kubectl patch that fixes it; the binding patch; pruning
keeps revisions in use and the latest.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import compositions

from . import builders

TEXT = "---\nname: cluster\n"


def composition(name: str = "worker-cluster", uid: str = "c-uid", **labels: str) -> dict[str, Any]:
    comp = builders.composition()
    comp["metadata"] = {"name": name, "uid": uid, "labels": labels}
    return comp


def cut(comp: dict[str, Any], text: str, revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The revisions after the Composition, as it is now, was reconciled."""
    new = compositions.next_revision(comp, text, revisions)
    if new is None:
        return revisions
    others = [r for r in revisions if r["metadata"]["name"] != new["metadata"]["name"]]
    return [*others, new]


def composite(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "platform.fleetplane.io/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "team-a-12345"},
        "spec": {"parameters": {}, **spec},
    }


def test_first_revision() -> None:
    comp = composition()
    revision = compositions.next_revision(comp, TEXT, [])
    assert revision is not None
    digest = compositions.template_hash(comp, TEXT)
    assert revision["metadata"]["name"] == f"worker-cluster-{digest[:7]}"
    assert revision["metadata"]["labels"]["fleetplane.io/composition-name"] == "worker-cluster"
    assert revision["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "fleetplane.io/v1alpha1",
            "kind": "Composition",
            "name": "worker-cluster",
            "uid": "c-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert revision["spec"] == {
        "revision": 1,
        "compositionName": "worker-cluster",
        "compositeTypeRef": {"apiVersion": "platform.fleetplane.io/v1alpha1", "kind": "WorkerCluster"},
        "template": {"inline": TEXT, "source": "compositions/worker-cluster/template.yaml.j2"},
        "defaults": comp["spec"]["defaults"],
        "hash": digest,
    }


def changed_defaults(comp: dict[str, Any]) -> dict[str, Any]:
    comp["spec"]["defaults"]["nodeCount"] = 3
    return comp


@pytest.mark.parametrize(
    ("change", "text", "new"),
    [
        ("nothing", TEXT, False),
        ("the template", TEXT + "# more\n", True),
        ("the defaults", TEXT, True),
        ("only the labels", TEXT, False),
    ],
    ids=["unchanged", "template changed", "defaults changed", "labels changed"],
)
def test_next_revision_on_change(change: str, text: str, new: bool) -> None:
    revisions = cut(composition(), TEXT, [])
    comp = composition(team="x") if change == "only the labels" else composition()
    if change == "the defaults":
        comp = changed_defaults(comp)
    revision = compositions.next_revision(comp, text, revisions)
    assert (revision is not None) is new
    if revision is not None:
        assert revision["spec"]["revision"] == 2
        assert revision["metadata"]["name"] != revisions[0]["metadata"]["name"]


def test_rollback_renumbers_the_older_revision() -> None:
    revisions = cut(composition(), TEXT, [])
    revisions = cut(composition(), TEXT + "# v2\n", revisions)
    back = compositions.next_revision(composition(), TEXT, revisions)
    assert back is not None
    assert back["metadata"]["name"] == revisions[0]["metadata"]["name"]
    assert back["spec"]["revision"] == 3


def test_offline_composition_has_no_owner() -> None:
    comp = composition()
    del comp["metadata"]["uid"]
    revision = compositions.next_revision(comp, TEXT, [])
    assert revision is not None and "ownerReferences" not in revision["metadata"]


OTHER_KIND = {"apiVersion": "example.org/v1", "kind": "XDatabase"}


def foreign(name: str, **labels: str) -> dict[str, Any]:
    comp = composition(name, **labels)
    comp["spec"]["compositeTypeRef"] = OTHER_KIND
    return comp


ALL = [
    composition("worker-cluster"),
    composition("b-fast", tier="fast"),
    composition("a-fast", tier="fast"),
    foreign("db", tier="fast"),
]

SELECT = [
    ("compositionRef", composite(compositionRef={"name": "b-fast"}), "worker-cluster", "b-fast"),
    (
        "selector: first by name",
        composite(compositionSelector={"matchLabels": {"tier": "fast"}}),
        "",
        "a-fast",
    ),
    ("the definition's default", composite(), "worker-cluster", "worker-cluster"),
    (
        "ref wins over selector",
        composite(
            compositionRef={"name": "worker-cluster"}, compositionSelector={"matchLabels": {"tier": "fast"}}
        ),
        "",
        "worker-cluster",
    ),
]


@pytest.mark.parametrize(("obj", "default", "want"), [c[1:] for c in SELECT], ids=[c[0] for c in SELECT])
def test_select_composition(obj: dict[str, Any], default: str, want: str) -> None:
    assert compositions.select_composition(obj, ALL, default)["metadata"]["name"] == want


SELECT_ERRORS = [
    (
        "ref to a missing one",
        composite(compositionRef={"name": "nope"}),
        "x",
        "spec.compositionRef.name",
        "'nope' does not exist",
    ),
    (
        "ref to another kind",
        composite(compositionRef={"name": "db"}),
        "x",
        "spec.compositionRef.name",
        "serves XDatabase",
    ),
    (
        "selector matches none",
        composite(compositionSelector={"matchLabels": {"tier": "slow"}}),
        "",
        "spec.compositionSelector.matchLabels",
        "tier=slow matches no Composition",
    ),
    ("default missing", composite(), "gone", "spec.compositionRef.name", "'gone' does not exist"),
    ("nothing to go on", composite(), "", "spec.compositionRef.name", "definition names no default"),
]


@pytest.mark.parametrize(
    ("obj", "default", "field", "message"), [c[1:] for c in SELECT_ERRORS], ids=[c[0] for c in SELECT_ERRORS]
)
def test_select_composition_errors(obj: dict[str, Any], default: str, field: str, message: str) -> None:
    with pytest.raises(compositions.CompositionError) as caught:
        compositions.select_composition(obj, ALL, default)
    assert caught.value.field == field
    assert message in caught.value.message
    # The fix lists what would work.
    assert "a-fast, b-fast, worker-cluster" in caught.value.fix


@pytest.fixture
def history() -> list[dict[str, Any]]:
    revisions = cut(composition(), TEXT, [])
    return cut(composition(), TEXT + "# v2\n", revisions)


def names(revisions: list[dict[str, Any]]) -> list[str]:
    return [r["metadata"]["name"] for r in compositions.revisions_of("worker-cluster", revisions)]


def test_automatic_follows_the_latest(history: list[dict[str, Any]]) -> None:
    obj = composite(
        compositionRef={"name": "worker-cluster"}, compositionRevisionRef={"name": names(history)[0]}
    )
    assert compositions.resolve_revision(obj, history)["spec"]["revision"] == 2


def test_manual_stays_on_the_pinned_revision(history: list[dict[str, Any]]) -> None:
    first = names(history)[0]
    obj = composite(
        compositionRef={"name": "worker-cluster"},
        compositionUpdatePolicy="Manual",
        compositionRevisionRef={"name": first},
    )
    assert compositions.resolve_revision(obj, history)["metadata"]["name"] == first
    # A third revision does not move it either.
    more = cut(composition(), TEXT + "# v3\n", history)
    assert compositions.resolve_revision(obj, more)["metadata"]["name"] == first
    assert compositions.binding_patch(obj, composition(), compositions.resolve_revision(obj, more)) == {}


def test_manual_pins_the_latest_on_first_bind(history: list[dict[str, Any]]) -> None:
    obj = composite(compositionUpdatePolicy="Manual")
    revision = compositions.resolve_revision(obj, history)
    assert revision["spec"]["revision"] == 2
    assert compositions.binding_patch(obj, composition(), revision) == {
        "spec": {
            "compositionRef": {"name": "worker-cluster"},
            "compositionRevisionRef": {"name": names(history)[1]},
        }
    }


def test_automatic_binding_patch_moves_the_ref(history: list[dict[str, Any]]) -> None:
    first, latest = names(history)
    obj = composite(compositionRef={"name": "worker-cluster"}, compositionRevisionRef={"name": first})
    revision = compositions.resolve_revision(obj, history)
    assert compositions.binding_patch(obj, composition(), revision) == {
        "spec": {"compositionRevisionRef": {"name": latest}}
    }


def test_manual_missing_revision_names_the_fix(history: list[dict[str, Any]]) -> None:
    latest = names(history)[1]
    obj = composite(
        compositionRef={"name": "worker-cluster"},
        compositionUpdatePolicy="Manual",
        compositionRevisionRef={"name": "worker-cluster-gone"},
        claimRef={"kind": "ClusterClaim", "name": "team-a", "namespace": "apps"},
    )
    with pytest.raises(compositions.CompositionError) as caught:
        compositions.resolve_revision(obj, history)
    assert caught.value.field == "spec.compositionRevisionRef.name"
    assert "'worker-cluster-gone', which does not exist" in caught.value.message
    assert caught.value.fix == (
        "pin an existing one, e.g. the latest: kubectl patch clusterclaim team-a -n apps --type merge "
        f"""-p '{{"spec":{{"compositionRevisionRef":{{"name":"{latest}"}}}}}}'"""
    )


def test_no_revision_yet() -> None:
    with pytest.raises(compositions.CompositionError, match="has no revision yet"):
        compositions.resolve_revision(composite(compositionRef={"name": "worker-cluster"}), [])


def test_revisions_of_other_compositions_are_ignored(history: list[dict[str, Any]]) -> None:
    other = cut(composition("other"), TEXT + "# other\n", [])
    obj = composite(compositionRef={"name": "worker-cluster"})
    assert compositions.resolve_revision(obj, other + history)["spec"]["compositionName"] == "worker-cluster"


def test_prunable_revisions_keep_those_in_use_and_the_latest() -> None:
    comp = composition()
    comp["spec"]["revisionHistoryLimit"] = 1
    revisions: list[dict[str, Any]] = []
    for i in range(4):
        revisions = cut(comp, f"{TEXT}# v{i}\n", revisions)
    ordered = names(revisions)
    prunable = [r["metadata"]["name"] for r in compositions.prunable_revisions(comp, revisions, {ordered[1]})]
    assert prunable == [ordered[0], ordered[2]]
