"""A test's HTTPS client of the REST API, as some identity (its certificate) or none."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp


@dataclasses.dataclass
class Answer:
    status: int
    body: Any


@dataclasses.dataclass
class Rest:
    session: aiohttp.ClientSession
    base: str

    async def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        async with self.session.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            return Answer(response.status, await response.json(content_type=None) if text else None)


def tls_context(folder: Path, *, with_certificate: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=folder / "ca.crt")
    if with_certificate:
        context.load_cert_chain(folder / "tls.crt", folder / "tls.key")
    return context


@asynccontextmanager
async def rest_client(port: int, folder: Path, *, with_certificate: bool = True) -> AsyncIterator[Rest]:
    connector = aiohttp.TCPConnector(ssl=tls_context(folder, with_certificate=with_certificate))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Rest(session, f"https://127.0.0.1:{port}")
