"""Streamable HTTP for an MCP server: Host/Origin checks, bearer keys, then the SDK's session manager.

Order matters and follows the spec: a foreign ``Host`` is refused with 421 and a foreign
``Origin`` with 403 before anything else; then ``/.well-known/oauth-protected-resource[/mcp]``
is served; then ``/mcp`` needs ``Authorization: Bearer <gateway key>`` (401 with
``WWW-Authenticate: Bearer … resource_metadata=…`` otherwise). The key reaches the tools through
the request scope, and the session manager binds each session to the key that opened it.

To run next to the gateway in one process and event loop, share its ``Gateway``::

    gw = Gateway(settings)
    gateway_server = uvicorn.Server(uvicorn.Config(GatewayApp(gw), host=…, port=8090, …))
    await asyncio.gather(gateway_server.serve(), serve_http(settings, gateway=gw))

The gateway app starts and closes ``gw``; the MCP app waits for it to be started and never closes it.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from sophia.errors import AuthenticationError, SophiaError
from sophia.mcp.context import Services
from sophia.mcp.errors import redact
from sophia.mcp.registry import get_registry
from sophia.mcp.server import SCOPE_KEY, build_server
from sophia.mcp.settings import LOOPBACK_NAMES, mcp_settings

if TYPE_CHECKING:
    import uvicorn

    from sophia.gateway.engine import Gateway
    from sophia.gateway.keys import KeyRecord
    from sophia.mcp.tools import ToolGroup
    from sophia.settings import Settings

log = logging.getLogger(__name__)

Scope = dict[str, Any]
MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"
_MAX_USERS = 10_000


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class McpHttpApp:
    """The ASGI app of one MCP server on its own port."""

    def __init__(
        self,
        group: ToolGroup,
        services: Services,
        *,
        host: str = "127.0.0.1",
        allowed_hosts: list[str] | None = None,
        allowed_origins: list[str] | None = None,
    ) -> None:
        self.group = group
        self.services = services
        self.require_keys = services.settings.gateway.require_keys
        names = {*LOOPBACK_NAMES, *(allowed_hosts or [])}
        if host not in ("0.0.0.0", "::"):
            names.add(f"[{host}]" if ":" in host else host)
        self.hosts = frozenset(names)
        self.origins = frozenset(allowed_origins or [])
        self.server = build_server(group, services)
        sdk_hosts = [*names, *(f"{n}:*" for n in names)]
        sdk_origins = [f"{s}://{n}{p}" for s in ("http", "https") for n in names for p in ("", ":*")]
        self.manager = StreamableHTTPSessionManager(
            app=self.server,
            security_settings=TransportSecuritySettings(
                allowed_hosts=sdk_hosts, allowed_origins=[*sdk_origins, *self.origins]
            ),
        )
        self._users: dict[str, AuthenticatedUser] = {}

    # -- checks -----------------------------------------------------------------------------------

    def host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name in self.hosts

    def origin_ok(self, origin: str) -> bool:
        if origin in self.origins:
            return True
        scheme, sep, rest = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and "/" not in rest and self.host_ok(rest)

    # -- ASGI -------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        host = _header(scope, b"host")
        if not self.host_ok(host):
            return await _plain(send, 421, "Invalid Host header")
        origin = _header(scope, b"origin")
        if origin is not None and not self.origin_ok(origin):
            return await _plain(send, 403, "Invalid Origin header")
        path = scope["path"].rstrip("/") or "/"
        if path in (METADATA_PATH, METADATA_PATH + MCP_PATH):
            return await self._metadata(scope, send, host or "")
        if path != MCP_PATH:
            return await _plain(send, 404, f"Not found: the MCP endpoint is {MCP_PATH}")
        authorization = _header(scope, b"authorization")
        key: KeyRecord | None = None
        if authorization or self.require_keys:
            try:
                gw = self.services.started or await self.services.gateway()
                key = await gw.authenticate(authorization)
            except AuthenticationError as exc:
                return await self._unauthorized(send, host or "", exc.message, bool(authorization))
            except SophiaError as exc:
                return await _plain(send, 503, redact(exc.message))
        scope[SCOPE_KEY] = key
        if key is not None:
            scope["user"] = self._user(key)
        await self.manager.handle_request(scope, receive, send)

    def _user(self, key: KeyRecord) -> AuthenticatedUser:
        """The SDK's principal for a key: sessions opened with one key refuse every other key."""
        user = self._users.get(key.id)
        if user is None:
            if len(self._users) >= _MAX_USERS:
                self._users.clear()
            user = AuthenticatedUser(AccessToken(token=key.id, client_id=key.id, scopes=[]))
            self._users[key.id] = user
        return user

    async def _unauthorized(self, send: Any, host: str, message: str, had_token: bool) -> None:
        metadata = f"http://{host}{METADATA_PATH}{MCP_PATH}"
        error = 'error="invalid_token", ' if had_token else ""
        challenge = f'Bearer realm="sophia", {error}resource_metadata="{metadata}"'
        body = orjson.dumps(
            {"error": "invalid_token" if had_token else "unauthorized", "error_description": message}
        )
        await _send(send, 401, body, [(b"www-authenticate", challenge.encode())])

    async def _metadata(self, scope: Scope, send: Any, host: str) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            return await _plain(send, 405, "Use GET")
        doc = {
            "resource": f"http://{host}{MCP_PATH}",
            "resource_name": self.group.title,
            "bearer_methods_supported": ["header"],
        }
        await _send(send, 200, orjson.dumps(doc), [(b"cache-control", b"max-age=3600")])

    async def _lifespan(self, receive: Any, send: Any) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with AsyncExitStack() as stack:
            try:
                await self.services.gateway()
                await stack.enter_async_context(self.manager.run())
            except SophiaError as exc:
                await send({"type": "lifespan.startup.failed", "message": exc.message})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await self.services.close()
        await send({"type": "lifespan.shutdown.complete"})


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Any, status: int, text: str) -> None:
    body = text.encode()
    head = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def build_http_app(
    settings: Settings,
    group: str | ToolGroup = "ai",
    *,
    gateway: Gateway | None = None,
    host: str | None = None,
) -> McpHttpApp:
    """The ASGI app for ``group``; with ``gateway`` it shares that (already or soon started) gateway."""
    conf = mcp_settings(settings)
    tool_group = get_registry().get(group) if isinstance(group, str) else group
    return McpHttpApp(
        tool_group,
        Services(settings, gateway),
        host=host or conf.host,
        allowed_hosts=conf.allowed_hosts,
        allowed_origins=conf.allowed_origins,
    )


def http_server(
    settings: Settings,
    group: str | ToolGroup = "ai",
    *,
    host: str | None = None,
    port: int | None = None,
    gateway: Gateway | None = None,
) -> uvicorn.Server:
    """A uvicorn server for ``group``: ``.run()`` it alone, or ``await .serve()`` next to the gateway."""
    import uvicorn

    conf = mcp_settings(settings)
    app = build_http_app(settings, group, gateway=gateway, host=host)
    bind = host or conf.host
    config = uvicorn.Config(
        app,
        host=bind,
        port=port if port is not None else conf.ports.get(app.group.name, app.group.port),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level="warning" if settings.log_level == "info" else settings.log_level,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


async def serve_http(
    settings: Settings,
    group: str | ToolGroup = "ai",
    *,
    host: str | None = None,
    port: int | None = None,
    gateway: Gateway | None = None,
) -> None:
    """Serve ``group`` over streamable HTTP in the running event loop until shut down."""
    await http_server(settings, group, host=host, port=port, gateway=gateway).serve()
