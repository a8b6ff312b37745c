"""Who is calling the gRPC API, and whether they may do what they ask.

Authentication, on every call:

- a client certificate, verified against the server's CA by the TLS handshake, names a fleetplane
  identity (`client_certificates`); it is refused here when it has expired since the
  connection was made (HTTP/2 connections outlive certificates), or when its serial is revoked;
- else an ``authorization: Bearer <token>`` header is checked with a Kubernetes TokenReview on the
  hub, which answers with a user and groups;
- else the call is refused with UNAUTHENTICATED.

Authorization, per call and, for a publish batch, per event: by the rules of `permissions` for a
certificate, by a SubjectAccessReview on the hub (`hub_reviews`) for a token user.

An aio server interceptor cannot see a streaming request's body, and most decisions depend on the
request (the event's source, the consumer asked for), so each service calls ``Guard`` itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import NoReturn

import grpc

from maestro.api import revocations
from maestro.server.callers import Caller
from maestro.server.client_certificates import ClientCertificate, RevocationList, read_certificate
from maestro.server.hub_reviews import HubReviews, HubUnavailable
from maestro.server.permissions import CONSUMERS, SOURCES, Verb, certificate_allows, refusal
from maestro.server.ttl_cache import TTLCache
from trust.identity import DEFAULT_TRUST_DOMAIN, Kind

_BEARER = "bearer "


class Refusal(Exception):
    """A caller refused: the status it gets (whatever the protocol) and why."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Guard:
    """Authenticates callers and answers whether they may do something; the services ask it.

    With ``insecure`` (a plaintext server) every caller may do everything: the only way to get
    that is the server's ``--insecure``, which says so at start.
    """

    def __init__(
        self,
        *,
        insecure: bool = False,
        trust_domain: str = DEFAULT_TRUST_DOMAIN,
        reviews: HubReviews | None = None,
        revoked: RevocationList | None = None,
    ) -> None:
        self.insecure = insecure
        self._trust_domain = trust_domain
        self._reviews = reviews
        self._revoked = revoked
        self._certificates: TTLCache[bytes, ClientCertificate] = TTLCache(3600.0, 4096)

    # authentication

    async def authenticate(self, context: grpc.aio.ServicerContext) -> Caller:
        """The caller, or the call aborted with UNAUTHENTICATED (UNAVAILABLE when the hub cannot
        review a token now)."""
        if self.insecure:
            return Caller(insecure=True)
        pems = context.auth_context().get("x509_pem_cert") or []
        token = "" if pems else _bearer(context.invocation_metadata() or ())
        try:
            return await self.identify(pems[0] if pems else None, token)
        except Refusal as exc:
            await _abort(context, exc.code, exc.message)

    async def identify(self, pem: bytes | None, token: str) -> Caller:
        """The caller a verified client certificate (PEM) or a bearer token names, whatever the
        protocol they came by; raises ``Refusal`` (UNAUTHENTICATED, or UNAVAILABLE when the hub
        cannot review a token now)."""
        if self.insecure:
            return Caller(insecure=True)
        if pem:
            caller, problem = self._from_certificate(pem)
        elif token:
            caller, problem = await self._from_token(token)
        else:
            raise Refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                "no credentials: present a client certificate issued by the platform's CA, or a "
                "Kubernetes token of the hub as `authorization: Bearer <token>`",
            )
        if problem or caller is None:
            raise Refusal(grpc.StatusCode.UNAUTHENTICATED, problem)
        return caller

    def _from_certificate(self, pem: bytes) -> tuple[Caller | None, str]:
        cert = self._certificates.get(pem)
        if cert is None:
            cert = read_certificate(pem, self._trust_domain)
            self._certificates.put(pem, cert)
        if cert.identity is None:
            return None, cert.problem
        caller = Caller(identity=cert.identity, serial=cert.serial, not_after=cert.not_after)
        return caller, self._certificate_problem(caller)

    def _certificate_problem(self, caller: Caller) -> str:
        now = datetime.datetime.now(datetime.UTC)
        serial = revocations.serial_text(caller.serial or 0)
        if caller.not_after is not None and caller.not_after < now:
            return (
                f"the certificate of {caller} (serial 0x{serial}) expired at "
                f"{caller.not_after:%Y-%m-%d %H:%M:%S} UTC: use its renewed certificate"
            )
        if self._revoked is not None and caller.serial in self._revoked.serials:
            return f"the certificate of {caller} (serial 0x{serial}) is revoked: ask for a new one"
        return ""

    async def _from_token(self, token: str) -> tuple[Caller | None, str]:
        if self._reviews is None:
            return None, (
                "this server takes no tokens (it has no hub to review them): present a client "
                "certificate issued by the platform's CA"
            )
        try:
            user = await self._reviews.user(token)
        except HubUnavailable as exc:
            raise Refusal(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc
        if isinstance(user, str):
            return None, user
        return Caller(user=user, token=token), ""

    # authorization

    async def allows(self, caller: Caller, verb: Verb, source: str = "") -> bool:
        """Whether ``caller`` may do ``verb`` on ``source`` ("" = every source). Raises
        ``HubUnavailable`` when the hub cannot answer for a token user."""
        if caller.insecure:
            return True
        if caller.identity is not None:
            return certificate_allows(caller.identity, verb, source)
        if caller.user is None or self._reviews is None:
            return False
        if verb is Verb.ADMIN:
            return await self._reviews.allows(caller.user, verb, CONSUMERS, "")
        return await self._reviews.allows(caller.user, verb, SOURCES, source)

    async def require(
        self, context: grpc.aio.ServicerContext, caller: Caller, verb: Verb, source: str = "", what: str = ""
    ) -> None:
        """Return if allowed; else abort the call with PERMISSION_DENIED saying what is needed."""
        try:
            await self.check(caller, verb, source, what)
        except Refusal as exc:
            await _abort(context, exc.code, exc.message)

    async def check(self, caller: Caller, verb: Verb, source: str = "", what: str = "") -> None:
        """Return if allowed; else raise ``Refusal`` (PERMISSION_DENIED saying what is needed, or
        UNAVAILABLE when the hub cannot answer now)."""
        try:
            allowed = await self.allows(caller, verb, source)
        except HubUnavailable as exc:
            raise Refusal(grpc.StatusCode.UNAVAILABLE, str(exc)) from exc
        if not allowed:
            raise Refusal(grpc.StatusCode.PERMISSION_DENIED, refusal(caller, verb, source, what))

    async def require_admin(self, context: grpc.aio.ServicerContext, caller: Caller, what: str) -> None:
        await self.require(context, caller, Verb.ADMIN, what=what)

    async def visible_source(self, context: grpc.aio.ServicerContext, caller: Caller, asked: str) -> str:
        """The source filter a read runs with: what was asked, if allowed. A source certificate
        that asks for every source reads its own works (what it may see of "every source")."""
        if caller.identity is not None and caller.identity.kind is Kind.SOURCE and not asked:
            return caller.identity.name
        await self.require(context, caller, Verb.LIST, asked)
        return asked

    async def recheck(
        self, context: grpc.aio.ServicerContext, caller: Caller, verb: Verb, source: str
    ) -> None:
        """Abort a long stream whose caller may no longer go on: a certificate that expired or was
        revoked, a token the hub no longer accepts (UNAUTHENTICATED), a permission taken away
        (PERMISSION_DENIED). While the hub cannot answer, the stream goes on."""
        if caller.insecure:
            return
        if caller.identity is not None:
            problem = self._certificate_problem(caller)
        elif self._reviews is not None and caller.token:
            try:
                user = await self._reviews.user(caller.token)
            except HubUnavailable:
                return
            problem = user if isinstance(user, str) else ""
        else:
            problem = "no credentials"
        if problem:
            await _abort(context, grpc.StatusCode.UNAUTHENTICATED, problem)
        try:
            allowed = await self.allows(caller, verb, source)
        except HubUnavailable:
            return
        if not allowed:
            await _abort(context, grpc.StatusCode.PERMISSION_DENIED, refusal(caller, verb, source))


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable: abort raises")


def _bearer(metadata: Sequence[tuple[str, str | bytes]]) -> str:
    for key, value in metadata:
        if key.lower() != "authorization":
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        if text[: len(_BEARER)].lower() == _BEARER:
            return text[len(_BEARER) :].strip()
    return ""
