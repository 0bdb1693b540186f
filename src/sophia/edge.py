"""The connection layer under every server Sophia runs: uvicorn's httptools protocol, bounded.

uvicorn's httptools protocol reads a request head of any size (httptools gathers a header value
across reads until it ends) and waits for a head or a body for ever. ``EdgeProtocol`` bounds what
one connection can make the server do:

- **Head size.** A request line and headers over ``max_header_bytes``, or more than
  ``max_headers`` headers, get ``431`` and the connection is closed. Bytes are counted as they
  arrive, before the parser sees them, so an over-long head is never held: an 8 MB header costs
  one read, not 8 MB.
- **Head deadline.** ``header_timeout`` seconds from the connection (or from the first byte of a
  later request on it) to the end of the headers, else ``408`` and close; a connection that sent
  nothing at all is just closed.
- **Body deadline.** ``body_timeout`` seconds from the end of the headers to the end of the body,
  else ``408`` and close; the app sees a disconnect (``sophia.asgi.read_body`` raises
  ``ClientGone``, a Starlette app ``ClientDisconnect``). Time the app takes before it asks for the
  body (``Expect: 100-continue``, or reading paused because the app has not consumed what came)
  is not counted against the client.
- **Connections per client.** At most ``max_connections_per_client`` open connections per client
  address, per server and worker process; one more is answered ``503`` and closed at once, the
  others are not touched.

The keep-alive idle timeout stays uvicorn's own (``timeout_keep_alive``). On the hot path a
request that arrives in one read (nearly every one) makes no timer and no task: a read costs a
length comparison. A connection has one timer handle at a time, made when it opens and again only
when a read leaves a head or a body incomplete.

Every server gets these through ``uvicorn_options(settings.gateway)`` (``http=Edge(...)``); the
MCP servers use the gateway's values.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from sophia.asgi import UVICORN_OPTIONS

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from sophia.settings.gateway import GatewaySettings

log = logging.getLogger(__name__)

#: (status, JSON body) of an answer the edge writes itself
Refusal = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What one connection may cost; the defaults are ``GatewaySettings``'s."""

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 15.0
    #: 0: no bound
    max_connections_per_client: int = 64
    #: count loopback clients too (off behind a reverse proxy on the same host)
    limit_loopback_clients: bool = True

    @classmethod
    def from_settings(cls, gateway: GatewaySettings) -> EdgeLimits:
        return cls(
            max_header_bytes=gateway.max_header_bytes,
            max_headers=gateway.max_headers,
            header_timeout=gateway.header_timeout,
            body_timeout=gateway.body_timeout,
            max_connections_per_client=gateway.max_connections_per_client,
            limit_loopback_clients=gateway.limit_loopback_clients,
        )


def uvicorn_options(gateway: GatewaySettings) -> dict[str, Any]:
    """uvicorn's options for a server of Sophia: ``sophia.asgi.UVICORN_OPTIONS`` on the bounded protocol."""
    return {**UVICORN_OPTIONS, "http": Edge(EdgeLimits.from_settings(gateway))}


