"""The bounded edge (``sophia.edge``) on real uvicorn servers: the gateway and an MCP server on loopback
ports, in this process, as ``sophia run`` builds them, driven by raw sockets.

Every client runs in a thread (blocking sockets): the servers run on the test's event loop.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import uvicorn

from fakes.helpers import chat, gateway_settings
from fakes.process import free_port
from fakes.upstream import FakeUpstream
from sophia.container import Services
from sophia.edge import Edge, EdgeLimits, uvicorn_options
from sophia.errors import ConfigError
from sophia.gateway.app import GatewayApp
from sophia.gateway.service import GATEWAY
from sophia.mcp.http import http_server
from sophia.settings import load_settings

#: short deadlines, so that a test waits for them in well under a second
QUICK = {"header_timeout": 0.5, "body_timeout": 0.5}
#: what a test allows for a deadline of QUICK's to be enforced (two shared cores, other tests running)
LATE = 3.0
MB = 1024 * 1024


@dataclass
class Served:
    ports: dict[str, int]  # "gateway" and "mcp"
    key: str

    def head(self, which: str, method: str = "GET", path: str | None = None, extra: bytes = b"") -> bytes:
        """A complete, valid request head for ``which`` ending in ``extra`` header lines."""
        port = self.ports[which]
        path = path or ("/v1/models" if which == "gateway" else "/.well-known/oauth-protected-resource")
        return (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {self.key}\r\n".encode()
            + extra
            + b"\r\n"
        )


@asynccontextmanager
async def serving(
    upstream: FakeUpstream, keep_alive: int | None = None, **edge: Any
) -> AsyncIterator[Served]:
    """The gateway and the ``ai`` MCP server sharing one container, each with ``sophia.edge``'s protocol
    (as ``sophia.serve.serve_together`` runs them); ``edge`` overrides ``gateway`` settings and
    ``keep_alive`` uvicorn's keep-alive timeout (5 s)."""
    settings = gateway_settings(upstream.url, gateway={**QUICK, **edge})
    services = Services(settings)
    gateway = await services.get(GATEWAY)
    key, _ = await gateway.accounts.keys.create(name="edge")
    ports = {"gateway": free_port(), "mcp": free_port()}
    config = uvicorn.Config(
        GatewayApp(gateway, lifespan=False),
        host="127.0.0.1",
        port=ports["gateway"],
        log_level="warning",
        **uvicorn_options(settings.gateway),
    )
    servers = [uvicorn.Server(config), http_server(settings, "ai", port=ports["mcp"], services=services)]
    if keep_alive is not None:
        for server in servers:
            server.config.timeout_keep_alive = keep_alive
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        while not all(server.started for server in servers):
            assert not any(task.done() for task in tasks), "a server did not start"
            await asyncio.sleep(0.01)
        yield Served(ports, key)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)
        await services.close()


# -- a raw HTTP/1.1 client ------------------------------------------------------------------------


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


_SURPLUS: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """(status, body) of one response; (0, b"") when the connection closed before any byte of it.

    Bytes read past this response (pipelined answers that arrived in the same segment) are kept for
    the next call on the same socket."""
    data = _SURPLUS.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            assert not data, f"the connection closed mid-head: {data!r}"
            return 0, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (x.partition(": ") for x in lines[1:]) if k.lower() == "content-length"
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed mid-body"
        body += chunk
    if len(body) > length:
        _SURPLUS[sock] = body[length:]
    return int(lines[0].split()[1]), body[:length]


