"""`bench provision --compare-tuning`'s report: both runs and the ratio of their memory per cluster."""

from __future__ import annotations

from benchmarks.provision import ComparedTuning, ProvisionResult


def test_the_report_holds_both_runs_and_prices_the_tuning() -> None:
    untuned = ProvisionResult(4, "untuned", pss_mb_per_cluster=1000.0)
    tuned = ProvisionResult(20, "tuned", pss_mb_per_cluster=600.0)
    report = ComparedTuning(untuned, tuned).as_dict()
    assert report["untuned"]["clusters"] == 4 and report["untuned"]["tuning"] == "untuned"
    assert report["tuned"]["clusters"] == 20 and report["tuned"]["tuning"] == "tuned"
    assert report["tuned_vs_untuned_pss_per_cluster"] == 0.6


def test_no_ratio_when_a_run_measured_no_memory() -> None:
    failed = ProvisionResult(20, "tuned", notes=["3/20 Ready after 1500s"])
    report = ComparedTuning(ProvisionResult(4, "untuned", pss_mb_per_cluster=1000.0), failed).as_dict()
    assert report["tuned_vs_untuned_pss_per_cluster"] is None
