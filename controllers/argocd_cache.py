"""Writes each hub mirror's resource tree into the hub Argo CD's Redis, where argocd-server reads it
(``controllers.status.tree`` says what and where).

The status controller offers a mirror's tree with each status it computes; offers are coalesced
per mirror, a tree equal to the one last written is skipped (a digest of it is kept, not the tree),
and the rest go out in pipelined batches, each with the notice argocd-server's streams listen for.
A deleted mirror's tree is deleted. Redis is reached over TLS with the controllers' own
certificate and the password read from a file at each connection (a restarted Redis has a new one).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio
from redis.credentials import CredentialProvider

from controllers.status import tree
from trust import files

log = logging.getLogger(__name__)
#: trees sent in one pipelined round trip
BATCH = 200
RETRY_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class TreeCacheSettings:
    #: ``host:port`` of the hub Argo CD's Redis (TLS)
    address: str
    #: a file holding its password (as Argo CD's components read it from a mounted Secret)
    password_file: Path
    #: the CA that issued Redis's certificate, and the controllers' own pair
    tls: files.TLSFiles
    #: the namespace argocd-server runs in (it names Applications elsewhere ``<namespace>_<name>``)
    argocd_namespace: str = "argocd"


class _PasswordFile(CredentialProvider):
    def __init__(self, path: Path) -> None:
        self.path = path

    def get_credentials(self) -> tuple[str]:
        return (self.path.read_text().strip(),)


def connect(settings: TreeCacheSettings) -> redis.asyncio.Redis:
    host, _, port = settings.address.rpartition(":")
    tls = settings.tls
    return redis.asyncio.Redis(
        host=host,
        port=int(port),
        credential_provider=_PasswordFile(settings.password_file),
        ssl=True,
        ssl_ca_certs=str(tls.ca),
        ssl_certfile=str(tls.cert) if tls.cert else None,
        ssl_keyfile=str(tls.key) if tls.key else None,
        socket_timeout=10,
        socket_connect_timeout=5,
    )


class TreeWriter:
    def __init__(self, client: redis.asyncio.Redis, argocd_namespace: str) -> None:
        self.client = client
        self.argocd_namespace = argocd_namespace
        #: instance -> the encoded tree to write (None: delete it), oldest offer first
        self._pending: dict[str, bytes | None] = {}
        #: instance -> digest of the tree Redis holds
        self._written: dict[str, bytes] = {}
        self._offered = asyncio.Event()
        self.writes = 0

    def offer(self, namespace: str, name: str, cluster: str, resources: Sequence[Mapping[str, Any]]) -> None:
        instance = tree.instance_name(namespace, name, self.argocd_namespace)
        data = tree.encode(tree.application_tree(resources, cluster))
        if self._written.get(instance) == _digest(data):
            self._pending.pop(instance, None)
            return
        self._pending[instance] = data
        self._offered.set()

    def forget(self, namespace: str, name: str) -> None:
        instance = tree.instance_name(namespace, name, self.argocd_namespace)
        self._written.pop(instance, None)
        self._pending[instance] = None
        self._offered.set()

    def __len__(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        """Write what is offered, until cancelled; a failed batch is retried (unless newer offers
        replaced it meanwhile)."""
        try:
            while True:
                await self._offered.wait()
                self._offered.clear()
                while self._pending:
                    batch = dict(list(self._pending.items())[:BATCH])
                    for instance in batch:
                        del self._pending[instance]
                    try:
                        await self._send(batch)
                    except (redis.RedisError, OSError) as exc:
                        log.warning(
                            "writing %d resource trees to Argo CD's Redis failed: %s", len(batch), exc
                        )
                        self._pending = {**batch, **self._pending}
                        await asyncio.sleep(RETRY_SECONDS)
        finally:
            await self.client.aclose()

    async def _send(self, batch: Mapping[str, bytes | None]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for instance, data in batch.items():
                if data is None:
                    pipe.delete(tree.tree_key(instance))
                else:
                    pipe.set(tree.tree_key(instance), data)
                pipe.publish(tree.updates_channel(instance), "")
            await pipe.execute()
        for instance, data in batch.items():
            if data is not None:
                self._written[instance] = _digest(data)
        self.writes += len(batch)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()
