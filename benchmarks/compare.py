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
    out: dict[str, Any] = {"rounds": len(secure)}
    for rate in rates:
        with_security = [r[rate] for r in secure if r.get(rate) is not None]
        without = [r[rate] for r in insecure if r.get(rate) is not None]
        if len(with_security) != len(secure) or len(without) != len(insecure):
            continue
        mean_secure, mean_insecure = sum(with_security) / len(secure), sum(without) / len(insecure)
        out[rate] = {
            "secure": round(mean_secure, 1),
            "insecure": round(mean_insecure, 1),
            "ratio": round(mean_secure / mean_insecure, 3) if mean_insecure else 0.0,
        }
    out["secure_runs"] = secure
    out["insecure_runs"] = insecure
    return out
