"""Who may do what on the Maestro gRPC API, decided without a server.

Cases: each kind of certificate identity against each verb on its own source, another source and
every source (table-driven); an agent reads its own consumer only while the consumer is still the
registration its certificate names; a refusal says who asked and what would be allowed; a caller
is authenticated from its certificate (expired, revoked, of another trust domain, not for clients:
refused) or its token (reviewed by the hub, answers cached, concurrent askers sharing one review);
token users are authorized by the hub's SubjectAccessReview with the documented attributes; a
source certificate asking for every source reads its own; and every RPC of every service refuses
a caller with no credentials before it touches anything.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import pytest

from maestro.server.auth import Guard
from maestro.server.callers import Caller, User, stream_owner
from maestro.server.hub_reviews import HubReviews
from maestro.server.permissions import Verb, certificate_allows, cluster_may_read, refusal
from maestro.server.query_api import QueryService
from maestro.server.settings import ServerSettings
from maestro.server.source_api import BatchSourceService, SourceService
from maestro.wire import stubs
from trust import authority
from trust.identity import Identity

CLUSTER_A = Identity.cluster("a", 3)
SOURCE_A = Identity.source("a")
ADMIN = Identity.admin("ops")
SERVICE = Identity.service("maestro-server")

# (identity, verb, source, allowed): every kind x every verb x its own source, another, every source
TABLE = [
    *[(ADMIN, verb, source, True) for verb in Verb for source in ("a", "b", "")],
    *[(SOURCE_A, verb, "a", True) for verb in (Verb.PUBLISH, Verb.SUBSCRIBE, Verb.LIST)],
    *[
        (SOURCE_A, verb, source, False)
        for verb in (Verb.PUBLISH, Verb.SUBSCRIBE, Verb.LIST)
        for source in ("b", "")
    ],
    (SOURCE_A, Verb.ADMIN, "", False),
    (SOURCE_A, Verb.ADMIN, "a", False),
    *[(CLUSTER_A, verb, source, False) for verb in Verb for source in ("a", "b", "")],
    *[(SERVICE, verb, source, False) for verb in Verb for source in ("a", "b", "")],
]


@pytest.mark.parametrize(
    ("who", "verb", "source", "allowed"), TABLE, ids=lambda v: str(v) if v != "" else "all"
)
def test_what_each_certificate_may_do(who: Identity, verb: Verb, source: str, allowed: bool) -> None:
    assert certificate_allows(who, verb, source) is allowed


@pytest.mark.parametrize(
    ("who", "consumer", "slot", "allowed"),
    [
        (CLUSTER_A, "a", 3, True),
        (CLUSTER_A, "a", 7, False),  # the cluster was registered again: an old certificate is dead
        (CLUSTER_A, "a", None, False),
        (CLUSTER_A, "b", 3, False),
        (SOURCE_A, "a", 3, False),
        (ADMIN, "a", 3, False),  # admins read consumers as admins, not as agents
    ],
)
def test_an_agent_reads_its_own_consumer_of_its_own_registration(
    who: Identity, consumer: str, slot: int | None, allowed: bool
) -> None:
    assert cluster_may_read(who, consumer, slot) is allowed


def test_a_refusal_names_who_asked_and_what_would_be_allowed() -> None:
    caller = Caller(identity=SOURCE_A)
    message = refusal(caller, Verb.PUBLISH, "y")
    assert message.startswith("source/a may not publish as source 'y'")
    assert "certificate of source/y" in message and "`publish` on sources/y" in message
    assert "maestro.fleetplane.io" in message
    user = Caller(user=User("system:serviceaccount:t:x"))
    assert "`admin` on consumers" in refusal(user, Verb.ADMIN, "", "delete consumers")
    assert "every source" in refusal(user, Verb.LIST, "")


# --- authentication -------------------------------------------------------------------------------


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class FakeContext:
    """What the services read of a call: the peer's certificate, the metadata; abort raises."""

    def __init__(self, cert_pem: bytes | None = None, token: str = "") -> None:
        self._auth = {"transport_security_type": [b"ssl"]}
        if cert_pem is not None:
            self._auth["x509_pem_cert"] = [cert_pem]
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return self._auth

    def invocation_metadata(self) -> Sequence[tuple[str, str]]:
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise Aborted(code, details)

    async def send_initial_metadata(self, metadata: object) -> None:
        pass


@pytest.fixture(scope="module")
def ca() -> authority.CertificateAuthority:
    return authority.CertificateAuthority.create()


class Revoked:
    def __init__(self, *serials: int) -> None:
        self.serials = frozenset(serials)


async def _refused(guard: Guard, context: FakeContext) -> Aborted:
    with pytest.raises(Aborted) as refused:
        await guard.authenticate(context)  # type: ignore[arg-type]
    return refused.value


async def test_a_certificate_names_its_caller(ca: authority.CertificateAuthority) -> None:
    issued = ca.issue(SOURCE_A)
    caller = await Guard().authenticate(FakeContext(issued.cert_pem))  # type: ignore[arg-type]
    assert caller.identity == SOURCE_A and caller.serial == issued.serial


