"""Bundle status -> hub Application status: Argo CD's shape, Unknown with a reason, cluster errors.

Cases: decoding each feedback value type; the lifecycle journeys (invalid repo -> Unknown with the
worker's ComparisonError; fixed repo -> Synced/Healthy with revision, operation, resources,
summary); no status yet; apply failure; applied but no Argo CD status; deleted; degraded;
undecodable feedback; per-resource conditions; partial operationState; resource list capping;
determinism.
"""

from __future__ import annotations

from typing import Any

import pytest

from controllers.status import aggregate

from .builders import bundle_status, feedback

TIME = "2026-11-20T10:00:00Z"


@pytest.mark.parametrize(
    ("field", "want"),
    [
        ({"type": "String", "string": "Synced"}, "Synced"),
        ({"type": "Integer", "integer": 3}, 3),
        ({"type": "Boolean", "boolean": False}, False),
        ({"type": "JsonRaw", "jsonRaw": '[{"type": "ComparisonError"}]'}, [{"type": "ComparisonError"}]),
    ],
    ids=["String", "Integer", "Boolean", "JsonRaw"],
)
def test_decode_feedback(field: dict[str, Any], want: Any) -> None:
    assert aggregate.decode_feedback([{"name": "v", "fieldValue": field}]) == ({"v": want}, [])


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ({"type": "JsonRaw", "jsonRaw": "{not json"}, "feedback value 'v' is not valid JSON"),
        ({"type": "Float", "float": 1.5}, "feedback value 'v' has unknown type 'Float'"),
    ],
    ids=["bad JSON", "unknown type"],
)
def test_decode_feedback_problems(field: dict[str, Any], problem: str) -> None:
    decoded, problems = aggregate.decode_feedback([{"name": "v", "fieldValue": field}])
    assert decoded == {} and problems[0].startswith(problem)


def test_seed_case_1_invalid_repository_is_unknown_with_the_worker_error() -> None:
    comparison = {
        "type": "ComparisonError",
        "message": "Failed to load target state: repository not found",
        "lastTransitionTime": TIME,
    }
    status = aggregate.application_status(
        bundle_status(feedback(syncStatus="Unknown", healthStatus="Healthy", conditions=[comparison])),
        cluster="c1",
    )
    assert status == {
        "sync": {"status": "Unknown"},
        "health": {"status": "Healthy"},
        "conditions": [comparison],
    }


def test_seed_case_2_synced_and_healthy_with_everything() -> None:
    resources = [
        {
            "version": "v1",
            "kind": "ConfigMap",
            "namespace": "demo",
            "name": "configmap1",
            "status": "Synced",
            "health": {"status": "Healthy"},
            "extra": "dropped",
        }
    ]
    values = feedback(
        syncStatus="Synced",
        syncRevision="0f3e1c",
        healthStatus="Healthy",
        conditions=[],
        operation={"sync": {"revision": "0f3e1c"}, "initiatedBy": {"automated": True}},
        operationPhase="Succeeded",
        operationMessage="successfully synced (all tasks run)",
        operationStartedAt=TIME,
        operationFinishedAt="2026-11-20T10:00:05Z",
        resources=resources,
        summary={"images": ["nginx:1.27"]},
        reconciledAt="2026-11-20T10:01:00Z",
    )
    assert aggregate.application_status(bundle_status(values), cluster="c1") == {
        "sync": {"status": "Synced", "revision": "0f3e1c"},
        "health": {"status": "Healthy"},
        "conditions": [],
        "operationState": {
            "operation": {"sync": {"revision": "0f3e1c"}, "initiatedBy": {"automated": True}},
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": TIME,
            "finishedAt": "2026-11-20T10:00:05Z",
        },
        "resources": [{k: v for k, v in resources[0].items() if k != "extra"}],
        "summary": {"images": ["nginx:1.27"]},
        "reconciledAt": "2026-11-20T10:01:00Z",
    }


