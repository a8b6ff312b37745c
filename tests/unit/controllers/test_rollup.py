"""The ApplicationSet rollup: Argo CD's conditions and applicationStatus, counts, stable timestamps.

Cases: a healthy fleet; planning errors; a failed generation; rollout conditions; applicationStatus
derived from statuses or taken from the rollout; timestamps carried while nothing changes;
resources capped while resourcesCount counts all; many errors shortened.
"""

from __future__ import annotations

from typing import Any

import pytest

from controllers.status import rollup

T0, T1 = "2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z"


def app(name: str, sync: str = "Synced", health: str = "Healthy", **kw: Any) -> rollup.AppEntry:
    return rollup.AppEntry(name, {"sync": {"status": sync}, "health": {"status": health}}, ("main",), **kw)


FLEET = [app("c1-gb"), app("c2-gb", "OutOfSync", "Progressing"), rollup.AppEntry("c3-gb", None)]


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_healthy_rollup() -> None:
    result = rollup.application_set_status("apps", FLEET, now=T0)
    assert result.counts == rollup.Counts(
        3, {"Synced": 1, "OutOfSync": 1, "Unknown": 1}, {"Healthy": 1, "Progressing": 1, "Unknown": 1}
    )
    summary = (
        "3 applications; sync: OutOfSync 1, Synced 1, Unknown 1; health: Healthy 1, Progressing 1, Unknown 1"
    )
    assert conditions(result.status) == {
        "ErrorOccurred": (
            "False",
            "ApplicationSetUpToDate",
            "All applications have been generated successfully",
        ),
        "ParametersGenerated": (
            "True",
            "ParametersGenerated",
            "Successfully generated parameters for all Applications",
        ),
        "ResourcesUpToDate": ("True", "ApplicationSetUpToDate", summary),
    }
    assert result.status["applicationStatus"] == [
        {
            "application": "c1-gb",
            "targetRevisions": ["main"],
            "status": "Healthy",
            "message": "Application is Synced and Healthy",
            "step": "1",
            "lastTransitionTime": T0,
        },
        {
            "application": "c2-gb",
            "targetRevisions": ["main"],
            "status": "Progressing",
            "message": "Application is OutOfSync and Progressing",
            "step": "1",
            "lastTransitionTime": T0,
        },
        {
            "application": "c3-gb",
            "targetRevisions": [],
            "status": "Pending",
            "message": "waiting for the cluster to report status",
            "step": "1",
            "lastTransitionTime": T0,
        },
    ]
    assert result.status["resources"][1] == {
        "group": "argoproj.io",
        "version": "v1alpha1",
        "kind": "Application",
        "namespace": "apps",
        "name": "c2-gb",
        "status": "OutOfSync",
        "health": {"status": "Progressing"},
    }
    assert result.status["resourcesCount"] == 3


@pytest.mark.parametrize(
    ("kwargs", "want"),
    [
        (
            {"target_errors": ["cluster c9 unknown"]},
            {"ErrorOccurred": "True", "ParametersGenerated": "True", "ResourcesUpToDate": "False"},
        ),
        (
            {"generation_error": "spec.generators[0].git: not supported"},
            {"ErrorOccurred": "True", "ParametersGenerated": "False", "ResourcesUpToDate": "False"},
        ),
        (
            {"rollout_progressing": True, "rollout_step": 2},
            {
                "ErrorOccurred": "False",
                "ParametersGenerated": "True",
                "ResourcesUpToDate": "True",
                "RolloutProgressing": "True",
            },
        ),
        (
            {"rollout_progressing": False},
            {
                "ErrorOccurred": "False",
                "ParametersGenerated": "True",
                "ResourcesUpToDate": "True",
                "RolloutProgressing": "False",
            },
        ),
    ],
    ids=["target errors", "generation failed", "rollout running", "rollout complete"],
)
def test_condition_statuses(kwargs: dict[str, Any], want: dict[str, str]) -> None:
    result = rollup.application_set_status("apps", FLEET, now=T0, **kwargs)
    assert {k: v[0] for k, v in conditions(result.status).items()} == want


def test_error_messages_and_rollout_messages() -> None:
    errors = [f"error {i}" for i in range(7)]
    status = rollup.application_set_status(
        "apps", FLEET, now=T0, target_errors=errors, rollout_progressing=True, rollout_step=2
    ).status
    got = conditions(status)
    assert got["ErrorOccurred"][2] == "error 0; error 1; error 2; error 3; error 4; and 2 more errors"
    assert (
        got["ResourcesUpToDate"][2].startswith("error 0;")
        and "3 applications;" in got["ResourcesUpToDate"][2]
    )
    assert got["RolloutProgressing"][1:] == (
        "ApplicationSetModified",
        "ApplicationSet is performing rollout of step 2",
    )


def test_rollout_statuses_are_used_as_given() -> None:
    given = {
        "application": "c1-gb",
        "targetRevisions": ["4f1c"],
        "status": "Waiting",
        "step": "2",
        "message": "No Application status found, defaulting status to Waiting",
        "lastTransitionTime": "2026-11-20T09:00:00Z",
    }
    apps = [app("c1-gb", rollout=given), app("c2-gb")]  # c2-gb does not exist yet: no entry
    status = rollup.application_set_status(
        "apps", apps, now=T0, rollout_progressing=True, rollout_step=1, rollout_config_issue=""
    ).status
    assert status["applicationStatus"] == [given]
    got = conditions(status)
    assert got["RolloutProgressing"] == (
        "True",
        "ApplicationSetModified",
        "ApplicationSet is performing rollout of step 1",
    )
    assert got["InvalidRolloutConfig"] == (
        "False",
        "ApplicationSetValidRolloutConfig",
        "Rolling Sync Configured correctly",
    )


def test_timestamps_are_kept_while_nothing_changes() -> None:
    first = rollup.application_set_status("apps", FLEET, now=T0).status
    again = rollup.application_set_status("apps", FLEET, now=T1, previous=first).status
    assert again == first
    changed = rollup.application_set_status(
        "apps", [app("c1-gb", "OutOfSync"), *FLEET[1:]], now=T1, previous=first
    ).status
    times = {a["application"]: a["lastTransitionTime"] for a in changed["applicationStatus"]}
    assert times == {"c1-gb": T1, "c2-gb": T0, "c3-gb": T0}
    cond_times = {c["type"]: c["lastTransitionTime"] for c in changed["conditions"]}
    assert cond_times == {"ErrorOccurred": T0, "ParametersGenerated": T0, "ResourcesUpToDate": T1}


def test_the_lists_are_capped_showing_what_needs_attention_first_and_everything_is_counted() -> None:
    apps = [app(f"a{i}") for i in range(5)] + [app("a3-x", "OutOfSync", "Progressing")]
    result = rollup.application_set_status("apps", apps, now=T0, max_listed=3)
    status = result.status
    assert [r["name"] for r in status["resources"]] == ["a0", "a1", "a3-x"]
    assert [a["application"] for a in status["applicationStatus"]] == ["a0", "a1", "a3-x"]
    assert status["resourcesCount"] == 6 and result.counts.total == 6
    message = conditions(status)["ResourcesUpToDate"][2]
    assert message.startswith("6 applications; sync: OutOfSync 1, Synced 5")
    assert "lists 3 of them: those not Synced and Healthy first" in message
