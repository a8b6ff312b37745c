"""A caller's client certificate: the fleetplane identity it names, when it expires, and whether
its serial is revoked (`RevocationList`, every revoked serial kept in memory)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from maestro.server.notifier import Notifier
from maestro.storage import store as store_mod
from trust.identity import Identity, IdentityError, from_certificate

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class ClientCertificate:
    """What a client certificate says: its identity (None, with the ``problem``, if it names none
    usable), its serial and validity."""

    identity: Identity | None
    problem: str
    serial: int
    not_before: datetime.datetime
    not_after: datetime.datetime


def read_certificate(pem: bytes, trust_domain: str) -> ClientCertificate:
    """What ``pem`` says; no identity when it is not for client authentication or names none of
    ``trust_domain``."""
    cert = x509.load_pem_x509_certificate(pem)
    identity: Identity | None = None
    problem = ""
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usage:
            problem = "the certificate is not for client authentication (no clientAuth usage)"
    except x509.ExtensionNotFound:
        pass
    if not problem:
        try:
            identity = from_certificate(cert, trust_domain)
        except IdentityError as exc:
            problem = f"the certificate names no fleetplane identity: {exc}"
    return ClientCertificate(
        identity, problem, cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc
    )


class RevocationList:
    """Every revoked serial, in memory: checked on every call without a database round trip.

    Reloaded when any replica revokes (a NOTIFY) and every ``refresh`` seconds in any case.
    """

    def __init__(self, store: store_mod.Store, notifier: Notifier, refresh: float = 30.0) -> None:
        self._store = store
        self._notifier = notifier
        self._refresh = refresh
        self.serials: frozenset[int] = frozenset()

    async def load(self) -> None:
        self.serials = frozenset(r.serial for r in await self._store.revoked_certificates())

    def add(self, serial: int) -> None:
        self.serials = self.serials | {serial}

    async def run(self) -> None:
        while True:
            await self._notifier.wait(store_mod.REVOCATION_CHANNEL, self._refresh)
            try:
                await self.load()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the last list; the next wake-up tries again
                log.warning("reloading revoked certificates failed: %s", exc)
