"""What a benchmark's `--compare` reports: each mode's mean rates and their ratio.

Cases: the means are over every round of a mode and the ratio is secure / insecure; each run's own
figures stay in the report; a rate some run did not reach (a phase that timed out or was skipped)
is left out rather than averaged over the runs that reached it.
"""

from __future__ import annotations

from benchmarks import compare, pipeline
from benchmarks.fleet import report


def test_the_price_of_security_is_the_ratio_of_the_mean_rates() -> None:
    secure = [
        {"creates_per_s": 500.0, "end_to_end_per_s": 450.0},
        {"creates_per_s": 540.0, "end_to_end_per_s": 470.0},
    ]
    insecure = [
        {"creates_per_s": 560.0, "end_to_end_per_s": 500.0},
        {"creates_per_s": 540.0, "end_to_end_per_s": 500.0},
    ]
    price = compare.security_price(secure, insecure, pipeline.PRICED_RATES)
    assert price["rounds"] == 2
    assert price["creates_per_s"] == {"secure": 520.0, "insecure": 550.0, "ratio": 0.945}
    assert price["end_to_end_per_s"] == {"secure": 460.0, "insecure": 500.0, "ratio": 0.92}
    assert price["secure_runs"] == secure and price["insecure_runs"] == insecure


def test_a_phase_a_run_did_not_finish_is_left_out() -> None:
    secure = [{"create_per_s": 40.0, "update_per_s": None, "delete_per_s": 80.0}]
    insecure = [{"create_per_s": 50.0, "update_per_s": 60.0, "delete_per_s": 80.0}]
    price = compare.security_price(secure, insecure, report.PRICED_RATES)
    assert price["create_per_s"] == {"secure": 40.0, "insecure": 50.0, "ratio": 0.8}
    assert "update_per_s" not in price
    assert price["delete_per_s"]["ratio"] == 1.0


def test_a_fleet_run_rates_each_finished_phase() -> None:
    result = report.FleetResult(
        clusters=3, apps_per_cluster=2, total=6, create_seconds=1.5, delete_seconds=3.0
    )
    result.finish_rates()
    assert (result.create_per_s, result.update_per_s, result.delete_per_s) == (4.0, None, 2.0)
