"""A lean, pooled HTTP/1.1 client for provider calls: the gateway's hot path.

Why not aiohttp or httpx: on this path a proxied call costs the gateway about 80-100 µs of CPU in
aiohttp and more in httpx, against about 15 µs here (measured in benchmarks/gateway/README.md).
This client does only what provider APIs need: POST with a body, keep-alive connections pooled
per origin, TLS, responses by Content-Length, chunked or until close, gzip/deflate bodies, and
streaming with back-pressure. It has no cookies, redirects or proxies (providers need none).

``HTTPClient.target(url, headers)`` prepares a request line and header block once;
``HTTPClient.post(target, body)`` writes head and body in one write and returns the response
as soon as its head has arrived. Timeouts are the caller's (``asyncio.timeout``); a call
cancelled mid-response closes its connection instead of returning it to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

#: bytes buffered from a streamed body before reading from the socket pauses
HIGH_WATER = 256 * 1024
#: idle keep-alive connections kept per origin
MAX_IDLE = 128


class HTTPClientError(ConnectionError):
    """The connection could not be made, or broke before the response was complete."""


@dataclass(frozen=True, slots=True)
class Target:
    """A prepared request: where to connect and the head to send (all but Content-Length)."""

    origin: tuple[str, str, int]  # scheme, host, port
    head: bytes  # request line and headers, each ending in CRLF, without the blank line

    @property
    def url(self) -> str:
        scheme, host, port = self.origin
        return f"{scheme}://{host}:{port}"


class Response:
    """Status and headers as soon as they arrive; the body by ``read()`` or ``readany()``."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_decoder",
        "_done",
        "_error",
        "_waiter",
        "headers",
        "status",
    )

    def __init__(self, conn: _Connection, status: int, headers: dict[str, str]) -> None:
        self._conn: _Connection | None = conn
        self.status = status
        self.headers = headers  # names lower-cased
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            self._decoder: zlib._Decompress | None = zlib.decompressobj(
                wbits=47
            )  # gzip or zlib, auto-detected
        elif encoding == "identity":
            self._decoder = None
        else:
            self._error = HTTPClientError(f"unsupported content-encoding {encoding!r}")

    # -- fed by the connection --------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self._error is not None:
            return
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                self._fail(HTTPClientError(f"cannot decompress the response: {exc}"))
                return
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > HIGH_WATER and self._conn is not None:
                self._conn.pause()
        self._wake()

    def _finish(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail)
        self._done = True
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if not self._done:
            self._error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- read by the caller -----------------------------------------------------------------------

    async def readany(self) -> bytes:
        """The next bytes of the body, ``b""`` once it is complete."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._conn is not None and self._buffered < HIGH_WATER // 2:
            self._conn.resume()
        return data

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (or its first ``limit`` bytes)."""
        parts = []
        size = 0
        while limit is None or size < limit:
            data = await self.readany()
            if not data:
                break
            parts.append(data)
            size += len(data)
        body = b"".join(parts)
        return body if limit is None else body[:limit]

    def release(self) -> None:
        """Done with this response: its connection goes back to the pool if the body was read whole."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and not self._chunks and self._error is None:
            conn.finished()
        else:
            conn.close()

    def close(self) -> None:
        """Abandon the response and its connection (the upstream sees the call end)."""
        conn, self._conn = self._conn, None
        self._done = True
        self._chunks.clear()
        if conn is not None:
            conn.close()


def _ends_with_connection(headers: Mapping[str, str]) -> bool:
    """A body with neither Content-Length nor chunked encoding lasts until the connection closes."""
    return "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "").lower()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    def __init__(self, pool: _Pool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._headers: dict[str, str] = {}
        self._keep_alive = True
        self._paused = False
        self.got_bytes = False
        self.closed = False

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken(HTTPClientError(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        response = self._response
        if response is not None and not response._done:
            if _ends_with_connection(response.headers):
                response._finish()  # a body delimited by the connection's end is complete now
            else:
                response._fail(HTTPClientError("the connection closed before the response was complete"))
        if self._head is not None and not self._head.done():
            self._head.set_exception(HTTPClientError("the connection closed before a response arrived"))

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 1xx: an interim answer; the real one follows
            self._headers = {}
            return
        self._keep_alive = self._parser.should_keep_alive()
        self._response = Response(self, status, self._headers)
        self._headers = {}
        if self._head is not None and not self._head.done():
            self._head.set_result(self._response)

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response._feed(body)

    def on_message_complete(self) -> None:
        if self._response is not None:
            self._response._finish()

    # -- used by the pool and the response ----------------------------------------------------

    def send(self, data: bytes) -> asyncio.Future[Response]:
        assert self._transport is not None
        self._head = asyncio.get_running_loop().create_future()
        self._response = None
        self.got_bytes = False
        self._transport.write(data)
        return self._head

    def finished(self) -> None:
        self._head = None
        self._response = None
        if self._keep_alive and not self.closed:
            self._parser = httptools.HttpResponseParser(self)
            self.resume()
            self._pool.put(self)
        else:
            self.close()

    def pause(self) -> None:
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        self._pool.forget(self)
        if self._transport is not None:
            self._transport.close()

    def _broken(self, exc: BaseException) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_exception(exc)
        if self._response is not None:
            self._response._fail(exc)
        self.close()


class _Pool:
    """Idle connections to one origin."""

    def __init__(self, origin: tuple[str, str, int], ssl_context: ssl.SSLContext | None) -> None:
        self.origin = origin
        self.ssl = ssl_context
        self.idle: deque[_Connection] = deque()

    def get(self) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        return None

    def put(self, conn: _Connection) -> None:
        if len(self.idle) >= MAX_IDLE:
            conn.close()
        else:
            self.idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    async def connect(self) -> _Connection:
        scheme, host, port = self.origin
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(self),
                host,
                port,
                ssl=self.ssl if scheme == "https" else None,
                server_hostname=host if scheme == "https" else None,
            )
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake
            raise HTTPClientError(
                f"cannot connect to {scheme}://{host}:{port}: {exc.strerror or exc}"
            ) from None
        return conn


class HTTPClient:
    """Pools of keep-alive connections, one per origin."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, user_agent: str = "sophia") -> None:
        self._ssl = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._user_agent = user_agent

    @staticmethod
    def target(url: str, headers: Mapping[str, str], method: str = "POST") -> Target:
        """Prepare ``method url`` with ``headers`` (Host, User-Agent and Accept-Encoding added if absent)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        names = {name.lower() for name in headers}
        lines = [f"{method} {path} HTTP/1.1"]
        if "host" not in names:
            default = (parts.scheme == "https" and port == 443) or (parts.scheme == "http" and port == 80)
            lines.append(f"Host: {parts.hostname}" + ("" if default else f":{port}"))
        if "accept-encoding" not in names:
            lines.append("Accept-Encoding: gzip, deflate")
        if "user-agent" not in names:
            lines.append("User-Agent: sophia")
        for name, value in headers.items():
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} holds a line break")
            if name.lower() != "content-length":
                lines.append(f"{name}: {value}")
        head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        return Target((parts.scheme, parts.hostname, port), head)

    def _pool(self, origin: tuple[str, str, int]) -> _Pool:
        pool = self._pools.get(origin)
        if pool is None:
            if origin[0] == "https" and self._ssl is None:
                self._ssl = ssl.create_default_context()
            pool = self._pools[origin] = _Pool(origin, self._ssl)
        return pool

    async def post(self, target: Target, body: bytes) -> Response:
        """Send ``body``; return the response once its status and headers are in."""
        pool = self._pool(target.origin)
        data = b"%sContent-Length: %d\r\n\r\n%s" % (target.head, len(body), body)
        conn = pool.get()
        if conn is not None:
            try:
                return await self._exchange(conn, data)
            except HTTPClientError:
                # A reused connection the server had already closed: nothing of the request was
                # answered, so it is sent again once, on a new connection.
                if conn.got_bytes:
                    raise
        return await self._exchange(await pool.connect(), data)

    @staticmethod
    async def _exchange(conn: _Connection, data: bytes) -> Response:
        try:
            return await conn.send(data)
        except BaseException:
            conn.close()
            raise

    async def close(self) -> None:
        for pool in self._pools.values():
            while pool.idle:
                pool.idle.pop().close()
        self._pools.clear()
