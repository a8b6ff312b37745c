"""``fleetplane diff`` never prints a Secret's values: keys stay, values are masked the way
``kubectl diff`` masks them, and a changed value is marked as changed on both sides.

Cases: a changed, an unchanged, an added and a removed key (``data`` and ``stringData``); the
last-applied annotation (it holds the values in clear); a Secret that does not exist yet; other
kinds untouched; the inputs themselves untouched.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from fleetplane import inspect_cli

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def secret(data: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "team-a", **extra},
        "type": "Opaque",
        "data": data,
    }


def test_keys_stay_values_are_masked_and_changes_are_marked() -> None:
    before = secret({"user": "YWRtaW4=", "password": "b2xk", "gone": "eA=="})
    after = secret({"user": "YWRtaW4=", "password": "bmV3", "added": "eQ=="})
    old, new = inspect_cli.mask_secret_values(before, after)
    assert old is not None and new is not None
    assert old["data"] == {"user": "***", "password": "*** (before)", "gone": "***"}
    assert new["data"] == {"user": "***", "password": "*** (after)", "added": "***"}
    text = "".join(
        difflib.unified_diff(
            inspect_cli._text(old).splitlines(keepends=True), inspect_cli._text(new).splitlines(keepends=True)
        )
    )
    for value in ("YWRtaW4=", "b2xk", "bmV3", "eA==", "eQ=="):
        assert value not in text
    assert "-  password: '*** (before)'" in text and "+  password: '*** (after)'" in text
    assert "+  added: '***'" in text and "-  gone: '***'" in text
    assert before["data"]["password"] == "b2xk"  # the caller's objects are not changed


def test_string_data_and_the_last_applied_annotation_are_masked() -> None:
    applied = {"apiVersion": "v1", "kind": "Secret", "stringData": {"token": "plain"}}
    before = secret({}, annotations={LAST_APPLIED: str(applied), "team": "a"})
    after = {**secret({"token": "cGxhaW4="}), "stringData": {"token": "plain"}}
    old, new = inspect_cli.mask_secret_values(before, after)
    assert old is not None and new is not None
    assert old["metadata"]["annotations"] == {LAST_APPLIED: "***", "team": "a"}
    assert new["stringData"] == {"token": "***"} and new["data"] == {"token": "***"}
    assert "plain" not in inspect_cli._text(old) + inspect_cli._text(new)


def test_a_new_secret_is_masked_too() -> None:
    old, new = inspect_cli.mask_secret_values(None, secret({"password": "c2VjcmV0"}))
    assert old is None and new is not None and new["data"] == {"password": "***"}


def test_other_kinds_are_shown_as_they_are() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    changed = copy.deepcopy(config)
    changed["data"]["k"] = "w"
    assert inspect_cli.mask_secret_values(config, changed) == (config, changed)
