"""Who may do what through the gRPC API: the verbs, and the rules for certificates (pure).

- a cluster certificate (an agent) may read its own consumer record and nothing else, and only
  while the consumer's placement slot is the certificate's incarnation;
- a source certificate ``source/<name>`` may publish, subscribe and read the works of source
  ``<name>``, and nothing else;
- an admin certificate may do everything;
- a service certificate (a platform process that is no client of this API) may do nothing;
- a token user may do what a SubjectAccessReview on the hub allows (`hub_reviews`): verbs
  ``publish``, ``subscribe`` and ``list`` on ``sources`` (name: the source, empty for every source)
  and verb ``admin`` on ``consumers``, API group ``maestro.fleetplane.io``.
"""

from __future__ import annotations

import enum

from maestro.server.callers import Caller
from trust.identity import Identity, Kind

API_GROUP = "maestro.fleetplane.io"
SOURCES = "sources"
CONSUMERS = "consumers"


class Verb(enum.StrEnum):
    """What a caller asks to do; the first three on ``sources/<name>``, ``admin`` on ``consumers``."""

    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    LIST = "list"
    ADMIN = "admin"


_DOING = {
    Verb.PUBLISH: "publish as source {source!r}",
    Verb.SUBSCRIBE: "subscribe to the statuses of source {source!r}",
    Verb.LIST: "read the works of source {source!r}",
}


def certificate_allows(identity: Identity, verb: Verb, source: str) -> bool:
    """Whether a certificate's identity may do ``verb`` on ``source`` ("" = every source; for
    ``ADMIN`` the source does not matter). Clusters' consumer reads are ``cluster_may_read``."""
    if identity.kind is Kind.ADMIN:
        return True
    if identity.kind is Kind.SOURCE:
        return verb is not Verb.ADMIN and bool(source) and source == identity.name
    return False  # clusters read their own consumer alone; services are no clients of this API


def cluster_may_read(identity: Identity, consumer: str, slot: int | None) -> bool:
    """Whether an agent's certificate may read consumer ``consumer``, whose placement slot is now
    ``slot`` (None: not registered): its own, of the incarnation it was issued for."""
    return (
        identity.kind is Kind.CLUSTER
        and identity.name == consumer
        and slot is not None
        and identity.incarnation == str(slot)
    )


def refusal(caller: Caller, verb: Verb, source: str, what: str = "") -> str:
    """What a refused caller is told: who they are, and what would have been allowed."""
    if verb is Verb.ADMIN:
        return (
            f"{caller} may not {what or 'use the admin API'}: use an admin certificate, or a token "
            f"allowed `admin` on {CONSUMERS} (API group {API_GROUP})"
        )
    if not source:
        doing = {Verb.LIST: "read every source's works", Verb.SUBSCRIBE: "subscribe to every source"}
        return (
            f"{caller} may not {doing.get(verb, verb.value)}: name a source it may use, or use an admin "
            f"certificate or a token allowed `{verb}` on all {SOURCES} (API group {API_GROUP})"
        )
    return (
        f"{caller} may not {_DOING[verb].format(source=source)}: use a certificate of source/{source} or "
        f"a token allowed `{verb}` on {SOURCES}/{source} (API group {API_GROUP})"
    )
