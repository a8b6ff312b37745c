"""Loopback TCP relays in front of a real server, to play a network partition. They carry bytes
and nothing else, so TLS passes through them end to end.

- ``FreezableRelay.freeze()`` keeps every connection open and accepts new ones, but carries no
  byte either way, so a client's requests hang rather than fail (the case a timeout has to catch).
- ``SeverableRelay.cut()`` stops listening and drops every connection it carries; ``restore()``
  listens again on the same port, so a client that kept the address reaches the server again.
"""

from __future__ import annotations

import asyncio
import contextlib


class _Relay:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        #: connections carried so far
        self.connections = 0

    @property
    def open_connections(self) -> int:
        """Connections carried right now (each is two pumps, one each way)."""
        return len(self._pumps) // 2

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)

    async def _drop_all(self) -> None:
        """Stop listening and abort every connection carried (each side sees it reset)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        self._writers.clear()

    async def close(self) -> None:
        await self._drop_all()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                await self._flowing.wait()
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(sink)
            with contextlib.suppress(ConnectionError, OSError):
                sink.close()


class FreezableRelay(_Relay):
    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> FreezableRelay:
        await self._listen(0)
        return self

    def freeze(self) -> None:
        self._flowing.clear()


class SeverableRelay(_Relay):
    """A relay on a port chosen beforehand (a broker advertises it: ``localinfra.kafka_config.Relayed``)."""

    def __init__(self, port: int, upstream_host: str, upstream_port: int) -> None:
        super().__init__(upstream_host, upstream_port)
        self.port = port

    @property
    def cut_off(self) -> bool:
        return self._server is None

    async def start(self) -> SeverableRelay:
        await self._listen(self.port)
        return self

    async def cut(self) -> None:
        await self._drop_all()

    async def restore(self) -> None:
        await self._listen(self.port)
