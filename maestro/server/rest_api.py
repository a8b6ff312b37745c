"""Upstream Maestro's REST API on its own port: consumers and resource bundles, in upstream's JSON
shapes (`maestro.api.rest_models`), for upstream's clients unchanged.

Authenticated and authorized as the gRPC API is (`auth.Guard`, the same rules): the port serves
TLS and asks for a client certificate of the platform's CA; a caller without one may bring a hub
token as ``Authorization: Bearer <token>`` when the server reviews tokens. Consumers are the
admin's; a caller lists the bundles of the source its search requires (``source = '...'``) if it
may read that source, or of every source if it may read them all (a source certificate, its own);
it gets the bundles of sources it may read and deletes those of sources it may publish as.

A list page of bundles is read from the database a byte budget at a time and written out as it
comes, so no page is held whole whatever its size and the bundles' sizes.
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable

import grpc
import orjson
from aiohttp import web

from maestro.api import bundles, errors, rest_models, search
from maestro.api.rest_models import Codes
from maestro.server.auth import Guard, Refusal
from maestro.server.callers import Caller
from maestro.server.consumer_admin import ConsumerAdmin
from maestro.server.permissions import Verb
from maestro.storage import pool
from maestro.storage import store as store_mod
from trust import files
from trust.identity import Kind

log = logging.getLogger(__name__)

_CALLER = web.RequestKey("caller", Caller)
_REFUSALS = {
    grpc.StatusCode.UNAUTHENTICATED: Codes.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: Codes.FORBIDDEN,
    grpc.StatusCode.UNAVAILABLE: Codes.UNAVAILABLE,
}
_BEARER = "bearer "
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _operation_id(request: web.Request) -> str:
    return request.headers.get("X-Operation-ID") or str(uuid.uuid4())


def _answer(status: int, document: object) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(document), content_type="application/json")


def _error(request: web.Request, code: Codes, reason: str) -> web.Response:
    return _answer(code.value.http_status, rest_models.error(code, reason, _operation_id(request)))


def _peer_certificate(request: web.Request) -> bytes | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return ssl.DER_cert_to_PEM_cert(der).encode() if der else None


def _bearer(request: web.Request) -> str:
    value = request.headers.get("Authorization", "")
    return value[len(_BEARER) :].strip() if value[: len(_BEARER)].lower() == _BEARER else ""


class RestApi:
    def __init__(
        self, store: store_mod.Store, guard: Guard, admin: ConsumerAdmin, *, page_bytes: int
    ) -> None:
        self._store = store
        self._guard = guard
        self._admin = admin
        self._page_bytes = page_bytes

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=64 * 1024)
        consumers, bundles_path = rest_models.CONSUMERS_PATH, rest_models.BUNDLES_PATH
        app.router.add_get(consumers, self.list_consumers)
        app.router.add_post(consumers, self.create_consumer)
        app.router.add_get(consumers + "/{id}", self.get_consumer)
        app.router.add_patch(consumers + "/{id}", self.patch_consumer)
        app.router.add_delete(consumers + "/{id}", self.delete_consumer)
        app.router.add_get(bundles_path, self.list_bundles)
        app.router.add_get(bundles_path + "/{id}", self.get_bundle)
        app.router.add_delete(bundles_path + "/{id}", self.delete_bundle)
        app.on_cleanup.append(self._release)
        return app

    async def _release(self, _app: web.Application) -> None:
        # aiohttp caches built middleware chains process-wide (handler and application), so a
        # stopped server's handlers stay referenced: they must not keep its pool and Kafka clients.
        del self._store, self._guard, self._admin

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every refusal in upstream's error format, naming the problem."""
        try:
            pem = _peer_certificate(request)
            request[_CALLER] = await self._guard.identify(pem, "" if pem else _bearer(request))
            return await handler(request)
        except Refusal as exc:
            return _error(request, _REFUSALS.get(exc.code, Codes.FORBIDDEN), exc.message)
        except errors.MaestroError as exc:
            return _error(request, rest_models.code_for(exc), str(exc))
        except web.HTTPMethodNotAllowed as exc:
            return _error(request, Codes.NOT_IMPLEMENTED, f"{exc.method} is not served at {request.path}")
        except web.HTTPNotFound:
            return _error(request, Codes.NOT_FOUND, f"{request.path} is not a path of this API")
        except web.HTTPRequestEntityTooLarge:
            return _error(request, Codes.MALFORMED_REQUEST, "the request body is larger than 64 KiB")
        except Exception as exc:
            away = pool.unavailable(exc)
            if away is None:
                raise
            return _error(request, rest_models.code_for(away), str(away))

    async def _body(self, request: web.Request) -> object:
        try:
            return orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise errors.InvalidArgument("body", f"is not JSON: {exc}", "send a JSON object") from None

    @staticmethod
    def _list_request(
        request: web.Request, fields: tuple[str, ...]
    ) -> tuple[rest_models.PageRequest, search.Node | None]:
        """A list's page and parsed search; the list parameters not served are refused by name."""
        for name in ("orderBy", "fields"):
            if name in request.query:
                raise errors.InvalidArgument(
                    name, "is not supported", f"leave {name} out: lists come whole, in the order of their ids"
                )
        paging = rest_models.page_request(request.query.get("page"), request.query.get("size"))
        return paging, search.parse(request.query.get("search", ""), fields)

    async def _require_admin(self, request: web.Request, what: str) -> None:
        await self._guard.check(request[_CALLER], Verb.ADMIN, what=what)

    # consumers

    async def list_consumers(self, request: web.Request) -> web.Response:
        await self._require_admin(request, "list consumers")
        paging, where = self._list_request(request, search.CONSUMER_FIELDS)
        found, total = await self._store.search_consumers(where, paging.offset, paging.size)
        head = rest_models.list_head("ConsumerList", paging.page, len(found), total)
        return _answer(200, {**head, "items": [rest_models.consumer(c) for c in found]})

    async def create_consumer(self, request: web.Request) -> web.Response:
        await self._require_admin(request, "register consumers")
        name, labels = rest_models.consumer_create(await self._body(request))
        return _answer(201, rest_models.consumer(await self._admin.create(name, labels)))

    async def get_consumer(self, request: web.Request) -> web.Response:
        name = request.match_info["id"]
        await self._require_admin(request, f"read consumer {name!r}")
        return _answer(200, rest_models.consumer(await self._store.get_consumer(name)))

    async def patch_consumer(self, request: web.Request) -> web.Response:
        name = request.match_info["id"]
        await self._require_admin(request, "label consumers")
        labels = rest_models.consumer_patch(await self._body(request))
        return _answer(200, rest_models.consumer(await self._store.update_consumer_labels(name, labels)))

    async def delete_consumer(self, request: web.Request) -> web.Response:
        await self._require_admin(request, "delete consumers")
        await self._admin.delete(request.match_info["id"])
        return web.Response(status=204)

    # resource bundles

    async def _readable_source(self, caller: Caller, asked: str) -> str:
        """The source a caller's list is narrowed to ("" for every source), as the query API's: the
        source its search requires, if the caller may read it; a source certificate's own when the
        search requires none."""
        if caller.identity is not None and caller.identity.kind is Kind.SOURCE and not asked:
            return caller.identity.name
        await self._guard.check(caller, Verb.LIST, asked)
        return asked

    async def _bundle(self, request: web.Request, verb: Verb) -> bundles.BundleRecord:
        try:
            resource_id = uuid.UUID(request.match_info["id"])
        except ValueError:
            raise errors.NotFound("resource bundle", request.match_info["id"][:60]) from None
        record = await self._store.get_resource(resource_id)
        await self._guard.check(request[_CALLER], verb, record.bundle.source)
        return record

    async def list_bundles(self, request: web.Request) -> web.StreamResponse:
        paging, where = self._list_request(request, search.BUNDLE_FIELDS)
        source = await self._readable_source(request[_CALLER], search.required_source(where))
        ids, total = await self._store.search_resource_ids(where, source, paging.offset, paging.size)
        head = rest_models.list_head("ResourceBundleList", paging.page, 0, total)
        del head["size"]  # written last: the bundles written, should one go between the two reads
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(orjson.dumps(head)[:-1] + b',"items":[')
        written = 0
        async for chunk in self._store.resources_by_ids(ids, self._page_bytes):
            parts = [orjson.dumps(rest_models.resource_bundle(record)) for record in chunk]
            await response.write((b"," if written else b"") + b",".join(parts))
            written += len(parts)
        await response.write(b'],"size":%d}' % written)
        await response.write_eof()
        return response

    async def get_bundle(self, request: web.Request) -> web.Response:
        record = await self._bundle(request, Verb.LIST)
        return _answer(200, rest_models.resource_bundle(record))

    async def delete_bundle(self, request: web.Request) -> web.Response:
        record = await self._bundle(request, Verb.PUBLISH)
        b = record.bundle
        if not b.deleting:
            request_ = bundles.SpecRequest(bundles.SpecAction.DELETE, b.id, b.consumer, b.source, 0)
            await self._store.delete_resource(request_)
        return web.Response(status=204)


