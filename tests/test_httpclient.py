"""The pooled HTTP/1.1 client, against raw loopback servers that write exact bytes."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from sophia.httpclient import HTTPClient, HTTPClientError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head, await reader.readexactly(length)


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/v1/chat"

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def keep_alive(body: bytes = b'{"ok": true}', extra: bytes = b"") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body))
            await writer.drain()

    return handler


_SERVERS: list[RawServer] = []


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    http = HTTPClient()
    yield http
    await http.close()
    while _SERVERS:
        await _SERVERS.pop().stop()


async def serve(handler: Handler) -> tuple[RawServer, str]:
    server = RawServer(handler)
    _SERVERS.append(server)
    return server, await server.start()


async def test_keep_alive_reuses_one_connection(client: HTTPClient) -> None:
    server, url = await serve(keep_alive())
    target = client.target(url, {"Authorization": "Bearer t"})
    for _ in range(5):
        resp = await client.post(target, b'{"q": 1}')
        assert resp.status == 200
        assert await resp.read() == b'{"ok": true}'
        resp.release()
    assert server.connections == 1


async def test_request_head_and_body_are_sent_as_prepared(client: HTTPClient) -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    _, url = await serve(handler)
    resp = await client.post(client.target(url + "?x=1", {"X-Api-Key": "k"}), b"hello")
    assert resp.status == 204
    assert await resp.read() == b""
    head, body = seen[0]
    assert head.startswith(b"POST /v1/chat?x=1 HTTP/1.1\r\n")
    assert b"\r\nX-Api-Key: k\r\n" in head
    assert b"\r\nContent-Length: 5\r\n" in head
    assert body == b"hello"


async def test_chunked_gzip_and_interim_responses(client: HTTPClient) -> None:
    payload = gzip.compress(b'{"answer": "' + b"x" * 5000 + b'"}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n")
        for i in range(0, len(payload), 1000):
            piece = payload[i : i + 1000]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()  # keep the connection open until the client leaves

    _, url = await serve(handler)
    resp = await client.post(client.target(url, {}), b"{}")
    assert resp.status == 200
    assert await resp.read() == b'{"answer": "' + b"x" * 5000 + b'"}'


async def test_body_delimited_by_connection_close(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()

    server, url = await serve(handler)
    target = client.target(url, {})
    for _ in range(2):
        resp = await client.post(target, b"{}")
        assert await resp.read() == b"until the end"
        resp.release()
    assert server.connections == 2  # not reused: the server said close


async def test_cut_response_is_an_error(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    _, url = await serve(handler)
    resp = await client.post(client.target(url, {}), b"{}")
    with pytest.raises(HTTPClientError, match="before the response was complete"):
        await resp.read()


async def test_stale_pooled_connection_is_replaced_transparently(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # one request per connection, then the server drops it silently
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    server, url = await serve(handler)
    target = client.target(url, {})
    for _ in range(3):
        resp = await client.post(target, b"{}")
        assert await resp.read() == b"ok"
        resp.release()
        await asyncio.sleep(0.05)
    assert server.connections == 3


async def test_refused_connection(client: HTTPClient) -> None:
    with pytest.raises(HTTPClientError, match="cannot connect"):
        await client.post(client.target("http://127.0.0.1:9/v1", {}), b"{}")


async def test_cancelled_call_closes_its_connection(client: HTTPClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            if b"slow" in head:
                await asyncio.sleep(5)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    server, url = await serve(handler)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.post(client.target(url, {"X-Mode": "slow"}), b"{}")
    resp = await client.post(client.target(url, {}), b"{}")
    assert await resp.read() == b"ok"
    assert server.connections == 2  # the cancelled call's connection was not reused


async def test_streamed_body_with_back_pressure(client: HTTPClient) -> None:
    block = b"y" * 65536

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(block) * 64))
        for _ in range(64):
            writer.write(block)
            await writer.drain()

    _, url = await serve(handler)
    resp = await client.post(client.target(url, {}), b"{}")
    total = 0
    while chunk := await resp.readany():
        total += len(chunk)
        await asyncio.sleep(0)  # a slow reader
    assert total == len(block) * 64
    resp.release()


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        HTTPClient.target("http://127.0.0.1/v1", {"X-Evil": "a\r\nInjected: 1"})
    with pytest.raises(ValueError, match="http"):
        HTTPClient.target("ftp://example.org/", {})


async def test_tls(tmp_path: Path, client: HTTPClient) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run,
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = RawServer(keep_alive())
    url = await server.start(server_ctx)
    _SERVERS.append(server)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    http = HTTPClient(ssl_context=client_ctx)
    try:
        target = http.target(url, {})
        for _ in range(2):
            resp = await http.post(target, b"{}")
            assert await resp.read() == b'{"ok": true}'
            resp.release()
    finally:
        await http.close()
    assert server.connections == 1
    untrusting = HTTPClient()  # the system CAs do not know this certificate
    try:
        with pytest.raises(HTTPClientError, match="cannot connect"):
            await untrusting.post(untrusting.target(url, {}), b"{}")
    finally:
        await untrusting.close()