def closed(sock: socket.socket, within: float = LATE) -> bool:
    """True when the server closes the connection within ``within`` seconds (EOF or reset)."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    with connect(port) as sock:
        sock.sendall(request)
        return read_response(sock)


def error_code(body: bytes) -> str:
    error = orjson.loads(body)["error"]
    assert error["type"] in ("invalid_request_error", "rate_limit_error") and error["param"] is None
    return str(error["code"])


def send_huge(port: int, head: bytes, size: int, trailer: bytes = b"") -> tuple[int, int, bytes, bool]:
    """Send ``head``, then ``size`` bytes of one header value in 64 KiB writes, then ``trailer``,
    stopping when the server refuses. (bytes sent, status, body, closed after the answer)."""
    sock = connect(port)
    sent = 0
    chunk = b"a" * 65536
    try:
        sock.sendall(head)
        while sent < size:
            sock.sendall(chunk)
            sent += len(chunk)
        sock.sendall(trailer)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: what it answered is in our receive buffer
    with sock:
        status, body = read_response(sock)
        return sent, status, body, closed(sock)


def vm_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


# -- head size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["gateway", "mcp"])
async def test_a_64_mb_header_gets_431_at_once_and_is_never_held(upstream: FakeUpstream, which: str) -> None:
    async with serving(upstream) as served:
        head = served.head(which, "POST", "/v1/chat/completions" if which == "gateway" else "/mcp")
        head = head[:-2] + b"X-Huge: "  # the head goes on with one 64 MB header value
        peak = reset_peak_rss()
        before = vm_kb("VmRSS")
        sent, status, body, was_closed = await asyncio.to_thread(
            send_huge, served.ports[which], head, 64 * MB
        )
        grown_mb = (vm_kb("VmHWM" if peak else "VmRSS") - before) / 1024
    assert status == 431
    assert error_code(body) == "headers_too_large"
    assert was_closed
    assert sent < 16 * MB  # refused after the first 64 KiB: the rest only filled socket buffers
    assert grown_mb < 20, f"the server's memory grew {grown_mb:.1f} MB"


@pytest.mark.parametrize("which", ["gateway", "mcp"])
async def test_an_8_mb_authorization_header_gets_431(upstream: FakeUpstream, which: str) -> None:
    async with serving(upstream) as served:
        port = served.ports[which]
        head = (
            f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer sk-sophia-".encode()
        )
        sent, status, body, was_closed = await asyncio.to_thread(send_huge, port, head, 8 * MB, b"\r\n\r\n")
        after = await asyncio.to_thread(exchange, port, served.head(which))
    assert (status, error_code(body), was_closed) == (431, "headers_too_large", True)
    assert sent < 8 * MB
    assert after[0] == 200  # the server goes on serving


@pytest.mark.parametrize("which", ["gateway", "mcp"])
async def test_too_many_headers_get_431_and_a_normal_request_still_works(
    upstream: FakeUpstream, which: str
) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    within = b"".join(b"X-H%d: v\r\n" % i for i in range(90))  # with Host and Authorization: 92
    near_limit = b"X-Pad: " + b"p" * (60 * 1024) + b"\r\n"  # a head just under 64 KiB
    async with serving(upstream) as served:
        port = served.ports[which]
        refused = await asyncio.to_thread(exchange, port, served.head(which, extra=many))
        served_ok = await asyncio.to_thread(exchange, port, served.head(which, extra=within))
        large_ok = await asyncio.to_thread(exchange, port, served.head(which, extra=near_limit))
    assert refused[0] == 431 and error_code(refused[1]) == "headers_too_large"
    assert served_ok[0] == 200
    assert large_ok[0] == 200


# -- head deadline --------------------------------------------------------------------------------


def slowloris(port: int, head: bytes, every: float) -> tuple[float, int, bytes, int]:
    """Trickle ``head`` one byte per ``every`` seconds until the server answers or closes.
    (seconds until then, status, body, bytes sent)."""
    started = time.monotonic()
    sent = 0
    with connect(port) as sock:
        sock.settimeout(every)
        while sent < len(head):
            try:
                sock.sendall(head[sent : sent + 1])
                sent += 1
                sock.recv(1, socket.MSG_PEEK)  # returns once the server answered or closed
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                pass
            break
        sock.settimeout(5)
        status, body = read_response(sock)
        assert closed(sock)
        return time.monotonic() - started, status, body, sent


@pytest.mark.parametrize("which", ["gateway", "mcp"])
async def test_slow_headers_are_cut_by_the_header_timeout(upstream: FakeUpstream, which: str) -> None:
    async with serving(upstream) as served:
        port = served.ports[which]
        head = served.head(which, extra=b"X-Slow: " + b"s" * 200 + b"\r\n")
        results = await asyncio.gather(*(asyncio.to_thread(slowloris, port, head, 0.1) for _ in range(5)))
        with await asyncio.to_thread(connect, port) as idle:  # a connection that never sends a byte
            idle_closed = await asyncio.to_thread(closed, idle)
        after = await asyncio.to_thread(exchange, port, served.head(which))
    for seconds, status, body, sent in results:
        assert sent < len(head)  # trickling bytes does not extend the deadline
        assert 0.4 < seconds < LATE
        assert status == 408 and error_code(body) == "request_timeout"
    assert idle_closed
    assert after[0] == 200


async def test_an_idle_keep_alive_connection_outlives_the_header_timeout(upstream: FakeUpstream) -> None:
    """Between requests the keep-alive timeout (5 s) rules, not the header timeout (0.5 s here); on one
    connection, sequential and pipelined requests are served as before."""

    def session(port: int, head: bytes) -> list[int]:
        statuses = []
        with connect(port) as sock:
            for _ in range(20):
                sock.sendall(head)
                statuses.append(read_response(sock)[0])
            time.sleep(1.0)
            sock.sendall(head * 3)  # pipelined
            statuses += [read_response(sock)[0] for _ in range(3)]
        return statuses

    async with serving(upstream) as served:
        statuses = await asyncio.to_thread(session, served.ports["gateway"], served.head("gateway"))
    assert statuses == [200] * 23


async def test_blank_lines_after_a_request_are_not_answered(upstream: FakeUpstream) -> None:
    """A CRLF after a request (old clients send one after a body) begins no request: the idle connection
    is closed without a 408 that the client could take for the answer to its next request."""

    def blank_line(port: int, head: bytes) -> tuple[int, bool, bytes]:
        with connect(port) as sock:
            status = exchange_on(sock, head)
            sock.sendall(b"\r\n")
            sock.settimeout(LATE)
            try:
                rest = sock.recv(100)
            except ConnectionResetError:
                rest = b""
            return status, rest == b"", rest

    async with serving(upstream) as served:
        status, was_closed, rest = await asyncio.to_thread(
            blank_line, served.ports["gateway"], served.head("gateway")
        )
    assert status == 200
    assert was_closed, rest


async def test_a_connection_answered_before_its_body_ended_still_times_out_when_idle(
    upstream: FakeUpstream,
) -> None:
    """A wrong key is answered 401 before the body is read; the body's end, arriving after that answer,
    must not leave the connection without an idle deadline (uvicorn's keep-alive timer was spent)."""

    def early_answer(port: int) -> tuple[int, float | None]:
        body = orjson.dumps(chat("vllm/ok"))
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-sophia-wrong\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        with connect(port) as sock:
            sock.sendall(head + body[:10])
            status, _ = read_response(sock)
            sock.sendall(body[10:])
            idle_from = time.monotonic()
            return status, time.monotonic() - idle_from if closed(sock) else None

    async with serving(upstream, keep_alive=1) as served:
        status, idle = await asyncio.to_thread(early_answer, served.ports["gateway"])
    assert status == 401
    assert idle is not None and 0.8 < idle < LATE


# -- body deadline --------------------------------------------------------------------------------


def short_body(port: int, head: bytes, parts: list[bytes], gap: float) -> tuple[float, int, bytes]:
    """Send ``head``, then ``parts`` ``gap`` seconds apart; (seconds from the end of the head to the
    answer, status, body)."""
    with connect(port) as sock:
        sock.sendall(head)
        started = time.monotonic()
        for part in parts:
            time.sleep(gap)
            sock.sendall(part)
        status, body = read_response(sock)
        return time.monotonic() - started, status, body


def post_head(served: Served, which: str, length: int) -> bytes:
    if which == "gateway":
        return served.head(
            "gateway",
            "POST",
            "/v1/chat/completions",
            b"Content-Type: application/json\r\nContent-Length: %d\r\n" % length,
        )
    return served.head(
        "mcp",
        "POST",
        "/mcp",
        b"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
        b"Content-Length: %d\r\n" % length,
    )


@pytest.mark.parametrize("which", ["gateway", "mcp"])
async def test_a_body_shorter_than_its_length_gets_408_within_the_body_timeout(
    upstream: FakeUpstream, which: str
) -> None:
    async with serving(upstream) as served:
        port = served.ports[which]
        seconds, status, body = await asyncio.to_thread(
            short_body, port, post_head(served, which, 100), [b"{" + b" " * 9], 0.0
        )
        after = await asyncio.to_thread(exchange, port, served.head(which))
    assert status == 408 and error_code(body) == "request_timeout"
    assert 0.4 < seconds < LATE
    assert after[0] == 200


async def test_a_body_sent_in_pieces_within_the_body_timeout_is_served(upstream: FakeUpstream) -> None:
    async with serving(upstream) as served:
        body = orjson.dumps(chat("vllm/ok"))
        half = len(body) // 2
        seconds, status, answer = await asyncio.to_thread(
            short_body,
            served.ports["gateway"],
            post_head(served, "gateway", len(body)),
            [body[:half], body[half:]],
            0.2,
        )
    assert status == 200, answer
    assert orjson.loads(answer)["choices"][0]["message"]["content"]
    assert seconds >= 0.4


# -- connections per client -----------------------------------------------------------------------


def hold_connections(port: int, head: bytes, limit: int) -> dict[str, Any]:
    """Open ``limit`` connections and use them, try one more, use the first ones again, close one and
    open another."""
    seen: dict[str, Any] = {}
    held = [connect(port) for _ in range(limit)]
    try:
        seen["first"] = [exchange_on(sock, head) for sock in held]
        with connect(port) as extra:
            status, body = read_response(extra)
            seen["extra"] = (status, error_code(body) if body else None, closed(extra))
        seen["again"] = [exchange_on(sock, head) for sock in held]
        held.pop().close()
        time.sleep(0.2)  # the server sees the close
        seen["replaced"] = exchange(port, head)[0]
    finally:
        for sock in held:
            sock.close()
    return seen


def exchange_on(sock: socket.socket, head: bytes) -> int:
    sock.sendall(head)
    return read_response(sock)[0]


@pytest.mark.parametrize("which", ["gateway", "mcp"])
async def test_one_connection_over_the_per_client_bound_is_refused(
    upstream: FakeUpstream, which: str
) -> None:
    async with serving(upstream, max_connections_per_client=4) as served:
        seen = await asyncio.to_thread(hold_connections, served.ports[which], served.head(which), 4)
    assert seen["first"] == [200] * 4
    assert seen["extra"] in ((503, "too_many_connections", True), (0, None, True))
    assert seen["again"] == [200] * 4  # the connections already open were not touched
    assert seen["replaced"] == 200  # a closed connection frees its place


async def test_loopback_clients_can_be_left_unbounded(upstream: FakeUpstream) -> None:
    def many(port: int, head: bytes) -> list[int]:
        socks = [connect(port) for _ in range(6)]
        try:
            return [exchange_on(sock, head) for sock in socks]
        finally:
            for sock in socks:
                sock.close()

    async with serving(upstream, max_connections_per_client=2, limit_loopback_clients=False) as served:
        statuses = await asyncio.to_thread(many, served.ports["gateway"], served.head("gateway"))
    assert statuses == [200] * 6


# -- settings -------------------------------------------------------------------------------------


def test_the_bounds_are_settings_passed_to_every_server() -> None:
    settings = load_settings(gateway={"max_header_bytes": 8192, "max_connections_per_client": 0})
    options = uvicorn_options(settings.gateway)
    edge = options["http"]
    assert isinstance(edge, Edge)
    assert edge.limits == EdgeLimits(max_header_bytes=8192, max_connections_per_client=0)
    assert options["timeout_keep_alive"] == 5
    edge.clients["10.0.0.1"] = 3
    copy: Edge = pickle.loads(pickle.dumps(edge))  # what a worker process of `--workers N` gets
    assert copy.limits == edge.limits and copy.clients == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"max_header_bytes": 100},
        {"max_headers": 0},
        {"header_timeout": 0},
        {"body_timeout": -1},
        {"max_connections_per_client": -1},
    ],
)
def test_bounds_out_of_range_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        load_settings(gateway=bad)
