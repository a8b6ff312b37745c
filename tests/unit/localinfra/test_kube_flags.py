"""The API server's feature gates are one sorted flag, and no flag when none are set."""

from __future__ import annotations

from localinfra import kube


def test_feature_gates_become_one_sorted_flag() -> None:
    assert kube.feature_gates_flag({"ZetaGate": True, "DetectCacheInconsistency": False}) == [
        "--feature-gates",
        "DetectCacheInconsistency=false,ZetaGate=true",
    ]
    assert kube.feature_gates_flag({}) == []