UNKNOWNS: list[tuple[str, dict[str, Any] | None, str, str]] = [
    ("no status at all", None, "PropagationWarning", "cluster c1: no status reported yet"),
    (
        "no conditions yet",
        {"conditions": [], "resourceStatus": []},
        "PropagationWarning",
        "no status reported yet",
    ),
    (
        "apply failed",
        bundle_status(applied="False"),
        "PropagationError",
        "cluster c1 could not apply the Application: AppliedManifestWorkFailed: "
        "Failed to apply manifest work",
    ),
    (
        "applied but no Argo CD status",
        bundle_status([]),
        "PropagationWarning",
        "has not reported sync status yet",
    ),
    (
        "degraded",
        bundle_status([], extra_conditions=[{"type": "Degraded", "status": "True", "message": "agent lost"}]),
        "PropagationError",
        "reports the work as degraded: agent lost",
    ),
]


@pytest.mark.parametrize(("raw", "kind", "message"), [c[1:] for c in UNKNOWNS], ids=[c[0] for c in UNKNOWNS])
def test_missing_status_is_unknown_with_a_reason(raw: dict[str, Any] | None, kind: str, message: str) -> None:
    status = aggregate.application_status(raw, cluster="c1")
    assert status["sync"] == {"status": "Unknown"} and status["health"] == {"status": "Unknown"}
    assert any(c["type"] == kind and message in c["message"] for c in status["conditions"]), status[
        "conditions"
    ]


def test_condition_times_come_from_the_report() -> None:
    status = aggregate.application_status(bundle_status(applied="False"), cluster="c1")
    assert status["conditions"][0]["lastTransitionTime"] == TIME


def test_deleted_on_the_cluster_is_missing() -> None:
    raw = bundle_status(
        feedback(syncStatus="Synced"), extra_conditions=[{"type": "Deleted", "status": "True"}]
    )
    status = aggregate.application_status(raw, cluster="c1")
    assert status["health"] == {"status": "Missing"}
    assert status["conditions"][-1]["message"] == "cluster c1: the Application has been deleted there"


def test_resource_conditions_and_bad_feedback_become_conditions() -> None:
    values = [
        *feedback(syncStatus="OutOfSync", healthStatus="Progressing"),
        {"name": "resources", "fieldValue": {"type": "JsonRaw", "jsonRaw": "{"}},
    ]
    raw = bundle_status(
        values,
        resource_conditions=[
            {"type": "Applied", "status": "True"},
            {
                "type": "StatusFeedbackSynced",
                "status": "False",
                "reason": "InvalidStatusFeedback",
                "message": "path not found",
            },
        ],
    )
    status = aggregate.application_status(raw, cluster="c1")
    assert (status["sync"]["status"], status["health"]["status"]) == ("OutOfSync", "Progressing")
    assert [(c["type"], c["message"]) for c in status["conditions"]] == [
        (
            "PropagationWarning",
            "cluster c1: StatusFeedbackSynced is False: InvalidStatusFeedback: path not found",
        ),
        (
            "PropagationWarning",
            "cluster c1: feedback value 'resources' is not valid JSON "
            "(Expecting property name enclosed in double quotes)",
        ),
    ]
    assert "resources" not in status


@pytest.mark.parametrize(
    ("values", "want"),
    [
        (feedback(operationPhase="Running"), None),
        (
            feedback(operationPhase="Running", operationStartedAt=TIME),
            {"operation": {"sync": {}}, "phase": "Running", "startedAt": TIME},
        ),
    ],
    ids=["no startedAt: left out", "no operation: a valid placeholder"],
)
def test_operation_state_is_only_written_when_the_crd_accepts_it(
    values: list[dict[str, Any]], want: Any
) -> None:
    status = aggregate.application_status(
        bundle_status([*feedback(syncStatus="Synced"), *values]), cluster="c1"
    )
    assert status.get("operationState") == want


def test_resources_are_capped() -> None:
    resources = [{"kind": "ConfigMap", "name": f"cm-{i}"} for i in range(3)]
    status = aggregate.application_status(
        bundle_status(feedback(syncStatus="Synced", resources=resources)), cluster="c1", max_resources=2
    )
    assert [r["name"] for r in status["resources"]] == ["cm-0", "cm-1"]
    assert status["conditions"][-1]["message"] == "cluster c1: showing 2 of 3 resources on the hub"


def test_same_report_same_status() -> None:
    raw = bundle_status(
        feedback(
            syncStatus="Synced", healthStatus="Healthy", conditions=[{"type": "SyncError", "message": "x"}]
        )
    )
    assert aggregate.application_status(raw, cluster="c1") == aggregate.application_status(raw, cluster="c1")
