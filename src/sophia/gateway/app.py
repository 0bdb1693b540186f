"""The gateway's HTTP face: a raw ASGI app for the OpenAI routes, Starlette for the admin API.

The hot path (chat completions, embeddings) does one body read, one key lookup, one orjson
parse, cheap validation, and passes the upstream's bytes through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from sophia import __version__
from sophia.accounts.keys import KeyRecord
from sophia.asgi import (
    ClientGone,
    DisconnectGuard,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_json,
)
from sophia.errors import InvalidRequest, ProviderError, SophiaError
from sophia.gateway.api import Result
from sophia.gateway.engine import Gateway, StreamCall, new_request_id
from sophia.gateway.errors import error_body, retry_after
from sophia.gateway.validate import ChatParams, chat_params

log = logging.getLogger(__name__)

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_DONE = b"data: [DONE]\n\n"
#: chat bodies whose parse and checks are remembered (the most recent), and the largest so kept
MEMO_BODIES = 1024
MEMO_MAX_BODY = 16 * 1024
#: deepest nesting of arrays and objects a body may have (orjson, which writes cache keys and
#: forwards bodies upstream, refuses to serialise past 254 levels)
MAX_DEPTH = 64


def _parse(body: bytes) -> Any:
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _depth_over(data, MAX_DEPTH):
        raise InvalidRequest(f"the request body nests arrays and objects more than {MAX_DEPTH} levels deep")
    return data


def _depth_over(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and dicts more than ``limit`` levels deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _result_headers(result: Result) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-request-id", result.request_id.encode()),
        (b"x-sophia-model", result.model.id.encode()),
        (b"x-sophia-provider", result.model.provider.encode()),
        (b"x-sophia-cost", f"{result.cost:.8f}".encode()),
        (b"x-sophia-cache", result.cache.encode()),
        (b"x-sophia-route", result.route.encode()),
        (b"x-sophia-trace-id", (result.trace_id or "").encode()),
    ]


class GatewayApp:
    def __init__(self, gateway: Gateway, *, lifespan: bool = True) -> None:
        """``lifespan``: the app starts and closes ``gateway`` (False: its owner does, e.g. the container)."""
        from sophia.gateway.admin import build_admin
        from sophia.observe.dashboard import build_dashboard

        self.gateway = gateway
        self.manage = lifespan
        self.max_body = gateway.settings.gateway.max_body_bytes
        self.admin = build_admin(gateway)
        self.dashboard = build_dashboard(gateway, error_body)  # /dashboard*: charts, data, traces
        routes: dict[str, dict[str, Handler]] = {
            "/v1/chat/completions": {"POST": self._chat},
            "/v1/embeddings": {"POST": self._embeddings},
            "/v1/models": {"GET": self._models},
            "/health": {"GET": self._health},
        }
        # Clients configured with a base URL that lacks /v1 still work.
        routes.update({path[3:]: methods for path, methods in routes.items() if path.startswith("/v1/")})
        self.routes = routes
        self._models_cache: bytes | None = None
        self._bodies: dict[bytes, tuple[dict[str, Any], ChatParams]] = {}  # most recently seen last

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            methods = self.routes.get(scope["path"])
            if methods is not None:
                handler = methods.get(scope["method"])
                if handler is None:
                    return await self._error(
                        send, InvalidRequest(f"method {scope['method']} is not allowed here"), 405
                    )
                try:
                    return await handler(scope, receive, send)
                except Exception:  # noqa: BLE001 - logged with its traceback by _internal_error
                    return await self._internal_error(scope, send)
            if scope["path"] == "/metrics":  # Prometheus' usual path, the admin API's guard
                scope = {**scope, "path": "/admin/metrics", "raw_path": b"/admin/metrics"}
            if scope["path"].startswith("/admin"):
                return await self.admin(scope, receive, send)
            if scope["path"] == "/dashboard" or scope["path"].startswith("/dashboard/"):
                return await self.dashboard(scope, receive, send)
            return await self._error(send, InvalidRequest(f"no route {scope['path']}", code="not_found"), 404)
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        return None

    async def _internal_error(self, scope: Scope, send: Send) -> None:
        """A bug in a route: a logged traceback and an OpenAI-style 500, never a stack trace out. (Every
        route's errors pass here; there is no wrapper per request, only this ``except``.)"""
        log.exception("unexpected error on %s %s", scope["method"], scope["path"])
        try:
            await self._error(
                send, SophiaError("internal error in the gateway; the server log has the details")
            )
        except Exception:  # noqa: BLE001 - the response had started: the server closes the connection
            log.debug("could not send the error response (the response had started)")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    if self.manage:
                        await self.gateway.start()
                except SophiaError as exc:
                    await send({"type": "lifespan.startup.failed", "message": exc.message})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.dashboard.state.dashboard.close()  # its chart worker, if one started
                if self.manage:
                    await self.gateway.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- errors ---------------------------------------------------------------------------------

    async def _error(
        self, send: Send, exc: SophiaError, status: int | None = None, request_id: str | None = None
    ) -> None:
        code, body = error_body(exc)
        headers = []
        if request_id:
            headers.append((b"x-request-id", request_id.encode()))
        wait = retry_after(exc)
        if wait is not None:
            headers.append((b"retry-after", str(max(1, round(wait))).encode()))
        await send_json(send, status or code, body, headers)

    async def _authenticate(self, scope: Scope) -> KeyRecord | None:
        return await self.gateway.authenticate(header(scope, b"authorization"))

    # -- routes ---------------------------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        try:
            key = await self._authenticate(scope)  # before the body: a stranger's body is never read
            body = await read_body(scope, receive, self.max_body)
            data, params = self._chat_body(body)
            if params.stream:
                return await self._stream(receive, send, data, key, params, request_id, scope)
            async with DisconnectGuard(receive) as guard:
                result = await self.gateway.chat(
                    data, key, params=params, request_id=request_id, traceparent=header(scope, b"traceparent")
                )
            if guard.gone:
                return None
        except ClientGone:
            return None
        except SophiaError as exc:
            return await self._error(send, exc, request_id=request_id)
        return await send_json(send, 200, result.body, _result_headers(result))

    def _chat_body(self, body: bytes) -> tuple[dict[str, Any], ChatParams]:
        """The parsed and validated body. A body seen recently (a retry, a dashboard's refresh, an agent
        asking again) is not parsed again: its parse, checks and cache keys are remembered, bounded."""
        seen = self._bodies.pop(body, None)
        if seen is None:
            data = _parse(body)
            seen = (data, chat_params(data))
            if len(body) > MEMO_MAX_BODY:
                return seen
            if len(self._bodies) >= MEMO_BODIES:
                del self._bodies[next(iter(self._bodies))]  # the least recently seen
        self._bodies[body] = seen
        return seen

    async def _stream(
        self,
        receive: Receive,
        send: Send,
        data: dict[str, Any],
        key: KeyRecord | None,
        params: Any,
        request_id: str,
        scope: Scope,
    ) -> None:
        async with DisconnectGuard(receive) as guard:
            call = await self.gateway.chat_stream(
                data, key, params=params, request_id=request_id, traceparent=header(scope, b"traceparent")
            )
        if guard.gone:
            return
        headers = [
            *_SSE_HEADERS,
            (b"x-request-id", request_id.encode()),
            (b"x-sophia-model", call.model.id.encode()),
            (b"x-sophia-provider", call.model.provider.encode()),
            (b"x-sophia-cache", call.cache.encode()),
            (b"x-sophia-route", call.route.encode()),
            (b"x-sophia-trace-id", call.trace_id.encode()),
        ]
        error: BaseException | None = None
        try:
            async with DisconnectGuard(receive) as guard:
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                error = await self._pump(send, call)
            if guard.gone:
                error = asyncio.CancelledError("client disconnected")
        except BaseException as exc:
            error = exc
            raise
        finally:
            await call.finish(error)

    async def _pump(self, send: Send, call: StreamCall) -> ProviderError | None:
        """Send every event, then [DONE]; a provider failure mid-stream is reported in-band and returned."""
        failure = None
        try:
            async for event in call:
                await send({"type": "http.response.body", "body": event, "more_body": True})
        except ProviderError as exc:
            # The headers are gone: report the failure in the stream, as OpenAI does, then end it.
            failure = exc
            _, body = error_body(exc)
            await send({"type": "http.response.body", "body": b"data: " + body + b"\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": _DONE, "more_body": False})
        return failure

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        try:
            key = await self._authenticate(scope)
            body = await read_body(scope, receive, self.max_body)
            data = _parse(body)
            async with DisconnectGuard(receive) as guard:
                result = await self.gateway.embed(
                    data, key, request_id=request_id, traceparent=header(scope, b"traceparent")
                )
            if guard.gone:
                return None
        except ClientGone:
            return None
        except SophiaError as exc:
            return await self._error(send, exc, request_id=request_id)
        return await send_json(send, 200, result.body, _result_headers(result))

    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            key = await self._authenticate(scope)
        except SophiaError as exc:
            return await self._error(send, exc)
        if key is None or key.allowed_models is None:
            if self._models_cache is None:
                self._models_cache = orjson.dumps(self._model_list(None))
            return await send_json(send, 200, self._models_cache)
        return await send_json(send, 200, orjson.dumps(self._model_list(key)))

    def _model_list(self, key: KeyRecord | None) -> dict[str, Any]:
        data = []
        for model_id, owner, info, alias in self.gateway.catalog.listing():
            if key is not None and not key.allows_model(model_id):
                continue
            row: dict[str, Any] = {"id": model_id, "object": "model", "created": 0, "owned_by": owner}
            if info is not None:
                row["context_window"] = info.context_window
                row["pricing"] = {"input_per_mtok": info.input_price, "output_per_mtok": info.output_price}
                row["capabilities"] = sorted(info.capabilities)
            if alias is not None:
                row["chain"] = list(alias.chain)
                row["description"] = alias.description
            data.append(row)
        auto = self.gateway.auto.config.alias
        if key is None or key.allows_model(auto):
            data.append(
                {
                    "id": auto,
                    "object": "model",
                    "created": 0,
                    "owned_by": "sophia",
                    "description": "The cheapest enabled model that is good enough for each request (learned router).",
                }
            )
        return {"object": "list", "data": data}

    async def _health(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {"status": "ok", "version": __version__, "providers": sorted(self.gateway.catalog.adapters)}
        await send_json(send, 200, orjson.dumps(body))