async def test_no_credentials_is_unauthenticated() -> None:
    refused = await _refused(Guard(), FakeContext())
    assert refused.code is grpc.StatusCode.UNAUTHENTICATED and "client certificate" in refused.details


async def test_a_certificate_that_expired_since_its_connection_opened_is_refused(
    ca: authority.CertificateAuthority,
) -> None:
    issued = ca.issue(SOURCE_A, lifetime=datetime.timedelta(seconds=-1))
    refused = await _refused(Guard(), FakeContext(issued.cert_pem))
    assert refused.code is grpc.StatusCode.UNAUTHENTICATED and "expired" in refused.details


async def test_a_revoked_certificate_is_refused(ca: authority.CertificateAuthority) -> None:
    issued = ca.issue(ADMIN)
    guard = Guard(revoked=Revoked(issued.serial))  # type: ignore[arg-type]
    refused = await _refused(guard, FakeContext(issued.cert_pem))
    assert refused.code is grpc.StatusCode.UNAUTHENTICATED and "revoked" in refused.details
    assert f"{issued.serial:x}" in refused.details


async def test_a_certificate_of_another_trust_domain_or_not_for_clients_is_refused() -> None:
    other = authority.CertificateAuthority.create("elsewhere.example")
    refused = await _refused(Guard(), FakeContext(other.issue(ADMIN).cert_pem))
    assert refused.code is grpc.StatusCode.UNAUTHENTICATED and "SPIFFE" in refused.details
    ours = authority.CertificateAuthority.create()
    serving_only = ours.issue(SERVICE, hosts=("x",), server=True, client=False)
    refused = await _refused(Guard(), FakeContext(serving_only.cert_pem))
    assert "client authentication" in refused.details


async def test_an_insecure_server_lets_anyone_do_anything() -> None:
    guard = Guard(insecure=True)
    caller = await guard.authenticate(FakeContext())  # type: ignore[arg-type]
    assert all([await guard.allows(caller, verb, "x") for verb in Verb])


# --- tokens ---------------------------------------------------------------------------------------


class FakeHub(HubReviews):
    """The hub's answers: ``tokens`` to users, ``grants`` the (user, verb, resource, name) allowed."""

    def __init__(self, tokens: dict[str, str], grants: set[tuple[str, str, str, str]]) -> None:
        super().__init__(rest=None)  # type: ignore[arg-type]
        self.tokens = tokens
        self.grants = grants
        self.requests: list[dict[str, Any]] = []

    async def _create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(body)
        await asyncio.sleep(0.01)
        spec = body["spec"]
        if body["kind"] == "TokenReview":
            user = self.tokens.get(spec["token"])
            if user is None:
                return {"status": {"authenticated": False, "error": "invalid bearer token"}}
            return {"status": {"authenticated": True, "user": {"username": user, "groups": ["g"]}}}
        attrs = spec["resourceAttributes"]
        assert attrs["group"] == "maestro.fleetplane.io" and spec["groups"] == ["g"]
        key = (spec["user"], attrs["verb"], attrs["resource"], attrs["name"])
        return {"status": {"allowed": key in self.grants}}


async def test_a_token_is_reviewed_by_the_hub_once_for_many_calls() -> None:
    hub = FakeHub({"t1": "alice"}, set())
    guard = Guard(reviews=hub)
    callers = await asyncio.gather(*(guard.authenticate(FakeContext(token="t1")) for _ in range(20)))  # type: ignore[arg-type]
    assert {c.user.name for c in callers if c.user} == {"alice"}
    assert len(hub.requests) == 1, "concurrent askers share one review, later ones the cached answer"
    refused = await _refused(guard, FakeContext(token="nope"))
    assert refused.code is grpc.StatusCode.UNAUTHENTICATED and "invalid bearer token" in refused.details


async def test_a_token_on_a_server_without_a_hub_is_refused_saying_so() -> None:
    refused = await _refused(Guard(), FakeContext(token="t1"))
    assert refused.code is grpc.StatusCode.UNAUTHENTICATED and "takes no tokens" in refused.details


@pytest.mark.parametrize(
    ("verb", "source", "review"),
    [
        (Verb.PUBLISH, "team-a", ("publish", "sources", "team-a")),
        (Verb.SUBSCRIBE, "team-a", ("subscribe", "sources", "team-a")),
        (Verb.LIST, "team-a", ("list", "sources", "team-a")),
        (Verb.LIST, "", ("list", "sources", "")),
        (Verb.ADMIN, "", ("admin", "consumers", "")),
    ],
)
async def test_a_token_user_may_do_what_the_hubs_rbac_allows(
    verb: Verb, source: str, review: tuple[str, str, str]
) -> None:
    caller = Caller(user=User("alice", groups=("g",)))
    assert not await Guard(reviews=FakeHub({}, set())).allows(caller, verb, source)
    hub = FakeHub({}, {("alice", *review)})
    guard = Guard(reviews=hub)
    assert await guard.allows(caller, verb, source)
    assert await guard.allows(caller, verb, source)
    assert len(hub.requests) == 1, "the decision is cached"
    if verb is not Verb.ADMIN:
        assert not await guard.allows(caller, verb, "team-b")


