"""Building the ManifestBundleStatus, its hash, and status sequence ids.

Cases: the bundle conditions for all-good, a failed apply (message names the manifests, and
how many more), a missing resource, a degraded Argo CD Application, and bundle-level errors;
per-manifest entries (resourceMeta, feedback values, StatusFeedbackSynced with its errors);
lastTransitionTime kept while a condition holds, moved when it flips, so an unchanged cluster
hashes the same; the deleting and deleted reports; sequence ids increasing for any clock, across
a "restart" (a new generator), and above an observed id.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maestro.agent import bundle_status
from maestro.agent.applier import DeleteResult, ManifestOutcome
from maestro.agent.manifests import ManifestMeta
from maestro.agent.records import AppliedResource

T0 = datetime(2026, 11, 3, 10, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)

CM = ManifestMeta(0, "", "v1", "ConfigMap", "configmaps", "team", "a")
DEPLOY = ManifestMeta(1, "apps", "v1", "Deployment", "deployments", "team", "web")
APP = ManifestMeta(2, "argoproj.io", "v1alpha1", "Application", "applications", "argocd", "gb")


def live(meta: ManifestMeta, **extra: Any) -> dict[str, Any]:
    api_version = f"{meta.group}/{meta.version}" if meta.group else meta.version
    return {"apiVersion": api_version, "kind": meta.kind, "metadata": {"name": meta.name}, **extra}


def ok(meta: ManifestMeta, **extra: Any) -> ManifestOutcome:
    return ManifestOutcome(meta, True, live=live(meta, **extra), owned=True)


def summary(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in report["conditions"]}


def message(report: dict[str, Any], ctype: str) -> str:
    return str(next(c["message"] for c in report["conditions"] if c["type"] == ctype))


CONDITION_CASES = [
    (
        "all-good",
        [ok(CM), ok(DEPLOY)],
        (),
        {
            "Applied": ("True", "AppliedManifestWorkComplete"),
            "Available": ("True", "ResourcesAvailable"),
            "Progressing": ("False", "AppliedManifestWorkComplete"),
            "Degraded": ("False", "ResourcesNotDegraded"),
        },
        ("Applied", "Apply manifest work complete"),
    ),
    (
        "failed-apply",
        [ok(CM), ManifestOutcome(DEPLOY, False, "Deployment team/web: spec.replicas: Invalid value: -1")],
        (),
        {
            "Applied": ("False", "AppliedManifestWorkFailed"),
            "Available": ("False", "ResourcesNotAvailable"),
            "Progressing": ("True", "ApplyingManifests"),
            "Degraded": ("True", "AppliedManifestFailed"),
        },
        (
            "Degraded",
            "Failed to apply 1 manifests: Deployment team/web: spec.replicas: Invalid",
        ),
    ),
    (
        "missing-resource",
        [ok(CM), ManifestOutcome(DEPLOY, True, live=None)],
        (),
        {
            "Applied": ("True", "AppliedManifestWorkComplete"),
            "Available": ("False", "ResourcesNotAvailable"),
            "Progressing": ("False", "AppliedManifestWorkComplete"),
            "Degraded": ("False", "ResourcesNotDegraded"),
        },
        ("Available", "1 of 2 resources are not available: Deployment team/web"),
    ),
    (
        "degraded-application",
        [ok(APP, status={"health": {"status": "Degraded", "message": "back-off"}})],
        (),
        {
            "Applied": ("True", "AppliedManifestWorkComplete"),
            "Available": ("True", "ResourcesAvailable"),
            "Progressing": ("False", "AppliedManifestWorkComplete"),
            "Degraded": ("True", "ResourcesDegraded"),
        },
        ("Degraded", "Application argocd/gb: Argo CD reports health Degraded: back-off"),
    ),
    (
        "bundle-level-error",
        [ok(CM)],
        ("could not update the applied record: boom",),
        {
            "Applied": ("False", "AppliedManifestWorkFailed"),
            "Available": ("True", "ResourcesAvailable"),
            "Progressing": ("True", "ApplyingManifests"),
            "Degraded": ("True", "AppliedManifestFailed"),
        },
        ("Applied", "could not update the applied record: boom"),
    ),
]


@pytest.mark.parametrize(
    ("outcomes", "errors", "want", "want_message"),
    [c[1:] for c in CONDITION_CASES],
    ids=[c[0] for c in CONDITION_CASES],
)
def test_bundle_conditions(
    outcomes: list[ManifestOutcome],
    errors: tuple[str, ...],
    want: dict[str, tuple[str, str]],
    want_message: tuple[str, str],
) -> None:
    report = bundle_status.build_status(7, outcomes, errors=errors, now=T0)
    assert summary(report) == want
    assert message(report, want_message[0]).startswith(want_message[1])
    assert all(
        c["observedGeneration"] == 7 and c["lastTransitionTime"] == "2026-11-03T10:00:00Z"
        for c in report["conditions"]
    )


def test_failure_message_names_three_and_counts_the_rest() -> None:
    metas = [ManifestMeta(i, "", "v1", "ConfigMap", "configmaps", "team", f"c{i}") for i in range(5)]
    report = bundle_status.build_status(
        1, [ManifestOutcome(m, False, f"{m.describe()}: denied") for m in metas]
    )
    assert message(report, "Applied") == (
        "Failed to apply 5 manifests: ConfigMap team/c0: denied; ConfigMap team/c1: denied; "
        "ConfigMap team/c2: denied; and 2 more"
    )


def test_manifest_entries_carry_meta_feedback_and_conditions() -> None:
    configs = [
        {
            "resourceIdentifier": {
                "group": "apps",
                "resource": "deployments",
                "namespace": "team",
                "name": "web",
            },
            "feedbackRules": [
                {
                    "type": "JSONPaths",
                    "jsonPaths": [
                        {"name": "replicas", "path": ".spec.replicas"},
                        {"name": "bad", "path": ".x[y]"},
                    ],
                }
            ],
        }
    ]
    outcomes = [ok(CM), ok(DEPLOY, spec={"replicas": 2}), ManifestOutcome(APP, False, "nope")]
    report = bundle_status.build_status(1, outcomes, configs, now=T0)
    cm_entry, deploy_entry, app_entry = report["resourceStatus"]
    assert cm_entry["resourceMeta"] == {
        "ordinal": 0,
        "group": "",
        "version": "v1",
        "kind": "ConfigMap",
        "resource": "configmaps",
        "name": "a",
        "namespace": "team",
    }
    assert cm_entry["statusFeedback"] == {}
    assert [(c["type"], c["status"], c["reason"]) for c in cm_entry["conditions"]] == [
        ("Applied", "True", "AppliedManifestComplete"),
        ("Available", "True", "ResourceAvailable"),
    ]
    assert deploy_entry["statusFeedback"] == {
        "values": [{"name": "replicas", "fieldValue": {"type": "Integer", "integer": 2}}]
    }
    synced = deploy_entry["conditions"][2]
    assert (synced["type"], synced["status"], synced["reason"]) == (
        "StatusFeedbackSynced",
        "False",
        "StatusFeedbackSyncFailed",
    )
    assert synced["message"].startswith("bad: bad subscript [y]")
    assert [(c["type"], c["status"], c["message"]) for c in app_entry["conditions"]] == [
        ("Applied", "False", "nope"),
        ("Available", "False", "Resource is not available"),
    ]


def test_transition_times_and_hash_are_stable_while_nothing_changes() -> None:
    first = bundle_status.build_status(1, [ok(CM), ManifestOutcome(DEPLOY, True, live=None)], now=T0)
    again = bundle_status.build_status(
        1, [ok(CM), ManifestOutcome(DEPLOY, True, live=None)], previous=first, now=T1
    )
    assert again == first
    assert bundle_status.status_hash(again) == bundle_status.status_hash(first)

    later = bundle_status.build_status(1, [ok(CM), ok(DEPLOY)], previous=again, now=T1)
    assert bundle_status.status_hash(later) != bundle_status.status_hash(first)
    times = {c["type"]: c["lastTransitionTime"] for c in later["conditions"]}
    assert times == {
        "Applied": "2026-11-03T10:00:00Z",  # held True
        "Available": "2026-11-03T10:05:00Z",  # flipped to True
        "Progressing": "2026-11-03T10:00:00Z",
        "Degraded": "2026-11-03T10:00:00Z",
    }
    deploy_available = later["resourceStatus"][1]["conditions"][1]
    assert deploy_available["lastTransitionTime"] == "2026-11-03T10:05:00Z"


def test_hash_ignores_key_order() -> None:
    assert bundle_status.status_hash({"a": 1, "b": [{"x": 1, "y": 2}]}) == bundle_status.status_hash(
        {"b": [{"y": 2, "x": 1}], "a": 1}
    )


def test_deleting_then_deleted() -> None:
    applied = bundle_status.build_status(3, [ok(CM)], now=T0)
    waiting = DeleteResult(
        "rid",
        done=False,
        remaining=(AppliedResource("apps", "v1", "deployments", "team", "web", "u1"),),
        version=3,
    )
    deleting = bundle_status.deleting_status(waiting, previous=applied, now=T1)
    assert summary(deleting)["Deleted"] == ("False", "ManifestsDeleting")
    assert summary(deleting)["Progressing"] == ("True", "DeletingManifests")
    assert message(deleting, "Deleted") == "waiting for 1 resources to be deleted: deployments.apps team/web"
    assert summary(deleting)["Applied"] == ("True", "AppliedManifestWorkComplete")

    done = DeleteResult(
        "rid", done=True, deleted=(AppliedResource("", "v1", "configmaps", "team", "a"),), version=3
    )
    deleted = bundle_status.deleted_status(done, previous=deleting, now=T1)
    assert summary(deleted)["Deleted"] == ("True", "ManifestsDeleted")
    assert "Progressing" not in summary(deleted)
    assert message(deleted, "Deleted") == "Deleted 1 resources"
    assert deleted["resourceStatus"] == []
    bare = bundle_status.deleted_status(version=9, now=T0)
    assert bare["conditions"] == [
        {
            "type": "Deleted",
            "status": "True",
            "reason": "ManifestsDeleted",
            "message": "The manifests are deleted from the cluster",
            "lastTransitionTime": "2026-11-03T10:00:00Z",
            "observedGeneration": 9,
        }
    ]


def test_sequence_ids_increase_even_when_the_clock_does_not() -> None:
    ticks = iter([100, 100, 90, 200])
    generator = bundle_status.SequenceGenerator(clock=lambda: next(ticks))
    assert [generator.next("r") for _ in range(4)] == [100, 101, 102, 200]


def test_sequence_ids_increase_across_a_restart() -> None:
    before = bundle_status.SequenceGenerator()
    last = max(before.next("r") for _ in range(1000))
    after = bundle_status.SequenceGenerator()  # the restarted agent: nothing remembered but the clock
    assert after.next("r") > last

    frozen = bundle_status.SequenceGenerator(clock=lambda: 5)
    frozen.observe(last)  # e.g. the server's last accepted id, when the clock cannot be trusted
    assert frozen.next("r") == last + 1


@given(st.lists(st.integers(min_value=0, max_value=10**19), min_size=1, max_size=50))
def test_sequence_ids_strictly_increase_for_any_clock(ticks: list[int]) -> None:
    it = iter(ticks)
    generator = bundle_status.SequenceGenerator(clock=lambda: next(it))
    ids = [generator.next(str(i % 3)) for i in range(len(ticks))]
    assert all(a < b for a, b in itertools.pairwise(ids))


def test_a_secret_status_report_carries_no_value_of_it() -> None:
    secret = ManifestMeta(0, "", "v1", "Secret", "secrets", "team", "db")
    configs = [
        {
            "resourceIdentifier": {"resource": "secrets", "namespace": "team", "name": "db"},
            "feedbackRules": [
                {
                    "type": "JSONPaths",
                    "jsonPaths": [{"name": "all", "path": ".*"}, {"name": "pw", "path": ".data.pw"}],
                }
            ],
        }
    ]
    outcome = ok(secret, type="Opaque", data={"pw": "c2VjcmV0"}, stringData={"pw": "secret"})
    report = bundle_status.build_status(1, [outcome], configs, now=T0)
    text = repr(report)
    assert "c2VjcmV0" not in text and "'secret'" not in text and '"secret"' not in text
    (entry,) = report["resourceStatus"]
    assert [v["name"] for v in entry["statusFeedback"]["values"]] == ["all"]
    synced = entry["conditions"][2]
    assert synced["message"] == "pw: the path reads a Secret's values, which are never reported"
