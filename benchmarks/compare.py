"""What a benchmark's ``--compare`` reports: each mode's mean rates over its rounds and the ratio
secure / insecure, which is what TLS, authentication, authorization and Kafka's ACLs cost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def security_price(
    secure: list[dict[str, Any]], insecure: list[dict[str, Any]], rates: Sequence[str]
) -> dict[str, Any]:
    """The mean of each of ``rates`` (higher is better) per mode and their ratio. Runs are
    alternated by the caller, so a machine that slows down for a while weighs on both modes
    alike. A rate a run did not reach (a phase timed out or was skipped: ``None``) leaves that
    rate's figures out rather than averaging a partial run in."""
    return price(secure, insecure, rates, ("secure", "insecure"))


def price(
    paying: list[dict[str, Any]],
    baseline: list[dict[str, Any]],
    rates: Sequence[str],
    names: tuple[str, str],
) -> dict[str, Any]:
    """``security_price`` for any two modes: ``names`` are the paying mode's and the baseline's."""
    out: dict[str, Any] = {"rounds": len(paying)}
    for rate in rates:
        measured = [r[rate] for r in paying if r.get(rate) is not None]
        without = [r[rate] for r in baseline if r.get(rate) is not None]
        if len(measured) != len(paying) or len(without) != len(baseline):
            continue
        mean, mean_baseline = sum(measured) / len(paying), sum(without) / len(baseline)
        out[rate] = {
            names[0]: round(mean, 1),
            names[1]: round(mean_baseline, 1),
            "ratio": round(mean / mean_baseline, 3) if mean_baseline else 0.0,
        }
    out[f"{names[0]}_runs"] = paying
    out[f"{names[1]}_runs"] = baseline
    return out
