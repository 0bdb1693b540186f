"""Fetching a URL without becoming a confused deputy: resolve once, check every address, dial only those.

``SafeFetcher.fetch`` admits the URL (``AddressPolicy.check_url``), resolves its host once, refuses it
if any address is not public, and connects to the checked addresses only: the httpx transport below
dials the pinned address while the request keeps the original host in its Host header, TLS SNI and
certificate check. Nothing resolves the name a second time, so a DNS answer that changes between check
and connect (DNS rebinding) reaches nothing new. Redirects are followed here, each hop admitted and
resolved afresh; proxies and ``.netrc`` from the environment are ignored (a proxy would resolve for us)
and no cookies are kept, so one fetch never carries another's state.

Bodies are read as a stream and decoded here (gzip, deflate) under ``max_bytes`` of *decoded* content,
so a compression bomb stops at the cap; one total timeout covers resolution, redirects and the body.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import logging
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from sophia import __version__
from sophia.collect.addresses import AddressPolicy, AddressRefused, IPAddress, URLTarget
from sophia.errors import PayloadTooLarge, SophiaError
from sophia.timeparse import retry_after as parse_retry_after

log = logging.getLogger(__name__)

#: an async callable host, port -> the host's addresses as strings
Resolver = Callable[[str, int], Awaitable[list[str]]]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: response headers kept in ``FetchResult.headers`` (what extraction, caching and politeness read)
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "content-language",
    "content-encoding",
    "etag",
    "last-modified",
    "cache-control",
    "expires",
    "retry-after",
    "location",
    "link",
    "x-robots-tag",
)
USER_AGENT = f"Sophia-Collect/{__version__} (+https://github.com/sophia-ai/sophia)"


class FetchFailed(SophiaError):
    """The page could not be fetched: no address, connection refused or reset, a broken response."""

    code = "fetch_failed"


class FetchTimeout(FetchFailed):
    """The fetch (resolution, redirects and body together) took longer than its timeout."""

    code = "fetch_timeout"


class PageTooLarge(PayloadTooLarge):
    """The page's decoded body is over the fetcher's byte cap."""

    code = "page_too_large"


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL that passed every check: its normalised target and the addresses it may be dialled at."""

    target: URLTarget
    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str  # the final URL, after redirects
    status: int
    headers: dict[str, str]  # the KEPT_HEADERS the response had, names lower case
    content: bytes  # decoded; empty for 304
    content_type: str | None  # the media type, lower case, without parameters
    etag: str | None  # the response's, else (on 304) the one sent
    last_modified: str | None
    not_modified: bool
    redirects: list[str] = field(default_factory=list)  # each URL that answered with a redirect, in order
    address: str | None = None  # the IP address the final response came from
    elapsed_s: float = 0.0
    retry_after: float | None = None  # seconds, from Retry-After on a 429 or 503


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the event loop's getaddrinfo (the system resolver), in its order."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"cannot resolve {host}: {exc}", code="dns_failed") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# -- pinning: the transport dials only what the fetch checked ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Pin:
    host: str
    port: int
    addresses: tuple[str, ...]


#: the checked addresses of the request being sent by this task; httpcore opens a connection in the task
#: that sends the request, so the backend reads the pin of exactly that request
_PIN: contextvars.ContextVar[_Pin | None] = contextvars.ContextVar("sophia_collect_pin", default=None)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the pinned addresses of the request, never to a name (so nothing resolves it again)."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or (pin.host, pin.port) != (host, port):
            raise httpcore.ConnectError(f"no checked address for {host}:{port}; it is never resolved here")
        error: Exception | None = None
        for address in pin.addresses:  # in the resolver's order, like a browser without happy eyeballs
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the collector never dials a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class _PinnedTransport(httpx.AsyncBaseTransport):
    """httpx's default transport on a pool whose network backend dials pinned addresses only."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        response = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Stream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


#: what the transport raises when the network or the peer fails (httpx's mapping is private)
_NETWORK_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpx.HTTPError,
)
_TIMEOUTS = (httpcore.TimeoutException, httpx.TimeoutException)


class _Decoder:
    """Content-Encoding decoded with a bound on the output of every step (no decompression bomb)."""

    def __init__(self, encoding: str) -> None:
        names = [part.strip() for part in encoding.lower().split(",") if part.strip() not in ("", "identity")]
        if len(names) > 1 or (names and names[0] not in ("gzip", "x-gzip", "deflate")):
            raise FetchFailed(f"the page is sent with Content-Encoding {encoding!r}, which is not supported")
        self._name = names[0] if names else None
        self._zlib: Any = zlib.decompressobj(wbits=47) if self._name else None  # gzip or zlib header
        self._started = False

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decoded bytes of ``data``, at most ``limit + 1`` (one more than the room left means too large)."""
        if self._zlib is None:
            return data
        try:
            out: bytes = self._zlib.decompress(data, limit + 1)
        except zlib.error:
            if self._name != "deflate" or self._started:
                raise FetchFailed(f"the page's {self._name} body is corrupt") from None
            self._zlib = zlib.decompressobj(wbits=-15)  # raw deflate, as some servers send it
            out = self._zlib.decompress(data, limit + 1)
        self._started = True
        return out