def _error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> Refusal:
    """An answer in the OpenAI error format, as the gateway gives its own."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return status, orjson.dumps(body)


class Edge:
    """uvicorn's ``http=`` for one server: makes an ``EdgeProtocol`` per connection and counts the open
    connections of each client address. Pickled into a worker process, it starts with no count."""

    __slots__ = ("body_late", "clients", "head_late", "head_too_large", "limits", "too_many")

    def __init__(self, limits: EdgeLimits | None = None) -> None:
        self.limits = limits = limits or EdgeLimits()
        self.clients: dict[str, int] = {}
        self.head_too_large = _error(
            431,
            f"The request line and headers are over the {limits.max_header_bytes}-byte "
            f"or {limits.max_headers}-header limit.",
            "headers_too_large",
        )
        self.head_late = _error(
            408, f"The request headers did not arrive within {limits.header_timeout:g} s.", "request_timeout"
        )
        self.body_late = _error(
            408, f"The request body did not arrive within {limits.body_timeout:g} s.", "request_timeout"
        )
        self.too_many = _error(
            503,
            f"Too many open connections from this address (at most {limits.max_connections_per_client}).",
            "too_many_connections",
            "rate_limit_error",
        )

    def __reduce__(self) -> tuple[type[Edge], tuple[EdgeLimits]]:
        return Edge, (self.limits,)

    def __call__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> EdgeProtocol:
        return EdgeProtocol(config, server_state, app_state, _loop, edge=self)


class _HeadRefused(Exception):
    """Raised in a parser callback to stop parsing a head the edge refuses."""


def _is_loopback(host: str) -> bool:
    return host.startswith(("127.", "::ffff:127.")) or host == "::1"


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds in the module docstring."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        edge: Edge,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.edge = edge
        self._max_head = edge.limits.max_header_bytes
        self._max_headers = edge.limits.max_headers
        #: bytes of the current request head read so far; -1 while its body is read
        self._head = 0
        #: the head or body deadline (never both: they are not due at the same time)
        self._deadline: asyncio.TimerHandle | None = None
        #: the answer to give when the parser was stopped on purpose
        self._refusal: Refusal | None = None
        #: the client address this connection is counted under
        self._counted: str | None = None
        #: the scope of the last request whose head was complete (uvicorn makes one per request head)
        self._headed: Any = None

    # -- connections ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        edge = self.edge
        limit = edge.limits.max_connections_per_client
        if limit and self.client is not None:
            host = self.client[0]
            if edge.limits.limit_loopback_clients or not _is_loopback(host):
                count = edge.clients.get(host, 0)
                if count >= limit:
                    log.debug("refused a connection from %s: %d already open", host, count)
                    self._write(edge.too_many)
                    self.transport.close()
                    return
                edge.clients[host] = count + 1
                self._counted = host
        self._deadline = self.loop.call_later(edge.limits.header_timeout, self._expired)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        host = self._counted
        if host is not None:
            self._counted = None
            clients = self.edge.clients
            left = clients[host] - 1
            if left:
                clients[host] = left
            else:
                del clients[host]
        super().connection_lost(exc)

    # -- reading ----------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # A head's bytes are counted from the read after the one that ended the previous request:
        # a pipelined head that begins within that read is counted from the next one (the bound is
        # then looser by at most one read, about 256 KB), and its header count is checked all the same.
        self._unset_keepalive_if_required()
        head = self._head
        if head >= 0:
            room = self._max_head - head
            if len(data) > room:
                # Parse what fits: a head that has not ended within it is over the limit, and the
                # rest of this read is never parsed (nor anything after it).
                self._head = self._max_head
                view = memoryview(data)
                if not self._feed(view[:room]):
                    return
                if self._head == self._max_head:
                    log.debug("refused a request head over %d bytes", self._max_head)
                    return self._refuse_head(self.edge.head_too_large)
                # The head ended in time: the rest is its body (and maybe later requests).
                if not self._feed(view[room:]):
                    return
            else:
                self._head = head + len(data)
                if not self._feed(data):
                    return
        elif not self._feed(data):
            return
        if self._deadline is not None:
            return
        if self._head:
            # This read left a head (> 0) or a body (-1) incomplete: from now on it has a deadline.
            limits = self.edge.limits
            delay = limits.header_timeout if self._head > 0 else limits.body_timeout
            self._deadline = self.loop.call_later(delay, self._expired)
        elif (
            self.timeout_keep_alive_task is None
            and self.cycle is not None
            and self.cycle.response_complete
            and not self.pipeline
        ):
            # The app answered before the body ended: uvicorn armed the keep-alive timeout then and
            # this read cancelled it, so the idle connection would have no deadline at all.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _feed(self, data: bytes | memoryview) -> bool:
        """Parse ``data`` (uvicorn's ``data_received``); False when the connection was answered and
        closed, or upgraded."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse_head(self._refusal)
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return False
        return True

    # Parser callbacks

    def on_headers_complete(self) -> None:
        self._head = -1
        self._headed = self.scope
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if len(self.headers) > self._max_headers:
            log.debug("refused a request with %d headers", len(self.headers))
            self._refusal = self.edge.head_too_large
            raise _HeadRefused  # the parser stops here; ``_feed`` answers
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head = 0
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().on_message_complete()

    # -- deadlines and refusals -------------------------------------------------------------------

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        limits = self.edge.limits
        if self._head >= 0:
            if cycle is not None and not cycle.response_complete:
                # The previous request is still being answered: a head's time starts after it.
                self._deadline = self.loop.call_later(limits.header_timeout, self._expired)
            elif self._head == 0 or self.scope is self._headed:
                self.transport.close()  # no request was begun (at most blank lines): nothing to answer
            else:
                log.debug("closed a connection whose request head took over %g s", limits.header_timeout)
                self._refuse_head(self.edge.head_late)
        elif cycle.waiting_for_100_continue or self.flow.read_paused:
            # The app has not asked for (more of) the body yet: the wait is not the client's.
            self._deadline = self.loop.call_later(limits.body_timeout, self._expired)
        else:
            log.debug("closed a connection whose request body took over %g s", limits.body_timeout)
            if not cycle.response_started:
                # The app's next receive() reports a disconnect and anything it sends is dropped.
                cycle.disconnected = True
                cycle.keep_alive = False
                cycle.message_event.set()
                self._write(self.edge.body_late)
            self.transport.close()

    def _refuse_head(self, refusal: Refusal) -> None:
        """Answer ``refusal`` and close; while an earlier request is still being answered, just close
        (an answer now would interleave with its response)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self._write(refusal)
        self.transport.close()

    def _write(self, refusal: Refusal) -> None:
        status, body = refusal
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        parts += [
            b"content-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(parts))
