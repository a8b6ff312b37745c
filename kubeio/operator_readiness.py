"""What the ``/readyz`` of a kopf operator (the hub controllers, the provisioner) asks beyond its
own background loops (``kubeio.probes``):

- **kopf**: its startup handlers finished (the provisioner's install its CRDs), it has listed the
  API server's resources, and it watches every kind the operator must serve (a kind whose CRD the
  cluster does not serve is named: kopf would wait for it silently);
- **the API server**: it answered one of the operator's requests within ``fresh`` seconds, or it
  answers its ``/readyz`` now (one request, not retried). A busy operator is never probed beyond
  its own traffic, and an API server that is slow for a moment does not flap the probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

# kopf.operator takes an ``insights`` argument but exports its type only from here.
from kopf._cogs.structs.references import Insights

from kubeio import probes
from kubeio.rest import KubeRest

#: how long an answer of the API server to any request of the operator counts as recent
FRESH_SECONDS = 30.0
#: a ping of the API server gives up before the probe's own timeout, to say so in words
PING_TIMEOUT = probes.CHECK_TIMEOUT * 0.75


@dataclass(frozen=True)
class Kind:
    """A resource an operator watches: its API group ("" for the core group) and plural."""

    group: str
    plural: str

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


class KopfState:
    """What kopf tells of itself: ``started`` (kopf's ready flag: set once its startup handlers
    finished) and ``insights`` (the resources it watches)."""

    def __init__(self, insights: Insights | None = None) -> None:
        self.insights = insights if insights is not None else Insights()
        self.started = asyncio.Event()

    def watches(self, kind: Kind) -> bool:
        return any(r.group == kind.group and r.plural == kind.plural for r in self.insights.watched_resources)

    def check(self, kinds: Sequence[Kind]) -> probes.Check:
        """Whether kopf has started and watches every one of ``kinds``."""

        async def kopf() -> str | None:
            if not self.started.is_set():
                return "starting: kopf's startup handlers have not finished"
            if not self.insights.ready_resources.is_set():
                return "starting: kopf has not listed the API server's resources yet"
            missing = [str(kind) for kind in kinds if not self.watches(kind)]
            if missing:
                return (
                    f"kopf does not watch {', '.join(missing)}: the API server does not serve "
                    f"{'that kind' if len(missing) == 1 else 'those kinds'} (is the CRD installed? "
                    "kubectl api-resources)"
                )
            return None

        return kopf


def api_server_check(
    rest: KubeRest,
    what: str,
    *,
    fresh: float = FRESH_SECONDS,
    timeout: float = PING_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
) -> probes.Check:
    """Whether the API server behind ``rest`` (called ``what`` in a reason) answered recently."""

    async def answering() -> str | None:
        if rest.answered_at is not None and clock() - rest.answered_at <= fresh:
            return None
        try:
            async with asyncio.timeout(timeout):
                why = await rest.readyz()
        except TimeoutError:
            return f"{what} at {rest.server} did not answer within {timeout:.1f}s"
        except (aiohttp.ClientError, OSError) as exc:
            return f"{what} at {rest.server} does not answer: {exc}"
        return f"{what} at {rest.server} is not ready: {why}" if why else None

    return answering