class SafeFetcher:
    """Fetches public http(s) URLs, or the internal ones the policy's allow-list opens, and nothing else."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver | None = None,
        timeout: float = 10.0,
        max_bytes: int = 5_000_000,
        max_redirects: int = 5,
        user_agent: str = USER_AGENT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy
        self.resolver: Resolver = resolver or system_resolver
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        context = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        # the transport is used without httpx.AsyncClient: no cookie jar (one fetch never carries another's
        # state), no environment proxy or .netrc (a proxy would resolve and dial for us, unchecked), and
        # no client-side reading of Location headers, which are this module's to parse and check
        self._transport = _PinnedTransport(context)
        self._timeouts = httpx.Timeout(timeout).as_dict()

    async def __aenter__(self) -> SafeFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def resolve(self, url: str) -> Destination:
        """Admit ``url`` and resolve its host once; ``AddressRefused`` if any address is not allowed."""
        target = self.policy.check_url(url)
        if target.ip is not None:
            return Destination(target, (target.ip,))
        try:
            answers = await self.resolver(target.host, target.port)
        except (TimeoutError, OSError) as exc:
            raise FetchFailed(
                f"cannot resolve {target.host}: {exc or type(exc).__name__}", code="dns_failed"
            ) from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                address = ipaddress.ip_address(str(answer).partition("%")[0])
            except ValueError:
                raise AddressRefused(
                    f"{target.host} resolves to {answer!r}, which is not an address: refused"
                ) from None
            self.policy.check(address, host=target.host, port=target.port)  # every one, before any is used
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchFailed(f"{target.host} resolves to no address", code="dns_failed")
        return Destination(target, tuple(addresses))

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """GET ``url`` following redirects, conditionally when ``etag``/``last_modified`` are given.

        Answers with any status (404 and 500 too); raises ``URLRefused``/``AddressRefused`` for a URL or
        hop the policy refuses, ``PageTooLarge``, ``FetchTimeout`` and ``FetchFailed``.
        """
        started = time.monotonic()
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                return await self._fetch(url, etag, last_modified, started)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise FetchTimeout(f"fetching {url[:200]} took longer than {self.timeout:g}s") from None

    async def _fetch(
        self, url: str, etag: str | None, last_modified: str | None, started: float
    ) -> FetchResult:
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        redirects: list[str] = []
        current = url
        while True:
            destination = await self.resolve(current)
            response, address = await self._send(destination, headers)
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    redirects.append(destination.target.url)
                    if len(redirects) > self.max_redirects:
                        raise FetchFailed(
                            f"{url[:200]} redirects more than {self.max_redirects} times",
                            code="too_many_redirects",
                        )
                    current = urljoin(destination.target.url, location.strip())
                    log.debug("following a %s redirect to %s", response.status_code, current[:200])
                    continue
                content = await self._read(response, destination.target.url)
            finally:
                await response.aclose()
            return self._result(
                destination, response, address, content, redirects, (etag, last_modified), started
            )

    async def _send(
        self, destination: Destination, headers: Mapping[str, str]
    ) -> tuple[httpx.Response, str | None]:
        """The response's head (its body still to read) and the address it came from."""
        target = destination.target
        request = httpx.Request("GET", target.url, headers=headers, extensions={"timeout": self._timeouts})
        host = request.url.raw_host.decode("ascii")
        if host != target.host or (request.url.port or target.port) != target.port:
            raise AddressRefused(f"{target.url[:200]} reads differently to the HTTP client: refused")
        token = _PIN.set(_Pin(host, target.port, tuple(str(a) for a in destination.addresses)))
        try:
            response = await self._transport.handle_async_request(request)
        except _TIMEOUTS:
            raise FetchTimeout(f"{target.url[:200]} did not answer within {self.timeout:g}s") from None
        except _NETWORK_ERRORS as exc:
            raise FetchFailed(f"cannot fetch {target.url[:200]}: {exc or type(exc).__name__}") from None
        finally:
            _PIN.reset(token)
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None  # before the body is read
        return response, (str(peer[0]) if peer else None)

    async def _read(self, response: httpx.Response, url: str) -> bytes:
        if response.status_code == 304 or response.status_code < 200 or response.status_code == 204:
            return b""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise PageTooLarge(
                f"{url[:200]} is {int(declared):,} bytes, over the {self.max_bytes:,}-byte cap"
            )
        decoder = _Decoder(response.headers.get("content-encoding", ""))
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                body += decoder.feed(chunk, self.max_bytes - len(body))
                if len(body) > self.max_bytes:
                    raise PageTooLarge(f"{url[:200]} is over the {self.max_bytes:,}-byte cap")
        except _TIMEOUTS:
            raise FetchTimeout(f"{url[:200]} did not send its body within {self.timeout:g}s") from None
        except _NETWORK_ERRORS as exc:
            raise FetchFailed(f"the body of {url[:200]} broke off: {exc or type(exc).__name__}") from None
        return bytes(body)

    def _result(
        self,
        destination: Destination,
        response: httpx.Response,
        address: str | None,
        content: bytes,
        redirects: list[str],
        validators: tuple[str | None, str | None],
        started: float,
    ) -> FetchResult:
        kept = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        media = kept.get("content-type", "").partition(";")[0].strip().lower() or None
        not_modified = response.status_code == 304
        etag, last_modified = validators if not_modified else (None, None)  # a 304 may omit them: still valid
        retry_after = None
        if response.status_code in (429, 503):
            retry_after = parse_retry_after(kept.get("retry-after"))
        return FetchResult(
            url=destination.target.url,
            status=response.status_code,
            headers=kept,
            content=content,
            content_type=media,
            etag=kept.get("etag") or etag,
            last_modified=kept.get("last-modified") or last_modified,
            not_modified=not_modified,
            redirects=redirects,
            address=address,
            elapsed_s=time.monotonic() - started,
            retry_after=retry_after,
        )