def ssl_context(tls: files.TLSFiles) -> ssl.SSLContext:
    """TLS asking for (not requiring: a token may stand in) a client certificate of the platform's
    CA; renewed files are served from the next handshake on."""

    def made() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        assert tls.cert is not None and tls.key is not None
        context.load_cert_chain(tls.cert, tls.key)
        context.load_verify_locations(cafile=tls.ca)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    current = [made(), tls.fingerprint()]

    def renewed(sock: ssl.SSLObject, _name: str | None, _context: ssl.SSLContext) -> None:
        try:
            now = tls.fingerprint()
            if now != current[1]:
                current[:] = [made(), now]
                log.info("REST API: serving the renewed TLS files of %s", tls.cert)
        except Exception as exc:  # half-replaced files: keep serving the last good ones
            log.warning("reading the renewed TLS files failed, serving the previous ones: %s", exc)
        sock.context = current[0]  # type: ignore[assignment]

    first = current[0]
    assert isinstance(first, ssl.SSLContext)
    first.sni_callback = renewed
    return first


async def serve(api: RestApi, host: str, port: int, tls: files.TLSFiles | None) -> tuple[web.AppRunner, int]:
    """Serve ``api``; returns the runner (to clean up) and the bound port (``port`` 0: a free one).
    Without ``tls`` (an insecure server) it serves plaintext."""
    runner = web.AppRunner(api.application(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context(tls) if tls else None).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(
            exc.errno, f"cannot serve the REST API on {host}:{port}: {exc.strerror} (in use?)"
        ) from exc
    bound = int(runner.addresses[0][1])
    log.info("serving upstream Maestro's REST API on %s://%s:%d", "https" if tls else "http", host, bound)
    return runner, bound
