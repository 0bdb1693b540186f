"""Streamable HTTP for an MCP server: Host/Origin checks, bearer keys, then the SDK's session manager.

Order matters and follows the spec: a foreign ``Host`` is refused with 421 and a foreign
``Origin`` with 403 before anything else; then the discovery documents are served; then ``/mcp``
needs ``Authorization: Bearer <gateway key>`` (401 with ``WWW-Authenticate: Bearer …
resource_metadata=…`` otherwise). The key reaches the tools through the request scope, and the
session manager binds each session to the key that opened it.

Discovery, for clients that follow the MCP authorization spec after a 401 (the MCP Inspector, the
SDKs): ``/.well-known/oauth-protected-resource[/mcp]`` (RFC 9728) names this server's own origin
as its authorization server, and ``/.well-known/oauth-authorization-server`` (RFC 8414) says
truthfully what that server offers: no response type, no grant, no client registration. Sophia
issues static API keys, not OAuth tokens. The three endpoints the SDKs' metadata models insist on
(``/oauth/authorize``, ``/oauth/token``, ``/oauth/register``) answer every request with an OAuth
error whose description says that the key was refused and how to get one, so a client that tries
to register shows that instead of a bare 404.

Keys are checked by the process's accounts (``sophia.container.Services``): serving an MCP server
never starts the model gateway; a tool that calls a model starts it on first use. Servers that run
in one process share one container (``sophia.serve`` does so for the gateway and every MCP server);
a server given no container makes its own and closes it when it stops.
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

from sophia.asgi import ClientGone, header, read_body, send_json
from sophia.container import Services
from sophia.errors import AuthenticationError, PayloadTooLarge, SophiaError
from sophia.mcp.errors import redact
from sophia.mcp.registry import get_registry
from sophia.mcp.server import SCOPE_KEY, build_server
from sophia.observe.service import TRACER

if TYPE_CHECKING:
    import uvicorn

    from sophia.accounts import KeyRecord
    from sophia.mcp.tools import ToolGroup
    from sophia.settings import Settings

log = logging.getLogger(__name__)

Scope = dict[str, Any]
#: Host names every server accepts (loopback); the bind address and ``mcp.allowed_hosts`` add to them
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"
AUTH_SERVER_PATH = "/.well-known/oauth-authorization-server"
#: endpoint -> the OAuth error it answers with (RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2)
OAUTH_REFUSALS = {
    "/oauth/authorize": "unsupported_response_type",
    "/oauth/token": "unsupported_grant_type",
    "/oauth/register": "invalid_client_metadata",
}
NO_OAUTH = (
    "The Sophia API key was missing or refused (unknown or revoked): that is what the 401 from /mcp "
    "means. Sophia's MCP servers take a static API key, not OAuth, so there is no client registration, "
    "authorization or token grant to try: send 'Authorization: Bearer sk-sophia-...' with a valid key "
    "(`sophia keys create`, or `sophia ide install` for an IDE)."
)
_MAX_USERS = 10_000


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
        owns_services: bool = False,
    ) -> None:
        """``owns_services``: the app closes ``services`` when it shuts down (it made them)."""
        self.group = group
        self.services = services
        self.owns_services = owns_services
        self.require_keys = services.settings.gateway.require_keys
        self.max_body = services.settings.gateway.max_body_bytes
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
        host = header(scope, b"host")
        if not self.host_ok(host):
            return await _plain(send, 421, "Invalid Host header")
        origin = header(scope, b"origin")
        if origin is not None and not self.origin_ok(origin):
            return await _plain(send, 403, "Invalid Origin header")
        path = scope["path"].rstrip("/") or "/"
        if path in (METADATA_PATH, METADATA_PATH + MCP_PATH):
            return await self._metadata(scope, send, host or "")
        if path == AUTH_SERVER_PATH:
            return await self._auth_server(scope, send, host or "")
        if path in OAUTH_REFUSALS:
            body = orjson.dumps({"error": OAUTH_REFUSALS[path], "error_description": NO_OAUTH})
            return await send_json(send, 400, body, [(b"cache-control", b"no-store")])
        if path != MCP_PATH:
            return await _plain(send, 404, f"Not found: the MCP endpoint is {MCP_PATH}")
        authorization = header(scope, b"authorization")
        key: KeyRecord | None = None
        if authorization or self.require_keys:
            try:
                key = await self.services.authenticate(authorization)
            except AuthenticationError as exc:
                return await self._unauthorized(send, host or "", exc.message, bool(authorization))
            except SophiaError as exc:
                return await _plain(send, 503, redact(exc.message))
        scope[SCOPE_KEY] = key
        if key is not None:
            scope["user"] = self._user(key)
        if scope["method"] == "POST":
            # The SDK reads a body whole, however large: read it here, bounded, after the key.
            try:
                body = await read_body(scope, receive, self.max_body)
            except PayloadTooLarge as exc:
                return await _plain(send, 413, exc.message)
            except ClientGone:
                return None
            receive = _replay(body, receive)
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
        await send_json(send, 401, body, [(b"www-authenticate", challenge.encode())])

    async def _metadata(self, scope: Scope, send: Any, host: str) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            return await _plain(send, 405, "Use GET")
        doc = {
            "resource": f"http://{host}{MCP_PATH}",
            "resource_name": self.group.title,
            "authorization_servers": [f"http://{host}"],  # the MCP spec requires one: this server itself
            "bearer_methods_supported": ["header"],
        }
        await send_json(send, 200, orjson.dumps(doc), [(b"cache-control", b"max-age=3600")])

    async def _auth_server(self, scope: Scope, send: Any, host: str) -> None:
        """RFC 8414 metadata of an authorization server that supports no OAuth flow (Sophia's keys are static)."""
        if scope["method"] not in ("GET", "HEAD"):
            return await _plain(send, 405, "Use GET")
        issuer = f"http://{host}"
        doc = {
            "issuer": issuer,
            # Required by the SDKs' models (RFC 8414 would let us omit them, as no grant uses them):
            # present, and answering every request with an OAuth error that says what to do instead.
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "registration_endpoint": f"{issuer}/oauth/register",
            "response_types_supported": [],
            "grant_types_supported": [],
            "token_endpoint_auth_methods_supported": [],
        }
        await send_json(send, 200, orjson.dumps(doc), [(b"cache-control", b"max-age=3600")])

    async def _lifespan(self, receive: Any, send: Any) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with AsyncExitStack() as stack:
            try:
                await self.services.open()
                await self.services.get(TRACER)  # tool calls become spans (observe.tracing)
                for service in self.group.start:  # the server's background work (a crawl worker, feeds)
                    await self.services.get(service)
                await stack.enter_async_context(self.manager.run())
            except SophiaError as exc:
                await send({"type": "lifespan.startup.failed", "message": exc.message})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        if self.owns_services:
            await self.services.close()
        await send({"type": "lifespan.shutdown.complete"})


async def _plain(send: Any, status: int, text: str) -> None:
    body = text.encode()
    head = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def build_http_app(
    settings: Settings,
    group: str | ToolGroup = "ai",
    *,
    services: Services | None = None,
    host: str | None = None,
) -> McpHttpApp:
    """The ASGI app for ``group``; with ``services`` it shares that container, else it makes its own."""
    conf = settings.mcp
    tool_group = get_registry().get(group) if isinstance(group, str) else group
    return McpHttpApp(
        tool_group,
        services or Services(settings),
        host=host or conf.host,
        allowed_hosts=conf.allowed_hosts,
        allowed_origins=conf.allowed_origins,
        owns_services=services is None,
    )


def http_server(
    settings: Settings,
    group: str | ToolGroup = "ai",
    *,
    host: str | None = None,
    port: int | None = None,
    services: Services | None = None,
) -> uvicorn.Server:
    """A uvicorn server for ``group``: ``.run()`` it alone, or ``await .serve()`` beside others."""
    import uvicorn

    from sophia.asgi import uvicorn_log_level
    from sophia.edge import uvicorn_options

    conf = settings.mcp
    app = build_http_app(settings, group, services=services, host=host)
    config = uvicorn.Config(
        app,
        host=host or conf.host,
        port=port if port is not None else conf.ports.get(app.group.name, app.group.port),
        log_level=uvicorn_log_level(settings.log_level),
        **uvicorn_options(settings.gateway),  # the gateway's bounds on heads, bodies and connections
    )
    return uvicorn.Server(config)


async def serve_http(
    settings: Settings,
    group: str | ToolGroup = "ai",
    *,
    host: str | None = None,
    port: int | None = None,
    services: Services | None = None,
) -> None:
    """Serve ``group`` over streamable HTTP in the running event loop until shut down."""
    await http_server(settings, group, host=host, port=port, services=services).serve()


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that gives ``body`` (already read) first, then what the client sends next."""
    pending: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Any:
        return pending.pop() if pending else await receive()

    return replayed