async def test_a_source_certificate_asking_for_every_source_reads_its_own() -> None:
    guard = Guard()
    context = FakeContext()
    assert await guard.visible_source(context, Caller(identity=SOURCE_A), "") == "a"  # type: ignore[arg-type]
    assert await guard.visible_source(context, Caller(identity=ADMIN), "") == ""  # type: ignore[arg-type]
    with pytest.raises(Aborted) as refused:
        await guard.visible_source(context, Caller(identity=SOURCE_A), "b")  # type: ignore[arg-type]
    assert refused.value.code is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(Aborted):
        await guard.visible_source(context, Caller(identity=CLUSTER_A), "")  # type: ignore[arg-type]


# --- every RPC ------------------------------------------------------------------------------------


def _rpcs() -> list[tuple[object, str, Any]]:
    services: list[tuple[object, Any]] = [
        (stubs.cloudevent.DESCRIPTOR.services_by_name["CloudEventService"], None),
        (stubs.source.DESCRIPTOR.services_by_name["MaestroSource"], None),
        (stubs.query.DESCRIPTOR.services_by_name["MaestroQuery"], None),
    ]
    out = []
    for service, _ in services:
        for method in service.methods:  # type: ignore[attr-defined]
            out.append((service.name, method.name, method.input_type._concrete_class))  # type: ignore[attr-defined]
    return out


@pytest.mark.parametrize(
    ("service", "method", "request_type"), _rpcs(), ids=lambda v: v if isinstance(v, str) else ""
)
async def test_every_rpc_refuses_a_caller_without_credentials(
    service: str, method: str, request_type: Any
) -> None:
    guard = Guard()
    # Nothing behind the services: a call that reached storage would fail otherwise than refused.
    settings = ServerSettings(dsn="", kafka="", insecure=True)  # the guard decides, not this
    source = SourceService(None, None, settings, None, guard)  # type: ignore[arg-type]
    servicers = {
        "CloudEventService": source,
        "MaestroSource": BatchSourceService(source),
        "MaestroQuery": QueryService(None, None, settings, guard, None),  # type: ignore[arg-type]
    }
    handler = getattr(servicers[service], method)
    call = handler(request_type(), FakeContext())
    with pytest.raises(Aborted) as refused:
        if inspect.isasyncgen(call):
            await anext(call)
        else:
            await call
    assert refused.value.code is grpc.StatusCode.UNAUTHENTICATED


async def test_a_long_stream_is_ended_when_its_caller_may_no_longer_go_on(
    ca: authority.CertificateAuthority,
) -> None:
    issued = ca.issue(SOURCE_A)
    guard = Guard()
    caller = await guard.authenticate(FakeContext(issued.cert_pem))  # type: ignore[arg-type]
    await guard.recheck(FakeContext(), caller, Verb.SUBSCRIBE, "a")  # type: ignore[arg-type]
    revoked = Guard(revoked=Revoked(issued.serial))  # type: ignore[arg-type]
    with pytest.raises(Aborted) as ended:
        await revoked.recheck(FakeContext(), caller, Verb.SUBSCRIBE, "a")  # type: ignore[arg-type]
    assert ended.value.code is grpc.StatusCode.UNAUTHENTICATED
    user = Caller(user=User("alice", groups=("g",)), token="t1")
    hub = FakeHub({"t1": "alice"}, set())
    with pytest.raises(Aborted) as ended:
        await Guard(reviews=hub).recheck(FakeContext(), user, Verb.LIST, "a")  # type: ignore[arg-type]
    assert ended.value.code is grpc.StatusCode.PERMISSION_DENIED, "a permission taken away"


def test_open_streams_count_against_the_caller_as_authenticated() -> None:
    from maestro.api import errors
    from maestro.server import streams

    limits = streams.StreamLimits(10, 1)
    user = Caller(user=User("system:serviceaccount:t:x"))
    assert stream_owner(user) == "user 'system:serviceaccount:t:x'"
    assert stream_owner(Caller(insecure=True)) is None
    release = limits.acquire(FakeContext(), "WatchStatus", stream_owner(user))  # type: ignore[arg-type]
    with pytest.raises(errors.Exhausted, match="system:serviceaccount:t:x"):
        limits.acquire(FakeContext(), "WatchStatus", stream_owner(user))  # type: ignore[arg-type]
    limits.acquire(FakeContext(), "WatchStatus", stream_owner(Caller(identity=SOURCE_A)))  # type: ignore[arg-type]
    release()
    limits.acquire(FakeContext(), "WatchStatus", stream_owner(user))  # type: ignore[arg-type]
